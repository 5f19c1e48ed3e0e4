import { createHash } from 'node:crypto';

/*
 * An independent proof tree, straight from docs/spec.md §2.9 and sharing no
 * code with script/: the subtree hash is computed recursively over the
 * leaves sorted by key, a proof walks the same recursion, and elements are
 * serialized here from the interchange JSON.
 */

export const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const ZERO = Buffer.alloc(32);
const bitOf = (k: Buffer, i: number): number => (k[Math.floor(i / 8)]! >> (7 - (i % 8))) & 1;

export interface RefLeaf { key: Buffer; value: Buffer }

export const sortLeaves = (leaves: Iterable<RefLeaf>): RefLeaf[] => [...leaves].sort((a, b) => Buffer.compare(a.key, b.key));

/** The hash of the subtree at `depth` holding `sorted` (sorted by key). */
export function refHash(sorted: RefLeaf[], depth = 0): Buffer {
  if (sorted.length === 0) return ZERO;
  if (sorted.length === 1) return sha(Buffer.of(0), sorted[0]!.key, sorted[0]!.value);
  const cut = sorted.findIndex((l) => bitOf(l.key, depth) === 1);
  const left = cut < 0 ? sorted : sorted.slice(0, cut);
  const right = cut < 0 ? [] : sorted.slice(cut);
  return sha(Buffer.of(1), refHash(left, depth + 1), refHash(right, depth + 1));
}

/** The siblings (hex, top first) along `key`'s path, and the leaf where it ends. */
export function refProof(sorted: RefLeaf[], key: Buffer): { siblings: string[]; end: RefLeaf | null } {
  const siblings: string[] = [];
  let set = sorted;
  for (let d = 0; set.length > 1; d++) {
    siblings.push(refHash(set.filter((l) => bitOf(l.key, d) !== bitOf(key, d)), d + 1).toString('hex'));
    set = set.filter((l) => bitOf(l.key, d) === bitOf(key, d));
  }
  return { siblings, end: set[0] ?? null };
}

interface NodeFields { stakeScript: string; firstHeight: number; firstTxid: string; tipHeight: number; tipTxid: string; timestamp: number; renewals: number }

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};

/** A node's §2.6 element, from its interchange-format fields (txids in RPC order). */
export function refElement(n: NodeFields): Buffer {
  const script = Buffer.from(n.stakeScript, 'hex');
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64LE(BigInt(n.timestamp));
  return Buffer.concat([
    Buffer.of(script.length), script, u32(n.firstHeight), Buffer.from(n.firstTxid, 'hex').reverse(),
    u32(n.tipHeight), Buffer.from(n.tipTxid, 'hex').reverse(), ts, u32(n.renewals),
  ]);
}

/** The leaves of the live nodes of an export. */
export function refLeaves(nodes: ReadonlyArray<NodeFields & { status: string }>): RefLeaf[] {
  return sortLeaves(nodes.filter((n) => n.status === 'active').map((n) => ({ key: sha(Buffer.from(n.stakeScript, 'hex')), value: sha(refElement(n)) })));
}
