import fc from 'fast-check';
import { createCipheriv, createHash } from 'node:crypto';
import {
  MUHASH_BYTES,
  MUHASH_PRIME,
  MUHASH_STATE_BYTES,
  MuHash3072,
  elementToNum,
  reduceMod3072,
} from '../script/muhash.js';

/**
 * Byte order in Core's muhash_tests (src/test/crypto_tests.cpp):
 * - `uint256{"…"}` / `uint256S("…")` literals are in display order, i.e. the
 *   32 digest bytes REVERSED, so they are compared after reversing ours.
 * - `HexStr(…)` prints bytes in raw order (the serialization vector and
 *   `out4` in the overflow check), so those are compared as-is.
 */
const displayOrder = (digest: Uint8Array): string => Buffer.from(digest).reverse().toString('hex');

/** Core's `FromInt(i)`: the 32-byte element {i, 0, …, 0} as a one-element set. */
const fromIntBytes = (i: number): Buffer => {
  const b = Buffer.alloc(32);
  b[0] = i;
  return b;
};
const fromInt = (i: number): MuHash3072 => new MuHash3072().insert(fromIntBytes(i));

const emptyDigest = (): string => new MuHash3072().finalize().toString('hex');

/** uint256 literal (display order) from Core's insert/remove checks. */
const CORE_0_TIMES_1_OVER_2 = '10d312b100cbd32ada024a6646e40d3482fcff103668d2625f10002a607d5863';

/** Core's `ser_exp` for FromInt(1)·FromInt(2), raw order (HexStr): 384-byte numerator … */
const CORE_SER_NUMERATOR =
  '1fa093295ea30a6a3acdc7b3f770fa538eff537528e990e2910e40bbcfd7f6696b1256901929094694b56316de342f593303' +
  'dd12ac43e06dce1be1ff8301c845beb15468fff0ef002dbf80c29f26e6452bccc91b5cb9437ad410d2a67ea847887fa3c6' +
  'a6553309946880fe20db2c73fe0641adbd4e86edfee0d9f8cd0ee1230898873dc13ed8ddcaf045c80faa082774279007a2' +
  '253f8922ee3ef361d378a6af3ddaf180b190ac97e556888c36b3d1fb1c85aab9ccd46e3deaeb7b7cf5db067a7e9ff86b65' +
  '8cf3acd6662bbcce37232daa753c48b794356c020090c831a8304416e2aa7ad633c0ddb2f11be1be316a81be7f7e472071' +
  'c042cb68faef549c221ebff209273638b741aba5a81675c45a5fa92fea4ca821d7a324cb1e1a2ccd3b76c4228ec8066dad' +
  '2a5df6e1bd0de45c7dd5de8070bdb46db6c554cf9aefc9b7b2bbf9f75b1864d9f95005314593905c0109b71f703d49944a' +
  'e94477b51dac10a816bb6d1c700bafabc8bd86fac8df24be519a2f2836b16392e18036cb13e48c5c';
/** … followed by the denominator 1 as 384 little-endian bytes. */
const CORE_SER_EXP = CORE_SER_NUMERATOR + '01' + '00'.repeat(MUHASH_BYTES - 1);

/** Core's overflow check: `HexStr(out4)`, raw order. */
const CORE_OVERFLOW_DIGEST = '3a31e6903aff0de9f62f9a9f7f8b861de76ce2cda09822b90014319ae5dc2271';

const TWO_3072 = 1n << 3072n;
const P = MUHASH_PRIME;
const toLE = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(2 * MUHASH_BYTES, '0'), 'hex').reverse();
const fromBytes = (b: Uint8Array): bigint => BigInt('0x' + (Buffer.from(b).toString('hex') || '0'));

describe('MuHash3072 against Core muhash_tests', () => {
  it('uses the modulus 2^3072 - 1103717', () => {
    expect(MUHASH_PRIME).toBe(TWO_3072 - 1103717n);
    expect(MUHASH_PRIME.toString(2)).toHaveLength(3072);
  });

  it('finalizes FromInt(0) * FromInt(1) / FromInt(2) to Core’s uint256 literal', () => {
    const acc = fromInt(0).combine(fromInt(1)).divide(fromInt(2));
    expect(displayOrder(acc.finalize())).toBe(CORE_0_TIMES_1_OVER_2);
  });

  it('reaches the same hash through Insert and Remove of 32-byte counters', () => {
    const acc = fromInt(0).insert(fromIntBytes(1)).remove(fromIntBytes(2));
    expect(displayOrder(acc.finalize())).toBe(CORE_0_TIMES_1_OVER_2);
  });

  it('serializes FromInt(1) * FromInt(2) exactly as Core’s ser_exp', () => {
    const serchk = fromInt(1).combine(fromInt(2));
    expect(CORE_SER_EXP).toHaveLength(2 * MUHASH_STATE_BYTES);
    expect(serchk.serialize().toString('hex')).toBe(CORE_SER_EXP);
  });

  it('deserializes Core’s ser_exp to a state with the same digest', () => {
    const serchk = fromInt(1).combine(fromInt(2));
    const deserchk = MuHash3072.deserialize(Buffer.from(CORE_SER_EXP, 'hex'));
    expect(deserchk.finalize().toString('hex')).toBe(serchk.finalize().toString('hex'));
  });

  it('reproduces Core’s overflow check: an all-0xff numerator above the modulus', () => {
    const ssMax = Buffer.alloc(MUHASH_STATE_BYTES);
    ssMax.fill(0xff, 0, MUHASH_BYTES);
    ssMax[MUHASH_BYTES] = 1;
    expect(MuHash3072.deserialize(ssMax).finalize().toString('hex')).toBe(CORE_OVERFLOW_DIGEST);
  });

  it('gives the same digest for every order Core’s randomized loop tries (table[i ^ order])', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 4, maxLength: 4 }), (table) => {
        const digests = [0, 1, 2, 3].map((order) => {
          const acc = new MuHash3072();
          for (let i = 0; i < 4; i++) {
            const t = table[i ^ order];
            if (t & 4) acc.divide(fromInt(t & 3));
            else acc.combine(fromInt(t & 3));
          }
          return acc.finalize().toString('hex');
        });
        expect(new Set(digests).size).toBe(1);
      }),
      { numRuns: 25 },
    );
  });

  it('returns to the empty set after z = X*Y then z /= Y*X, as in Core’s loop', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 15 }), fc.integer({ min: 0, max: 15 }), (xi, yi) => {
        const x = fromInt(xi);
        const y = fromInt(yi);
        const z = new MuHash3072();
        z.combine(x);
        z.combine(y);
        y.combine(x);
        z.divide(y);
        expect(z.finalize().toString('hex')).toBe(emptyDigest());
      }),
      { numRuns: 20 },
    );
  });

  it('finalizes the empty set to SHA-256 of 1 as 384 little-endian bytes', () => {
    const one = Buffer.alloc(MUHASH_BYTES);
    one[0] = 1;
    expect(emptyDigest()).toBe(createHash('sha256').update(one).digest('hex'));
  });
});

describe('elementToNum', () => {
  it('reads the ChaCha20 keystream as a 3072-bit little-endian number without reducing it', () => {
    const n = elementToNum(fromIntBytes(1));
    expect(n < TWO_3072).toBe(true);
    expect(toLE(n).toString('hex')).toBe(
      new MuHash3072().insert(fromIntBytes(1)).serialize().subarray(0, MUHASH_BYTES).toString('hex'),
    );
  });

  it('matches an independent ChaCha20 (OpenSSL through node:crypto) keyed by SHA-256, read little-endian', () => {
    // RFC 8439 ChaCha20 in OpenSSL takes a 16-byte IV: the 32-bit block counter, then the 96-bit nonce.
    const reference = (data: Uint8Array): bigint => {
      const key = createHash('sha256').update(data).digest();
      const cipher = createCipheriv('chacha20', key, Buffer.alloc(16));
      const stream = Buffer.concat([cipher.update(Buffer.alloc(MUHASH_BYTES)), cipher.final()]);
      return fromBytes(Buffer.from(stream).reverse());
    };
    const fixed = [new Uint8Array(0), new Uint8Array([0]), fromIntBytes(1), Buffer.alloc(200, 0xff)];
    for (const e of fixed) expect(elementToNum(e)).toBe(reference(e));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (e) => {
        expect(elementToNum(e)).toBe(reference(e));
      }),
      { numRuns: 200 },
    );
  });

  it('accepts the empty byte string as an element distinct from a zero byte', () => {
    expect(elementToNum(new Uint8Array(0))).not.toBe(elementToNum(new Uint8Array([0])));
  });
});

describe('the pseudo-Mersenne reduction', () => {
  it('agrees with % on the edges of the field', () => {
    const edges = [0n, 1n, P - 1n, P, P + 1n, TWO_3072 - 1n, TWO_3072, (P - 1n) * (P - 1n), P * P, (1n << 6144n) - 1n, (1n << 9000n) - 1n];
    for (const x of edges) expect(reduceMod3072(x)).toBe(x % P);
  });

  it('agrees with % on random products and wide numbers', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 800 }), (bytes) => {
        const x = fromBytes(bytes);
        expect(reduceMod3072(x)).toBe(x % P);
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same states and digests as a plain reference (% for reduction, Fermat for the inverse)', () => {
    const modpow = (b: bigint, e: bigint): bigint => {
      let r = 1n;
      for (b %= P; e > 0n; e >>= 1n, b = (b * b) % P) if (e & 1n) r = (r * b) % P;
      return r;
    };
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), (elements) => {
        const fast = new MuHash3072();
        let num = 1n;
        let den = 1n;
        elements.forEach((e, i) => {
          const n = elementToNum(e) % P;
          if (i % 3 === 2) {
            fast.remove(e);
            den = (den * n) % P;
          } else {
            fast.insert(e);
            num = (num * n) % P;
          }
        });
        expect(fast.serialize().equals(Buffer.concat([toLE(num), toLE(den)]))).toBe(true);
        const digest = createHash('sha256').update(toLE((num * modpow(den, P - 2n)) % P)).digest();
        expect(fast.finalize().equals(digest)).toBe(true);
      }),
      { numRuns: 10 },
    );
  });
});

const element = fc.uint8Array({ maxLength: 48 });
const elements = fc.array(element, { maxLength: 8 });

describe('MuHash3072 properties', () => {
  it('does not depend on insertion order', () => {
    fc.assert(
      fc.property(
        elements.chain((es) =>
          fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length })),
        ),
        ([es, shuffled]) => {
          const a = new MuHash3072();
          const b = new MuHash3072();
          for (const e of es) a.insert(e);
          for (const e of shuffled) b.insert(e);
          expect(a.finalize().equals(b.finalize())).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('treats insert then remove as the identity', () => {
    fc.assert(
      fc.property(elements, elements, (kept, dropped) => {
        const acc = new MuHash3072();
        for (const e of [...dropped, ...kept]) acc.insert(e);
        for (const e of [...dropped].reverse()) acc.remove(e);
        const keptOnly = new MuHash3072();
        for (const e of kept) keptOnly.insert(e);
        expect(acc.finalize().equals(keptOnly.finalize())).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('finalizes to the empty set’s digest when every insert is removed', () => {
    fc.assert(
      fc.property(elements, (es) => {
        const acc = new MuHash3072();
        for (const e of es) acc.insert(e);
        for (const e of es) acc.remove(e);
        expect(acc.finalize().toString('hex')).toBe(emptyDigest());
      }),
      { numRuns: 20 },
    );
  });

  it('round-trips serialize and deserialize', () => {
    fc.assert(
      fc.property(elements, elements, (ins, rem) => {
        const acc = new MuHash3072();
        for (const e of ins) acc.insert(e);
        for (const e of rem) acc.remove(e);
        const ser = acc.serialize();
        expect(ser).toHaveLength(MUHASH_STATE_BYTES);
        const back = MuHash3072.deserialize(ser);
        expect(back.serialize().equals(ser)).toBe(true);
        expect(back.finalize().equals(acc.finalize())).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('makes combine equal to inserting both sets in sequence', () => {
    fc.assert(
      fc.property(elements, elements, (left, right) => {
        const a = new MuHash3072();
        for (const e of left) a.insert(e);
        const b = new MuHash3072();
        for (const e of right) b.insert(e);
        const seq = new MuHash3072();
        for (const e of [...left, ...right]) seq.insert(e);
        expect(a.combine(b).finalize().equals(seq.finalize())).toBe(true);
      }),
      { numRuns: 30 },
    );
  });

  it('lets insertNum and removeNum stand in for insert and remove', () => {
    fc.assert(
      fc.property(elements, elements, (ins, rem) => {
        const viaBytes = new MuHash3072();
        const viaNums = new MuHash3072();
        for (const e of ins) {
          viaBytes.insert(e);
          viaNums.insertNum(elementToNum(e));
        }
        for (const e of rem) {
          viaBytes.remove(e);
          viaNums.removeNum(elementToNum(e));
        }
        expect(viaNums.serialize().equals(viaBytes.serialize())).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('does not change the state when finalizing', () => {
    const acc = new MuHash3072().insert(fromIntBytes(3)).remove(fromIntBytes(4));
    const before = acc.serialize();
    acc.finalize();
    expect(acc.serialize().equals(before)).toBe(true);
  });

  it('keeps a clone independent of its original', () => {
    const acc = new MuHash3072().insert(fromIntBytes(5));
    const snapshot = acc.clone();
    const digest = snapshot.finalize();
    acc.insert(fromIntBytes(6));
    expect(snapshot.finalize().equals(digest)).toBe(true);
    expect(acc.finalize().equals(digest)).toBe(false);
  });

  it('shares one serialization while the state stays, a new one once it changes; serialize hands out copies', () => {
    const acc = new MuHash3072().insert(fromIntBytes(7));
    const shared = acc.serialized();
    expect(acc.serialized()).toBe(shared);
    expect(acc.serialize().equals(shared)).toBe(true);
    // A copy: writing into it leaves the state and the shared bytes alone.
    const copy = acc.serialize();
    copy.fill(0);
    expect(acc.serialized()).toBe(shared);
    expect(MuHash3072.deserialize(acc.serialize()).finalize().equals(acc.finalize())).toBe(true);
    acc.insert(fromIntBytes(8));
    const moved = acc.serialized();
    expect(moved).not.toBe(shared);
    expect(moved.equals(shared)).toBe(false);
    expect(MuHash3072.deserialize(moved).finalize().equals(acc.finalize())).toBe(true);
  });

  it('rejects a state of the wrong length or with a zero denominator', () => {
    expect(() => MuHash3072.deserialize(Buffer.alloc(MUHASH_STATE_BYTES - 1))).toThrow(RangeError);
    const zeroDen = Buffer.alloc(MUHASH_STATE_BYTES);
    zeroDen[0] = 1;
    expect(() => MuHash3072.deserialize(zeroDen)).toThrow(RangeError);
    const pDen = Buffer.concat([zeroDen.subarray(0, MUHASH_BYTES), toLE(MUHASH_PRIME)]);
    expect(() => MuHash3072.deserialize(pDen)).toThrow(RangeError);
  });
});
