import fc from 'fast-check';
import {
  compactSizeLength,
  encodeCompactSize,
  fromHex,
  readCompactSize,
  reverseHex,
  toHex,
  writeCompactSize,
} from '../script/bytes.js';
import { MuHash3072 } from '../script/muhash.js';
import { RegistryRoot, RootElement, serializeRootElement } from '../script/root.js';

const seq = (start: number, n: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff));

const sample: RootElement = {
  stakeScript: Buffer.from('0014751e76e8199196d454941c45d1b3a323f1433bd6', 'hex'),
  firstHeight: 1,
  firstTxid: seq(0x00, 32),
  tipHeight: 0x01020304,
  tipTxid: seq(0xa0, 32),
  timestamp: 0x0123456789,
  renewals: 2,
};

describe('serializeRootElement', () => {
  it('lays out compactSize, script, heights, txids, timestamp and renewals little-endian', () => {
    const expected = [
      '16', // compactSize(22)
      '0014751e76e8199196d454941c45d1b3a323f1433bd6', // stakeScript
      '01000000', // firstHeight 1
      '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', // firstTxid, as given
      '04030201', // tipHeight 0x01020304
      'a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf', // tipTxid, as given
      '8967452301000000', // timestamp 0x0123456789, above 2^32
      '02000000', // renewals 2
    ].join('');
    expect(serializeRootElement(sample).toString('hex')).toBe(expected);
  });

  it.each([
    [0, '00'],
    [252, 'fc'],
    [253, 'fdfd00'],
    [65535, 'fdffff'],
    [65536, 'fe00000100'],
  ])('prefixes a %i-byte stake script with compactSize %s', (len, prefix) => {
    const out = serializeRootElement({ ...sample, stakeScript: Buffer.alloc(len, 0x51) });
    expect(out.subarray(0, prefix.length / 2).toString('hex')).toBe(prefix);
    expect(out).toHaveLength(prefix.length / 2 + len + 4 + 32 + 4 + 32 + 8 + 4);
  });

  it('rejects txids that are not 32 bytes and fields outside their integer width', () => {
    expect(() => serializeRootElement({ ...sample, firstTxid: seq(0, 31) })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, tipTxid: seq(0, 33) })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, firstHeight: -1 })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, tipHeight: 2 ** 32 })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, renewals: 1.5 })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, timestamp: -1 })).toThrow(RangeError);
    expect(() => serializeRootElement({ ...sample, timestamp: 2 ** 53 })).toThrow(RangeError);
  });
});

describe('compactSize helpers', () => {
  it.each<[number | bigint, string]>([
    [0, '00'],
    [252, 'fc'],
    [253, 'fdfd00'],
    [65535, 'fdffff'],
    [65536, 'fe00000100'],
    [0xffffffff, 'feffffffff'],
    [0x100000000, 'ff0000000001000000'],
    [0xffffffffffffffffn, 'ffffffffffffffffff'],
  ])('encodes %s as %s and reads it back', (n, hex) => {
    expect(encodeCompactSize(n).toString('hex')).toBe(hex);
    expect(compactSizeLength(n)).toBe(hex.length / 2);
    const read = readCompactSize(Buffer.from(hex, 'hex'), 0);
    expect(read).not.toBeNull();
    expect(BigInt(read?.value ?? -1)).toBe(BigInt(n));
    expect(read?.next).toBe(hex.length / 2);
  });

  it('writes at an offset and returns the offset after the value', () => {
    const buf = Buffer.alloc(6);
    expect(writeCompactSize(buf, 1, 65535)).toBe(4);
    expect(buf.toString('hex')).toBe('00fdffff0000');
    expect(() => writeCompactSize(buf, 4, 65536)).toThrow(RangeError);
  });

  it('rejects negative, fractional and over-64-bit sizes', () => {
    expect(() => encodeCompactSize(-1)).toThrow(RangeError);
    expect(() => encodeCompactSize(1.5)).toThrow(RangeError);
    expect(() => encodeCompactSize(2n ** 64n)).toThrow(RangeError);
  });

  it('refuses non-canonical and truncated encodings when reading', () => {
    expect(readCompactSize(Buffer.from('fdfc00', 'hex'), 0)).toBeNull();
    expect(readCompactSize(Buffer.from('feffff0000', 'hex'), 0)).toBeNull();
    expect(readCompactSize(Buffer.from('ffffffffff00000000', 'hex'), 0)).toBeNull();
    expect(readCompactSize(Buffer.from('fdff', 'hex'), 0)).toBeNull();
    expect(readCompactSize(Buffer.alloc(0), 0)).toBeNull();
  });
});

describe('hex helpers', () => {
  it('returns null from fromHex on odd length or a non-hex character', () => {
    expect(fromHex('abc')).toBeNull();
    expect(fromHex('zz')).toBeNull();
    expect(fromHex('0x00')).toBeNull();
    expect(fromHex('AbCd')?.toString('hex')).toBe('abcd');
    expect(fromHex('')).toHaveLength(0);
  });

  it('converts between RPC display order and internal order with reverseHex', () => {
    expect(reverseHex('000102ff')).toBe('ff020100');
    expect(reverseHex(reverseHex('deadbeef'))).toBe('deadbeef');
    expect(() => reverseHex('abc')).toThrow(RangeError);
  });

  it('prints lowercase hex of a view without its surrounding buffer', () => {
    const whole = Buffer.from('00aabbcc', 'hex');
    expect(toHex(whole.subarray(1, 3))).toBe('aabb');
  });
});

const rootElement: fc.Arbitrary<RootElement> = fc.record({
  stakeScript: fc.uint8Array({ minLength: 1, maxLength: 40 }),
  firstHeight: fc.integer({ min: 0, max: 0xffffffff }),
  firstTxid: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  tipHeight: fc.integer({ min: 0, max: 0xffffffff }),
  tipTxid: fc.uint8Array({ minLength: 32, maxLength: 32 }),
  timestamp: fc.maxSafeNat(),
  renewals: fc.integer({ min: 0, max: 0xffffffff }),
});

describe('RegistryRoot', () => {
  it('prints the raw finalized MuHash bytes as lowercase hex, not reversed', () => {
    const root = new RegistryRoot().insert(sample).finalize();
    const direct = new MuHash3072().insert(serializeRootElement(sample)).finalize().toString('hex');
    expect(root).toBe(direct);
    expect(root).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on the order registrations are inserted', () => {
    fc.assert(
      fc.property(
        fc
          .array(rootElement, { maxLength: 6 })
          .chain((es) => fc.tuple(fc.constant(es), fc.shuffledSubarray(es, { minLength: es.length, maxLength: es.length }))),
        ([es, shuffled]) => {
          const a = new RegistryRoot();
          const b = new RegistryRoot();
          for (const e of es) a.insert(e);
          for (const e of shuffled) b.insert(e);
          expect(a.finalize()).toBe(b.finalize());
        },
      ),
      { numRuns: 25 },
    );
  });

  it('makes a renewal (remove old, insert new) equal to inserting the new element directly', () => {
    fc.assert(
      fc.property(
        fc.array(rootElement, { maxLength: 4 }),
        rootElement,
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.maxSafeNat(),
        (others, old, newTip, newTimestamp) => {
          const renewed: RootElement = {
            ...old,
            tipHeight: (old.tipHeight + 1) >>> 0,
            tipTxid: newTip,
            timestamp: newTimestamp,
            renewals: (old.renewals + 1) >>> 0,
          };
          const incremental = new RegistryRoot();
          for (const e of others) incremental.insert(e);
          incremental.insert(old).remove(old).insert(renewed);
          const direct = new RegistryRoot();
          for (const e of [renewed, ...others]) direct.insert(e);
          expect(incremental.finalize()).toBe(direct.finalize());
        },
      ),
      { numRuns: 25 },
    );
  });

  it('distinguishes elements that differ in a single field', () => {
    const base = new RegistryRoot().insert(sample).finalize();
    const variants: RootElement[] = [
      { ...sample, firstHeight: 2 },
      { ...sample, tipHeight: 0x01020305 },
      { ...sample, timestamp: sample.timestamp + 1 },
      { ...sample, renewals: 3 },
      { ...sample, tipTxid: Buffer.from(sample.tipTxid).reverse() },
    ];
    for (const v of variants) expect(new RegistryRoot().insert(v).finalize()).not.toBe(base);
  });

  it('restores a serialized root and keeps clones independent', () => {
    const root = new RegistryRoot().insert(sample);
    const restored = RegistryRoot.deserialize(root.serialize());
    expect(restored.finalize()).toBe(root.finalize());
    const snapshot = root.clone();
    root.remove(sample);
    expect(snapshot.finalize()).toBe(restored.finalize());
    expect(root.finalize()).toBe(new RegistryRoot().finalize());
  });
});
