import { hash } from 'node:crypto';
import BN from 'bn.js';
import { putDigest, sha256dLatin1 } from './scanner.js';

/**
 * Proof-of-work and merkle checks for the chain pass. These run once per block
 * rather than per transaction, so clarity (bn.js) wins over speed here.
 */

const TWO_256 = new BN(1).ushln(256);

function sha256d(data: Buffer): Buffer {
  return hash('sha256', hash('sha256', data, 'buffer'), 'buffer');
}

/** Double SHA-256 of an 80-byte header, internal byte order (reverse for RPC hex). */
export function blockHash(header80: Buffer): Buffer {
  if (header80.length !== 80) throw new RangeError(`a block header is 80 bytes, got ${header80.length}`);
  return sha256d(header80);
}

interface Compact {
  target: BN;
  negative: boolean;
  overflow: boolean;
}

/** Core's `arith_uint256::SetCompact`, including its sign and overflow flags. */
function decodeCompact(bits: number): Compact {
  const size = bits >>> 24;
  let word = bits & 0x007f_ffff;
  let target: BN;
  if (size <= 3) {
    word >>>= 8 * (3 - size);
    target = new BN(word);
  } else {
    target = new BN(word).ushln(8 * (size - 3));
  }
  const negative = word !== 0 && (bits & 0x0080_0000) !== 0;
  const overflow = word !== 0 && (size > 34 || (word > 0xff && size > 33) || (word > 0xffff && size > 32));
  return { target, negative, overflow };
}

function usableTarget(bits: number): BN | string {
  const { target, negative, overflow } = decodeCompact(bits);
  if (negative) return 'is negative';
  if (overflow) return 'overflows 256 bits';
  if (target.isZero()) return 'is zero';
  return target;
}

/**
 * The 256-bit target a header's `bits` encodes. Throws RangeError for the
 * encodings Core refuses (negative, overflowing or zero), which no valid block
 * can carry; callers that only need a yes/no use `checkProofOfWork`.
 */
export function targetFromBits(bits: number): BN {
  const t = usableTarget(bits);
  if (typeof t === 'string') throw new RangeError(`compact target 0x${(bits >>> 0).toString(16).padStart(8, '0')} ${t}`);
  return t;
}

/**
 * True when the hash, read as a little-endian 256-bit number, is at most the
 * target `bits` encodes. There is no network pow limit and no retarget check
 * (docs/spec.md §2.8): only the header's own claim is verified.
 */
export function checkProofOfWork(hash: Buffer, bits: number): boolean {
  const t = usableTarget(bits);
  if (typeof t === 'string') return false;
  return new BN(hash, 'le').lte(t);
}

/**
 * The expected number of hashes behind one block, floor(2^256 / (target+1)),
 * as Core's `GetBlockProof`. Summed along a branch it is the chainwork that
 * decides between branches.
 */
export function blockWork(bits: number): BN {
  return TWO_256.div(targetFromBits(bits).addn(1));
}

/**
 * Bitcoin's merkle root over txids in internal order: an odd level repeats
 * its last hash. Blind to the duplicate-subtree mutation (CVE-2012-2459);
 * blocks from a file go through `merkleTreeOf`, which reports it. An empty
 * list has no root and throws.
 */
export function merkleRoot(txids: Buffer[]): Buffer {
  if (txids.length === 0) throw new RangeError('a merkle root needs at least one transaction');
  let level = txids;
  const pair = Buffer.allocUnsafe(64);
  while (level.length > 1) {
    const next: Buffer[] = new Array<Buffer>((level.length + 1) >> 1);
    for (let i = 0; i < level.length; i += 2) {
      level[i].copy(pair, 0);
      (i + 1 < level.length ? level[i + 1] : level[i]).copy(pair, 32);
      next[i >> 1] = sha256d(pair);
    }
    level = next;
  }
  return level[0];
}

/**
 * The merkle root over `n` txids stored back to back in `txids` (32 bytes
 * each), and whether the tree is mutated as Core's `ComputeMerkleRoot`
 * reports it: at some level two paired hashes are equal. Such a tree has the
 * same root as a shorter transaction list (CVE-2012-2459: repeating the last
 * transactions keeps the root), so a body with that shape is not the block
 * its header commits to (docs/spec.md §2.8). Works level by level in one
 * scratch copy, writing each parent over its left child, so it allocates no
 * buffer per node.
 */
/** Whether the 32 bytes at `at` equal the 32 after them; a loop, as pairs almost always differ in their first byte (a native compare costs a call each). */
function samePair(b: Buffer, at: number): boolean {
  for (let k = 0; k < 32; k++) if (b[at + k] !== b[at + 32 + k]) return false;
  return true;
}

export function merkleTreeOf(txids: Buffer, n: number): { root: Buffer; mutated: boolean } {
  if (n === 0) throw new RangeError('a merkle root needs at least one transaction');
  const level = Buffer.allocUnsafe(Math.max(64, n * 32 + 32));
  txids.copy(level, 0, 0, n * 32);
  let mutated = false;
  while (n > 1) {
    // Only the pairs that exist count: the copy of an odd level's last hash is not a mutation.
    for (let i = 0; i + 1 < n && !mutated; i += 2) {
      if (samePair(level, i * 32)) mutated = true;
    }
    if (n % 2 === 1) level.copy(level, n * 32, (n - 1) * 32, n * 32);
    const half = (n + 1) >> 1;
    for (let i = 0; i < half; i++) {
      putDigest(level, i * 32, sha256dLatin1(level.subarray(i * 64, i * 64 + 64)));
    }
    n = half;
  }
  // `level` is this call's own: its first hash is the root, no copy needed.
  return { root: level.subarray(0, 32), mutated };
}
