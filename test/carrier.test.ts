import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import {
  EncodeError, MAX_BODY, decodeBody, detectAnnouncement, encodeBody, encodeCarrier, isAttempt,
  type Announcement, type Attempt,
} from '../script/carrier.js';
import { REASON_CODES, type DecodeReason } from '../script/reasons.js';
import { MAX_TIMESTAMP, decodePositiveScriptNum, encodePositiveScriptNum } from '../script/scriptnum.js';
import { stakeTemplate, type StakeTemplate } from '../script/templates.js';

interface Expected {
  kind: 'newnode' | 'renewal';
  stakeScript: string;
  timestamp: number;
  /** RPC (display) byte order, as the CLI prints it. */
  prevTxid: string | null;
}
interface Table {
  valid: Array<{ description: string; hex: string; expected: Expected }>;
  invalid: Array<{ description: string; hex: string; reason: DecodeReason }>;
  none?: Array<{ description: string; hex: string }>;
}

const load = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/script/${name}`, import.meta.url), 'utf8')) as T;

const carriers = load<Table>('carrier.json');
const bodies = load<Table>('body.json');
const templates = load<{
  valid: Array<{ description: string; hex: string; template: StakeTemplate }>;
  invalid: Array<{ description: string; hex: string }>;
}>('templates.json');
const scriptnums = load<{
  valid: Array<{ description: string; hex: string; value: number }>;
  invalid: Array<{ description: string; hex: string }>;
}>('scriptnum.json');

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Buffer => Buffer.from(h, 'hex');
const rpcToInternal = (h: string): Buffer => bytes(h).reverse();

/** The fixture's expectation as the library's value type. */
function toAnnouncement(e: Expected): Announcement {
  const stakeScript = bytes(e.stakeScript);
  return e.kind === 'newnode'
    ? { kind: 'newnode', stakeScript, timestamp: e.timestamp }
    : { kind: 'renewal', stakeScript, timestamp: e.timestamp, prevTxid: rpcToInternal(e.prevTxid!) };
}

/** The library's value as the fixture's shape, so failures print readable hex. */
function toExpected(a: Announcement): Expected {
  return {
    kind: a.kind,
    stakeScript: hex(a.stakeScript),
    timestamp: a.timestamp,
    prevTxid: a.kind === 'renewal' ? hex(Buffer.from(a.prevTxid).reverse()) : null,
  };
}

function expectAnnouncement(attempt: Attempt | null, expected: Expected): void {
  expect(attempt).not.toBeNull();
  expect(attempt!.ok).toBe(true);
  if (attempt!.ok) expect(toExpected(attempt!.announcement)).toEqual(expected);
}

const DECODE_REASONS: DecodeReason[] = [
  'MALFORMED_CARRIER', 'BODY_TOO_LARGE', 'NON_MINIMAL_PUSH', 'UNKNOWN_OPCODE',
  'STACK_MISMATCH', 'BAD_STAKE_SCRIPT', 'BAD_TIMESTAMP', 'BAD_PREVIOUS',
];

describe('carrier fixtures (fixtures/script/carrier.json)', () => {
  test.each(carriers.valid)('decodes a valid carrier: $description', ({ hex: h, expected }) => {
    expect(isAttempt(bytes(h))).toBe(true);
    expectAnnouncement(detectAnnouncement(bytes(h)), expected);
  });

  test.each(carriers.valid)('encodes back to the same canonical bytes: $description', ({ hex: h, expected }) => {
    expect(hex(encodeCarrier(toAnnouncement(expected)))).toBe(h);
  });

  test.each(carriers.invalid)('rejects a flawed carrier as $reason: $description', ({ hex: h, reason }) => {
    expect(isAttempt(bytes(h))).toBe(true);
    expect(detectAnnouncement(bytes(h))).toEqual({ ok: false, reason });
  });

  test.each(carriers.none!)('does not treat $description as an announcement attempt', ({ hex: h }) => {
    expect(isAttempt(bytes(h))).toBe(false);
    expect(detectAnnouncement(bytes(h))).toBeNull();
  });

  test('the tables exercise every decode reason code', () => {
    const seen = new Set(carriers.invalid.map((r) => r.reason));
    expect([...seen].sort()).toEqual([...DECODE_REASONS].sort());
    expect(REASON_CODES).toEqual(expect.arrayContaining(DECODE_REASONS));
  });

  test('every valid carrier in the table fits in 82 bytes', () => {
    for (const r of carriers.valid) expect(r.hex.length / 2).toBeLessThanOrEqual(82);
    expect(Math.max(...carriers.valid.map((r) => r.hex.length / 2))).toBe(82);
  });
});

describe('docs/protocol.md', () => {
  test('every worked example is a row of the carrier table', () => {
    const doc = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    // Indented blocks of hex lines; a long carrier is split across lines.
    const examples = [...doc.matchAll(/(?:^ {4}[0-9a-f]+\n)+/gm)].map((m) => m[0].replace(/\s+/g, ''));
    const known = new Set([...carriers.valid, ...carriers.invalid].map((r) => r.hex));
    expect(examples.length).toBeGreaterThanOrEqual(4);
    for (const e of examples) expect(known.has(e) ? e : `not in carrier.json: ${e}`).toBe(e);
  });
});

describe('body fixtures (fixtures/script/body.json)', () => {
  test.each(bodies.valid)('decodes a valid body: $description', ({ hex: h, expected }) => {
    expectAnnouncement(decodeBody(bytes(h)), expected);
    expect(hex(encodeBody(toAnnouncement(expected)))).toBe(h);
  });

  test.each(bodies.invalid)('rejects a flawed body as $reason: $description', ({ hex: h, reason }) => {
    expect(decodeBody(bytes(h))).toEqual({ ok: false, reason });
  });

  test('a body of exactly MAX_BODY bytes is not too large, one more byte is', () => {
    const sized = (n: number): Buffer => Buffer.concat([Buffer.of(0x4c, n - 4), Buffer.alloc(n - 4, 0x11), Buffer.of(0x51, 0xc0)]);
    expect(MAX_BODY).toBe(100);
    expect(decodeBody(sized(100))).toEqual({ ok: false, reason: 'BAD_STAKE_SCRIPT' });
    expect(decodeBody(sized(101))).toEqual({ ok: false, reason: 'BODY_TOO_LARGE' });
  });
});

describe('stake templates (fixtures/script/templates.json)', () => {
  test.each(templates.valid)('recognises $description as $template', ({ hex: h, template }) => {
    expect(stakeTemplate(bytes(h))).toBe(template);
  });

  test.each(templates.invalid)('refuses $description', ({ hex: h }) => {
    expect(stakeTemplate(bytes(h))).toBeNull();
  });
});

describe('timestamps as CScriptNum (fixtures/script/scriptnum.json)', () => {
  test.each(scriptnums.valid)('decodes $description and encodes it back', ({ hex: h, value }) => {
    expect(decodePositiveScriptNum(bytes(h))).toBe(value);
    expect(hex(encodePositiveScriptNum(value))).toBe(h);
  });

  test.each(scriptnums.invalid)('refuses $description', ({ hex: h }) => {
    expect(decodePositiveScriptNum(bytes(h))).toBeNull();
  });

  test('the encoder refuses zero, negatives, fractions and values past 2^39 - 1', () => {
    for (const v of [0, -1, 1.5, MAX_TIMESTAMP + 1, Number.NaN]) {
      expect(() => encodePositiveScriptNum(v)).toThrow(RangeError);
    }
  });
});

describe('the encoder', () => {
  const p2wpkh = bytes('0014751e76e8199196d454941c45d1b3a323f1433bd6');

  test('refuses a stake script that is not one of the five templates', () => {
    expect(() => encodeCarrier({ kind: 'newnode', stakeScript: bytes('5220' + '11'.repeat(32)), timestamp: 1 }))
      .toThrow(EncodeError);
  });

  test('refuses a timestamp outside 1..2^39-1', () => {
    expect(() => encodeCarrier({ kind: 'newnode', stakeScript: p2wpkh, timestamp: 0 })).toThrow(EncodeError);
    expect(() => encodeCarrier({ kind: 'newnode', stakeScript: p2wpkh, timestamp: MAX_TIMESTAMP + 1 })).toThrow(EncodeError);
  });

  test('refuses a previous txid that is not 32 bytes', () => {
    expect(() => encodeCarrier({ kind: 'renewal', stakeScript: p2wpkh, timestamp: 5, prevTxid: Buffer.alloc(31) }))
      .toThrow(EncodeError);
  });
});

// ------------------------------------------------------------------ properties

const arbBytes = (n: number): fc.Arbitrary<Uint8Array> => fc.uint8Array({ minLength: n, maxLength: n });

/** A random script of one of the five stake templates. */
const arbStakeScript: fc.Arbitrary<Uint8Array> = fc.oneof(
  arbBytes(20).map((h) => Buffer.concat([Buffer.of(0x76, 0xa9, 0x14), h, Buffer.of(0x88, 0xac)])),
  arbBytes(20).map((h) => Buffer.concat([Buffer.of(0xa9, 0x14), h, Buffer.of(0x87)])),
  arbBytes(20).map((h) => Buffer.concat([Buffer.of(0x00, 0x14), h])),
  arbBytes(32).map((h) => Buffer.concat([Buffer.of(0x00, 0x20), h])),
  arbBytes(32).map((h) => Buffer.concat([Buffer.of(0x51, 0x20), h])),
);

const arbTimestamp = fc.oneof(
  fc.integer({ min: 1, max: MAX_TIMESTAMP }),
  fc.constantFrom(1, 16, 17, 127, 128, 255, 256, 2 ** 31 - 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, MAX_TIMESTAMP),
);

const arbAnnouncement: fc.Arbitrary<Announcement> = fc.oneof(
  fc.record({ kind: fc.constant('newnode' as const), stakeScript: arbStakeScript, timestamp: arbTimestamp }),
  fc.record({ kind: fc.constant('renewal' as const), stakeScript: arbStakeScript, timestamp: arbTimestamp, prevTxid: arbBytes(32) }),
);

const arbValidCarrier = fc.oneof(
  arbAnnouncement.map((a) => encodeCarrier(a)),
  fc.constantFrom(...carriers.valid.map((r) => bytes(r.hex))),
);

/** A valid carrier with one byte replaced, removed or inserted, or cut short. */
const arbMutatedCarrier: fc.Arbitrary<Buffer> = fc
  .tuple(arbValidCarrier, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('replace', 'delete', 'insert', 'truncate'))
  .map(([c, at, b, how]) => {
    const i = at % (c.length + 1);
    if (how === 'truncate') return c.subarray(0, i);
    if (how === 'insert') return Buffer.concat([c.subarray(0, i), Buffer.of(b), c.subarray(i)]);
    const j = Math.min(i, c.length - 1);
    if (how === 'delete') return Buffer.concat([c.subarray(0, j), c.subarray(j + 1)]);
    const out = Buffer.from(c);
    out[j] = b;
    return out;
  });

/**
 * The decoder's whole contract: null, a known flaw, or an announcement that
 * re-encodes to the input (so every valid announcement has exactly one carrier).
 */
function checkDecoderContract(script: Uint8Array): void {
  const attempt = detectAnnouncement(script);
  if (attempt === null) {
    expect(isAttempt(script)).toBe(false);
    return;
  }
  expect(isAttempt(script)).toBe(true);
  if (attempt.ok) expect(hex(encodeCarrier(attempt.announcement))).toBe(hex(script));
  else expect(DECODE_REASONS).toContain(attempt.reason);
}

describe('carrier properties', () => {
  test('decoding an encoded announcement gives the announcement back', () => {
    fc.assert(fc.property(arbAnnouncement, (a) => {
      expectAnnouncement(detectAnnouncement(encodeCarrier(a)), toExpected(a));
      expectAnnouncement(decodeBody(encodeBody(a)), toExpected(a));
    }), { numRuns: 2000 });
  });

  test('every valid carrier is at most 82 bytes', () => {
    fc.assert(fc.property(arbAnnouncement, (a) => {
      expect(encodeCarrier(a).length).toBeLessThanOrEqual(82);
      expect(encodeBody(a).length).toBeLessThanOrEqual(75);
    }), { numRuns: 2000 });
  });

  test('the decoder never throws on random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      checkDecoderContract(b);
      const body = decodeBody(b);
      if (!body.ok) expect(DECODE_REASONS).toContain(body.reason);
    }), { numRuns: 5000 });
  });

  test('the decoder never throws on random bytes after OP_RETURN <"NREG">', () => {
    const head = bytes('6a044e524547');
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const script = Buffer.concat([head, b]);
      expect(detectAnnouncement(script)).not.toBeNull();
      checkDecoderContract(script);
    }), { numRuns: 5000 });
  });

  test('the decoder never throws on a valid carrier with one byte changed, removed, added or cut', () => {
    fc.assert(fc.property(arbMutatedCarrier, (m) => checkDecoderContract(m)), { numRuns: 10000 });
  });
});
