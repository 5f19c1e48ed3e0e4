import { proofRootAt as storedProofRootAt } from '../read/queries.js';
import type { ReadDB } from '../read/snapshot.js';

/*
 * The proof root (docs/spec.md §2.9) as a snapshot sees it. Create copies the
 * stored root of the tip into the header; load compares it with what
 * `nodereg check`'s code recomputes from the loaded rows (read/check.ts).
 */

/** The proof root stored for `height`. */
export async function proofRootAt(db: ReadDB, height: number): Promise<string | null> {
  return storedProofRootAt(db, height);
}
