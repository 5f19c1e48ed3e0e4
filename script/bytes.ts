/**
 * Small byte helpers shared across the project: Bitcoin's compactSize
 * integers and hex conversions, including the byte-order flip between
 * RPC display order and the internal order hashes are stored in.
 */

const U16_MAX = 0xffff;
const U32_MAX = 0xffffffff;
const U64_MAX = 0xffffffffffffffffn;

function checkCompactSize(n: number | bigint): bigint {
  const v = typeof n === 'bigint' ? n : Number.isSafeInteger(n) ? BigInt(n) : -1n;
  if (v < 0n || v > U64_MAX) throw new RangeError(`compactSize out of range: ${String(n)}`);
  return v;
}

/** Encoded size of `n` as a compactSize, so callers can allocate once before writing. */
export function compactSizeLength(n: number | bigint): number {
  const v = checkCompactSize(n);
  if (v < 0xfdn) return 1;
  if (v <= BigInt(U16_MAX)) return 3;
  if (v <= BigInt(U32_MAX)) return 5;
  return 9;
}

/**
 * Writes `n` as a Bitcoin compactSize (the canonical, shortest form) at
 * `offset` and returns the offset just past it, like `Buffer#writeUInt32LE`.
 * Throws RangeError if `n` is negative, not an integer, or above 2^64 − 1,
 * or if `buf` is too short.
 */
export function writeCompactSize(buf: Uint8Array, offset: number, n: number | bigint): number {
  const v = checkCompactSize(n);
  const size = compactSizeLength(v);
  if (offset < 0 || offset + size > buf.length) throw new RangeError('writeCompactSize: buffer too short');
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  switch (size) {
    case 1:
      view.setUint8(offset, Number(v));
      break;
    case 3:
      view.setUint8(offset, 0xfd);
      view.setUint16(offset + 1, Number(v), true);
      break;
    case 5:
      view.setUint8(offset, 0xfe);
      view.setUint32(offset + 1, Number(v), true);
      break;
    default:
      view.setUint8(offset, 0xff);
      view.setBigUint64(offset + 1, v, true);
  }
  return offset + size;
}

/** `n` encoded as a standalone compactSize. */
export function encodeCompactSize(n: number | bigint): Buffer {
  const out = Buffer.alloc(compactSizeLength(n));
  writeCompactSize(out, 0, n);
  return out;
}

/**
 * Reads a compactSize at `offset`. Returns null if the buffer ends early or
 * the encoding is not the shortest one, which Core also rejects
 * ("non-canonical ReadCompactSize"). Values above 2^53 − 1 come back as bigint.
 */
export function readCompactSize(
  buf: Uint8Array,
  offset: number,
): { value: number | bigint; next: number } | null {
  if (offset < 0 || offset >= buf.length) return null;
  const first = buf[offset];
  if (first < 0xfd) return { value: first, next: offset + 1 };
  const size = first === 0xfd ? 2 : first === 0xfe ? 4 : 8;
  if (offset + 1 + size > buf.length) return null;
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (size === 2) {
    const v = view.getUint16(offset + 1, true);
    return v < 0xfd ? null : { value: v, next: offset + 3 };
  }
  if (size === 4) {
    const v = view.getUint32(offset + 1, true);
    return v <= U16_MAX ? null : { value: v, next: offset + 5 };
  }
  const v = view.getBigUint64(offset + 1, true);
  if (v <= BigInt(U32_MAX)) return null;
  return { value: v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v, next: offset + 9 };
}

/** Lowercase hex, the project's one textual form for bytes. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/**
 * Parses hex (either case). Returns null on odd length or a non-hex
 * character, because `Buffer.from(s, 'hex')` silently truncates there,
 * which would turn bad user input into wrong bytes.
 */
export function fromHex(hex: string): Buffer | null {
  return HEX_RE.test(hex) ? Buffer.from(hex, 'hex') : null;
}

/**
 * Reverses the byte order of a hex string. Bitcoin RPC prints txids and
 * block hashes byte-reversed relative to how they are hashed and stored,
 * so this converts between the two in either direction. Throws on bad hex.
 */
export function reverseHex(hex: string): string {
  const bytes = fromHex(hex);
  if (bytes === null) throw new RangeError(`reverseHex: not hex: ${hex.slice(0, 80)}`);
  return bytes.reverse().toString('hex');
}
