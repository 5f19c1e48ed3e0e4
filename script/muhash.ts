/**
 * MuHash3072, bit-for-bit compatible with Bitcoin Core's `crypto/muhash.cpp`.
 *
 * The registry root must be reproducible by anyone with Core's reference
 * code, so element mapping, modulus, byte order and the final hash follow
 * Core exactly. Only the arithmetic differs: it uses JavaScript's native
 * bigint, whose 3072-bit multiply runs in V8's C++, with a reduction tuned
 * for the pseudo-Mersenne modulus (about 3 µs per multiply, against 30 µs
 * with bn.js).
 */
import { hash } from 'node:crypto';

/** Bytes in one 3072-bit group element, as Core serializes it. */
export const MUHASH_BYTES = 384;

/** Bytes in a serialized accumulator: numerator then denominator. */
export const MUHASH_STATE_BYTES = 2 * MUHASH_BYTES;

const MODULUS_BITS = 3072n;
const PRIME_DIFF = 1103717n;
const LOW_MASK = (1n << MODULUS_BITS) - 1n;

/**
 * The group modulus 2^3072 − 1103717, the largest 3072-bit safe prime.
 * Core picked it so that reduction needs only a multiply by a small constant.
 */
export const MUHASH_PRIME: bigint = (1n << MODULUS_BITS) - PRIME_DIFF;

/**
 * x mod p for any x ≥ 0: folds x = hi·2^3072 + lo into hi·1103717 + lo
 * (≡ x mod p) until it is below 2^3072, then subtracts p at most once. A
 * product of two reduced values needs two folds; no division is done.
 */
export function reduceMod3072(x: bigint): bigint {
  while (x > LOW_MASK) x = (x & LOW_MASK) + (x >> MODULUS_BITS) * PRIME_DIFF;
  return x >= MUHASH_PRIME ? x - MUHASH_PRIME : x;
}

/** a⁻¹ mod p by the extended Euclidean algorithm; `a` must be reduced and non-zero. */
function invert(a: bigint): bigint {
  let r0 = MUHASH_PRIME;
  let r1 = a;
  let t0 = 0n;
  let t1 = 1n;
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [t0, t1] = [t1, t0 - q * t1];
  }
  return t0 < 0n ? t0 + MUHASH_PRIME : t0;
}

function fromLE(bytes: Uint8Array): bigint {
  return BigInt('0x' + (Buffer.from(bytes).reverse().toString('hex') || '0'));
}

function toLE(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(2 * MUHASH_BYTES, '0'), 'hex').reverse();
}

/** The 384 keystream bytes: 96 little-endian words, then reversed in place (see {@link elementToNum}). */
const words = new Uint32Array(MUHASH_BYTES / 4);
const wordBytes = Buffer.from(words.buffer);
/** A Uint32Array holds its words in the host's byte order; on a big-endian host they are swapped to little-endian bytes first. */
const BIG_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 0;

/** The little-endian 32-bit word at `at` of a key held as a latin1 string (one byte per character). */
function keyWord(key: string, at: number): number {
  return (key.charCodeAt(at) | (key.charCodeAt(at + 1) << 8) | (key.charCodeAt(at + 2) << 16) | (key.charCodeAt(at + 3) << 24)) >>> 0;
}

/**
 * The first 384 bytes of ChaCha20's keystream (RFC 8439) under `key` (nonce 0,
 * block counter 0), into `words` in order. The key is the 32-byte digest
 * as a latin1 string: `hash(…, 'latin1')` makes no Buffer (no ArrayBuffer
 * for the collector to sweep), 0.45-0.57 µs a digest against 1.1-1.3 µs for
 * `'buffer'` and its reads (this machine, under load).
 *
 * The state lives in sixteen locals and the double round is written out,
 * instead of a loop of quarter rounds over typed-array slots: the six blocks
 * take about 1.0 µs per element (microbenchmark, this machine).
 */
function keystream(key: string): void {
  const k0 = keyWord(key, 0), k1 = keyWord(key, 4), k2 = keyWord(key, 8), k3 = keyWord(key, 12);
  const k4 = keyWord(key, 16), k5 = keyWord(key, 20), k6 = keyWord(key, 24), k7 = keyWord(key, 28);
  const out = words;
  for (let block = 0; block < MUHASH_BYTES / 64; block++) {
    let x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
    let x4 = k0, x5 = k1, x6 = k2, x7 = k3, x8 = k4, x9 = k5, x10 = k6, x11 = k7;
    let x12 = block, x13 = 0, x14 = 0, x15 = 0;
    for (let r = 0; r < 10; r++) {
      // Columns.
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 16) | (x12 >>> 16);
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 12) | (x4 >>> 20);
      x0 = (x0 + x4) | 0; x12 ^= x0; x12 = (x12 << 8) | (x12 >>> 24);
      x8 = (x8 + x12) | 0; x4 ^= x8; x4 = (x4 << 7) | (x4 >>> 25);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 16) | (x13 >>> 16);
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 12) | (x5 >>> 20);
      x1 = (x1 + x5) | 0; x13 ^= x1; x13 = (x13 << 8) | (x13 >>> 24);
      x9 = (x9 + x13) | 0; x5 ^= x9; x5 = (x5 << 7) | (x5 >>> 25);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 16) | (x14 >>> 16);
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 12) | (x6 >>> 20);
      x2 = (x2 + x6) | 0; x14 ^= x2; x14 = (x14 << 8) | (x14 >>> 24);
      x10 = (x10 + x14) | 0; x6 ^= x10; x6 = (x6 << 7) | (x6 >>> 25);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 16) | (x15 >>> 16);
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 12) | (x7 >>> 20);
      x3 = (x3 + x7) | 0; x15 ^= x3; x15 = (x15 << 8) | (x15 >>> 24);
      x11 = (x11 + x15) | 0; x7 ^= x11; x7 = (x7 << 7) | (x7 >>> 25);
      // Diagonals.
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 16) | (x15 >>> 16);
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 12) | (x5 >>> 20);
      x0 = (x0 + x5) | 0; x15 ^= x0; x15 = (x15 << 8) | (x15 >>> 24);
      x10 = (x10 + x15) | 0; x5 ^= x10; x5 = (x5 << 7) | (x5 >>> 25);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 16) | (x12 >>> 16);
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 12) | (x6 >>> 20);
      x1 = (x1 + x6) | 0; x12 ^= x1; x12 = (x12 << 8) | (x12 >>> 24);
      x11 = (x11 + x12) | 0; x6 ^= x11; x6 = (x6 << 7) | (x6 >>> 25);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 16) | (x13 >>> 16);
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 12) | (x7 >>> 20);
      x2 = (x2 + x7) | 0; x13 ^= x2; x13 = (x13 << 8) | (x13 >>> 24);
      x8 = (x8 + x13) | 0; x7 ^= x8; x7 = (x7 << 7) | (x7 >>> 25);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 16) | (x14 >>> 16);
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 12) | (x4 >>> 20);
      x3 = (x3 + x4) | 0; x14 ^= x3; x14 = (x14 << 8) | (x14 >>> 24);
      x9 = (x9 + x14) | 0; x4 ^= x9; x4 = (x4 << 7) | (x4 >>> 25);
    }
    // The keystream word is the working word plus the input word (mod 2^32).
    const o = block * 16;
    out[o] = x0 + 0x61707865; out[o + 1] = x1 + 0x3320646e; out[o + 2] = x2 + 0x79622d32; out[o + 3] = x3 + 0x6b206574;
    out[o + 4] = x4 + k0; out[o + 5] = x5 + k1; out[o + 6] = x6 + k2; out[o + 7] = x7 + k3;
    out[o + 8] = x8 + k4; out[o + 9] = x9 + k5; out[o + 10] = x10 + k6; out[o + 11] = x11 + k7;
    out[o + 12] = x12 + block; out[o + 13] = x13; out[o + 14] = x14; out[o + 15] = x15;
  }
}

/**
 * Core's `MuHash3072::ToNum3072`: SHA-256 of the raw bytes keys ChaCha20
 * (nonce 0, block counter 0), whose first 384 keystream bytes are read as a
 * little-endian 3072-bit number. Expanding through a stream cipher makes the
 * group element uniform over the whole field, which the multiset hash's
 * security rests on. The result is not reduced mod p, exactly like Core.
 *
 * The cipher runs here in JavaScript: Node's `createCipheriv('chacha20')`
 * costs more to set up than these six blocks take to compute (measured: the
 * whole mapping went from about 16 µs to 10 µs of CPU). The keystream's
 * bytes are reversed in place (one native call) so that one native
 * `toString('hex')` spells the number big-endian for `BigInt`, instead of
 * 384 two-digit pieces concatenated; byte-swapping each word in JavaScript
 * instead cost 0.8 µs more. With the unrolled cipher this took the mapping
 * from 9.5-9.9 to 4.2-4.3 µs of CPU per element (old and new side by side in
 * one process, 20 000 72-byte elements, this machine under load): about
 * SHA-256 1.1, the cipher 1.0, the hex and its parse 1.4. Taking the digest
 * as latin1 (see {@link keystream}) took it on to 2.7 µs (the same side by
 * side), with a mapped element multiplied and reduced in 6.8-6.9 µs against
 * 14.2-14.5 µs before.
 */
export function elementToNum(data: Uint8Array): bigint {
  // Node accepts any Buffer encoding here; its typings list only hex, base64 and base64url.
  keystream(hash('sha256', data, 'latin1' as 'hex'));
  if (BIG_ENDIAN_HOST) wordBytes.swap32();
  wordBytes.reverse();
  return BigInt('0x' + wordBytes.toString('hex'));
}

/**
 * A multiset hash: a set of byte strings maps to a 32-byte digest that does
 * not depend on insertion order and can be updated incrementally, so the
 * registry root never has to be recomputed from scratch and a reorg can be
 * undone by removing exactly what was inserted.
 *
 * Insertions multiply the numerator and removals the denominator, so the
 * only modular inverse (by far the most expensive operation) happens once,
 * in {@link MuHash3072.finalize}.
 */
export class MuHash3072 {
  private num = 1n;
  private den = 1n;
  /** The last serialization and the state it was of: most blocks store an unchanged state again. */
  private saved: { readonly num: bigint; readonly den: bigint; readonly bytes: Buffer } | null = null;

  /** Adds one element (its raw bytes, hashed via {@link elementToNum}). */
  insert(data: Uint8Array): this {
    return this.insertNum(elementToNum(data));
  }

  /** Removes one element; removing what was never inserted is allowed and cancels a later insert. */
  remove(data: Uint8Array): this {
    return this.removeNum(elementToNum(data));
  }

  /**
   * Inserts an element already mapped by {@link elementToNum} (or a product
   * of such), so callers can hash elements elsewhere and only multiply here.
   * `n` must be non-negative.
   */
  insertNum(n: bigint): this {
    this.num = reduceMod3072(this.num * reduceMod3072(n));
    return this;
  }

  /** The removal counterpart of {@link MuHash3072.insertNum}. */
  removeNum(n: bigint): this {
    this.den = reduceMod3072(this.den * reduceMod3072(n));
    return this;
  }

  /** Set union (Core's `operator*=`): afterwards this holds both multisets. */
  combine(other: MuHash3072): this {
    this.num = reduceMod3072(this.num * other.num);
    this.den = reduceMod3072(this.den * other.den);
    return this;
  }

  /** Set difference (Core's `operator/=`): afterwards this holds this minus other. */
  divide(other: MuHash3072): this {
    this.num = reduceMod3072(this.num * other.den);
    this.den = reduceMod3072(this.den * other.num);
    return this;
  }

  /**
   * Core's `Finalize`: SHA-256 of the 384-byte little-endian encoding of
   * num·den⁻¹ mod p. Unlike Core it leaves the accumulator untouched, so
   * {@link MuHash3072.serialize} output does not depend on whether a digest
   * was taken.
   */
  finalize(): Buffer {
    if (this.den === 0n) throw new RangeError('MuHash3072: zero denominator');
    const quotient = reduceMod3072(this.num * invert(this.den));
    return hash('sha256', toLE(quotient), 'buffer');
  }

  /**
   * Numerator ‖ denominator, each 384 bytes little-endian: Core's own
   * serialization, so a state can be stored per height and restored on a
   * reorg without replaying elements. Values are always reduced mod p.
   */
  serialize(): Buffer {
    return Buffer.from(this.serialized());
  }

  /**
   * `serialize` without the copy: the same buffer as long as the state does
   * not change, so a caller can tell an unchanged state by identity. Shared:
   * never written into.
   */
  serialized(): Buffer {
    const s = this.saved;
    if (s !== null && s.num === this.num && s.den === this.den) return s.bytes;
    const bytes = Buffer.concat([toLE(this.num), toLE(this.den)]);
    this.saved = { num: this.num, den: this.den, bytes };
    return bytes;
  }

  /**
   * Restores a {@link MuHash3072.serialize} state. Like Core it accepts
   * unreduced values (≥ p); it rejects a denominator ≡ 0, which no sequence
   * of operations can produce and which has no inverse.
   */
  static deserialize(buf: Uint8Array): MuHash3072 {
    if (buf.length !== MUHASH_STATE_BYTES) {
      throw new RangeError(`MuHash3072: state must be ${MUHASH_STATE_BYTES} bytes, got ${buf.length}`);
    }
    const out = new MuHash3072();
    out.num = reduceMod3072(fromLE(buf.subarray(0, MUHASH_BYTES)));
    out.den = reduceMod3072(fromLE(buf.subarray(MUHASH_BYTES)));
    if (out.den === 0n) throw new RangeError('MuHash3072: zero denominator');
    return out;
  }

  /** An independent copy, e.g. to snapshot the root before applying a block. */
  clone(): MuHash3072 {
    const out = new MuHash3072();
    out.num = this.num;
    out.den = this.den;
    return out;
  }
}
