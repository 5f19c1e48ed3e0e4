/**
 * MuHash3072, bit-for-bit compatible with Bitcoin Core's `crypto/muhash.cpp`.
 *
 * The registry root must be reproducible by anyone with Core's reference
 * code, so element mapping, modulus, byte order and the final hash follow
 * Core exactly. Only the arithmetic differs: it is done with bn.js, using a
 * reduction tuned for the pseudo-Mersenne modulus instead of bn.js's generic
 * long division.
 */
import { createCipheriv, createHash } from 'node:crypto';
import BN from 'bn.js';

/** Bytes in one 3072-bit group element, as Core serializes it. */
export const MUHASH_BYTES = 384;

/** Bytes in a serialized accumulator: numerator then denominator. */
export const MUHASH_STATE_BYTES = 2 * MUHASH_BYTES;

const MODULUS_BITS = 3072;
const PRIME_DIFF = 1103717;

/**
 * The group modulus 2^3072 − 1103717, the largest 3072-bit safe prime.
 * Core picked it so that reduction needs only a multiply by a small constant.
 */
export const MUHASH_PRIME: BN = new BN(1).iushln(MODULUS_BITS).isubn(PRIME_DIFF);

/**
 * The parts of bn.js's instance layout the reduction works on. They are
 * public in bn.js's source but absent from its type declarations.
 */
interface BNLimbs {
  words: number[];
  length: number;
  negative: number;
}

/** bn.js stores 26-bit little-endian words. */
const WORD_MASK = 0x3ffffff;
const WORD_BASE = 0x4000000;
/** 3072 = 118·26 + 4: bit 3072 is bit 4 of word 118. */
const TOP_WORD = 118;
const TOP_BITS = 4;
const TOP_MASK = (1 << TOP_BITS) - 1;

/**
 * Folds x = hi·2^3072 + lo into hi·1103717 + lo (≡ x mod p), in place, on
 * bn.js's words, until x < 2^3072. One pass touches each word once, which is
 * what makes this cheaper than `umod`'s schoolbook division. Each partial sum
 * stays below 2^48, inside a double's exact range.
 */
function foldBelow2e3072(x: BNLimbs): void {
  const w = x.words;
  while (x.length > TOP_WORD + 1 || (x.length === TOP_WORD + 1 && w[TOP_WORD] > TOP_MASK)) {
    const len = x.length;
    const hiLen = len - TOP_WORD;
    const outLen = hiLen > TOP_WORD + 1 ? hiLen : TOP_WORD + 1;
    let carry = 0;
    // Word j is rewritten only after hi_j is read; every later read is at index ≥ 118 + j + 1.
    for (let j = 0; j < outLen; j++) {
      let hi = 0;
      if (j < hiLen) {
        const i = TOP_WORD + j;
        const above = i + 1 < len ? w[i + 1] : 0;
        hi = (w[i] >>> TOP_BITS) | ((above & TOP_MASK) << (26 - TOP_BITS));
      }
      const lo = j < TOP_WORD ? w[j] : j === TOP_WORD ? w[j] & TOP_MASK : 0;
      const s = lo + hi * PRIME_DIFF + carry;
      w[j] = s & WORD_MASK;
      carry = (s / WORD_BASE) | 0;
    }
    let n = outLen;
    if (carry !== 0) w[n++] = carry;
    while (n > 1 && w[n - 1] === 0) n--;
    x.length = n;
  }
}

/**
 * bn.js's pseudo-Mersenne hook: a `Red` whose `prime` is set calls
 * `prime.ireduce` instead of `umod`. bn.js only ships such primes for
 * elliptic curves, so this supplies one for 2^3072 − 1103717.
 */
class Prime3072 implements BN.MPrime {
  readonly name = 'muhash3072';
  readonly p = MUHASH_PRIME;
  readonly n = MODULUS_BITS;
  readonly k = new BN(PRIME_DIFF);

  ireduce(num: BN): BN {
    foldBelow2e3072(num as unknown as BNLimbs);
    if (num.ucmp(MUHASH_PRIME) >= 0) num.isub(MUHASH_PRIME);
    return num;
  }
}

type RedNum = ReturnType<BN['toRed']>;

interface Reducer {
  ctx: BN.ReductionContext;
  /** Reduces a non-negative BN in place and tags it with `ctx`. */
  imod(num: BN): RedNum;
}

function makeReducer(fast: boolean): Reducer {
  const ctx = BN.red(MUHASH_PRIME.clone());
  if (fast) ctx.prime = new Prime3072();
  return {
    ctx,
    imod: (num: BN): RedNum => ctx.imod(num) as RedNum,
  };
}

const FAST = makeReducer(true);

/**
 * The reduction context MuHash uses. Exposed so benchmarks and batching
 * callers can compare against, or multiply in, the same field.
 * `generic: true` returns bn.js's stock `BN.red(p)` (long division).
 */
export function muhashRed(generic = false): BN.ReductionContext {
  return generic ? makeReducer(false).ctx : FAST.ctx;
}

const ZERO_IV = Buffer.alloc(16);
const ZERO_KEYSTREAM_INPUT = Buffer.alloc(MUHASH_BYTES);

/**
 * Core's `MuHash3072::ToNum3072`: SHA-256 of the raw bytes keys ChaCha20
 * (nonce 0, block counter 0), whose first 384 keystream bytes are read as a
 * little-endian 3072-bit number. Expanding through a stream cipher makes the
 * group element uniform over the whole field, which the multiset hash's
 * security rests on. The result is not reduced mod p, exactly like Core.
 *
 * Node's `chacha20` IV is 4-byte LE counter ‖ 12-byte nonce, hence all zeros.
 */
export function elementToNum(data: Uint8Array): BN {
  const key = createHash('sha256').update(data).digest();
  const keystream = createCipheriv('chacha20', key, ZERO_IV).update(ZERO_KEYSTREAM_INPUT);
  return new BN(keystream, 'le');
}

function numToBytes(n: BN): Buffer {
  return n.toArrayLike(Buffer, 'le', MUHASH_BYTES);
}

function bytesToRed(bytes: Uint8Array, r: Reducer): RedNum {
  return r.imod(new BN(bytes, 'le'));
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
  private num: RedNum;
  private den: RedNum;
  private readonly r: Reducer;

  /** The empty set. `genericReduction` exists only to benchmark bn.js's stock reduction. */
  constructor(genericReduction = false) {
    this.r = genericReduction ? makeReducer(false) : FAST;
    this.num = new BN(1).toRed(this.r.ctx);
    this.den = new BN(1).toRed(this.r.ctx);
  }

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
   * of such), so callers can hash elements elsewhere, e.g. off the hot path,
   * and only multiply here. `n` must be non-negative; it is not modified.
   */
  insertNum(n: BN): this {
    this.num = this.num.redIMul(this.r.imod(n.clone()));
    return this;
  }

  /** The removal counterpart of {@link MuHash3072.insertNum}. */
  removeNum(n: BN): this {
    this.den = this.den.redIMul(this.r.imod(n.clone()));
    return this;
  }

  /** Set union (Core's `operator*=`): afterwards this holds both multisets. */
  combine(other: MuHash3072): this {
    this.num = this.num.redIMul(this.r.imod(other.num.fromRed()));
    this.den = this.den.redIMul(this.r.imod(other.den.fromRed()));
    return this;
  }

  /** Set difference (Core's `operator/=`): afterwards this holds this minus other. */
  divide(other: MuHash3072): this {
    this.num = this.num.redIMul(this.r.imod(other.den.fromRed()));
    this.den = this.den.redIMul(this.r.imod(other.num.fromRed()));
    return this;
  }

  /**
   * Core's `Finalize`: SHA-256 of the 384-byte little-endian encoding of
   * num·den⁻¹ mod p. Unlike Core it leaves the accumulator untouched, so
   * {@link MuHash3072.serialize} output does not depend on whether a digest
   * was taken.
   */
  finalize(): Buffer {
    if (this.den.isZero()) throw new RangeError('MuHash3072: zero denominator');
    const quotient = this.num.redMul(this.den.redInvm());
    return createHash('sha256').update(numToBytes(quotient)).digest();
  }

  /**
   * Numerator ‖ denominator, each 384 bytes little-endian: Core's own
   * serialization, so a state can be stored per height and restored on a
   * reorg without replaying elements. Values are always reduced mod p.
   */
  serialize(): Buffer {
    return Buffer.concat([numToBytes(this.num), numToBytes(this.den)]);
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
    out.num = bytesToRed(buf.subarray(0, MUHASH_BYTES), out.r);
    out.den = bytesToRed(buf.subarray(MUHASH_BYTES), out.r);
    if (out.den.isZero()) throw new RangeError('MuHash3072: zero denominator');
    return out;
  }

  /** An independent copy, e.g. to snapshot the root before applying a block. */
  clone(): MuHash3072 {
    const out = new MuHash3072(this.r !== FAST);
    out.num = this.num.clone() as RedNum;
    out.den = this.den.clone() as RedNum;
    return out;
  }
}
