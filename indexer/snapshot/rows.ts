import { K, P, parse, prefixOf } from '../store/layout.js';

/*
 * Which rows a snapshot carries, decided once per key prefix of
 * store/layout.ts. The table is exhaustive: a new prefix does not compile
 * until someone decides whether snapshots carry it.
 *
 * - `state`: what `nodereg index` continues from (coins, balances, the
 *   registry and its indexes, the tip).
 * - `history`: what past-height answers are rebuilt from (block hashes,
 *   per-height accumulators, events, outcomes, rejections, stake balances).
 *   Carried whole, so a loaded index answers every question the source
 *   answered, at every height, and `compare` can bisect against it.
 * - `undo`: only the last `undoBlocks` blocks. Following needs no undo
 *   record; a reorg does, and a loaded index can undo only what it got.
 * - `meta`: every meta row except `snapshot`, which `load` writes itself.
 * - `local`: never carried. The webhook delivery queue belongs to one
 *   daemon and its receiver, not to the registry.
 */
export type RowPolicy = 'state' | 'history' | 'undo' | 'meta' | 'local';

export const SNAPSHOT_ROWS: Readonly<Record<keyof typeof P, RowPolicy>> = {
  meta: 'meta',
  tip: 'state',
  blockHash: 'history',
  heightState: 'history',
  undo: 'undo',
  coin: 'state',
  balance: 'state',
  scriptCoin: 'state',
  current: 'state',
  registration: 'state',
  expiry: 'state',
  event: 'history',
  outcome: 'history',
  rejected: 'history',
  stakeBalance: 'history',
  firstSeen: 'state',
  webhook: 'local',
  blockTime: 'history',
  lifetime: 'state',
  stakeRejected: 'history',
  proofLeaf: 'history',
  proofSubtree: 'history',
};

/** The meta row a loaded index gets: where its undo data begins (docs/schema.md). */
export const SNAPSHOT_META = 'snapshot';

const BY_PREFIX = new Map<number, RowPolicy>(Object.entries(SNAPSHOT_ROWS).map(([name, policy]) => [P[name as keyof typeof P], policy]));

/** The policy of a stored key, or null for a prefix this nodereg does not know. */
export function policyOf(key: Buffer): RowPolicy | null {
  const prefix = prefixOf(key);
  return prefix === null ? null : BY_PREFIX.get(prefix) ?? null;
}

/** The lowest height whose undo record a snapshot at `height` carries. */
export function firstUndoHeight(height: number, undoBlocks: number): number {
  return height - undoBlocks + 1;
}

/**
 * Whether a snapshot at `height` carries the row `key`; null when the
 * prefix is unknown (the index is newer than this nodereg).
 */
export function carries(key: Buffer, height: number, undoBlocks: number): boolean | null {
  switch (policyOf(key)) {
    case null: return null;
    case 'meta': return parse.meta(key).name !== SNAPSHOT_META;
    case 'undo': return parse.height(key).height >= firstUndoHeight(height, undoBlocks);
    case 'local': return false;
    default: return true;
  }
}

/** Where a loaded index came from, as `load` recorded it. */
export interface SnapshotOrigin {
  readonly height: number;
  /** RPC hex. */
  readonly tip: string;
  /** The lowest height with an undo record from the snapshot. */
  readonly undoFrom: number;
}

/** The snapshot an index was loaded from, or null for an index built by indexing or a recount. */
export async function snapshotOrigin(db: { get(key: Buffer): Promise<Buffer | undefined> }): Promise<SnapshotOrigin | null> {
  const v = await db.get(K.meta(SNAPSHOT_META));
  if (v === undefined) return null;
  try {
    const o = JSON.parse(v.toString('utf8')) as SnapshotOrigin;
    return Number.isSafeInteger(o.height) && Number.isSafeInteger(o.undoFrom) ? o : null;
  } catch {
    return null;
  }
}
