import { REASON_CODES, reasonFromByte, reasonToByte, type ReasonCode } from '../script/reasons.js';
import { decodeRejected, encodeRejected } from '../indexer/store/codec.js';

/*
 * The byte each rejection reason is stored as in the 'j' rows and outcomes.
 * Indexes on disk hold these bytes, so the list is append-only: a new code
 * goes at the end with the next byte, and no existing line may change.
 */
const STORED: ReadonlyArray<[ReasonCode, number]> = [
  ['MALFORMED_CARRIER', 0],
  ['BODY_TOO_LARGE', 1],
  ['NON_MINIMAL_PUSH', 2],
  ['UNKNOWN_OPCODE', 3],
  ['STACK_MISMATCH', 4],
  ['BAD_STAKE_SCRIPT', 5],
  ['BAD_TIMESTAMP', 6],
  ['BAD_PREVIOUS', 7],
  ['MULTIPLE_ANNOUNCEMENTS', 8],
  ['COINBASE', 9],
  ['TIMESTAMP_IN_FUTURE', 10],
  ['TIMESTAMP_STALE', 11],
  ['NOT_OWNER', 12],
  ['INSUFFICIENT_STAKE', 13],
  ['ALREADY_REGISTERED', 14],
  ['UNKNOWN_NODE', 15],
  ['NOT_LIVE', 16],
  ['NOT_TIP', 17],
  ['TIMESTAMP_NOT_INCREASING', 18],
];

describe('stored reason bytes (append-only)', () => {
  it.each(STORED)('%s is stored as byte %i, and read back from it', (code, byte) => {
    expect(reasonToByte(code)).toBe(byte);
    expect(reasonFromByte(byte)).toBe(code);
    const row = encodeRejected(Buffer.alloc(32, 7), code);
    expect(row[row.length - 1]).toBe(byte);
    expect(decodeRejected(row).reason).toBe(code);
  });

  it('every code has a pinned byte: a new code must be added above, at the end', () => {
    expect(REASON_CODES).toEqual(STORED.map(([code]) => code));
  });

  it('refuses a byte past the last code instead of guessing', () => {
    expect(() => reasonFromByte(STORED.length)).toThrow(/unknown stored reason byte/);
  });
});
