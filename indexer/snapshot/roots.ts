import type { ReadDB } from '../read/snapshot.js';

/*
 * The proof root (docs/spec.md §2.9) as a snapshot sees it: the one place to
 * connect once the index stores a proof root per height. Until then a
 * snapshot's header carries null and nothing is checked; a header that
 * carries one is refused by a nodereg that cannot recompute it, rather
 * than accepted unchecked.
 */

/** The proof root stored for `height`, or null while the index stores none. */
export async function proofRootAt(_db: ReadDB, _height: number): Promise<string | null> {
  return null;
}

/**
 * The proof root recomputed from the live registration rows, or null when
 * this nodereg cannot compute one.
 */
export async function deriveProofRoot(_db: ReadDB): Promise<string | null> {
  return null;
}
