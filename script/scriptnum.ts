/** Largest timestamp a 5-byte minimal CScriptNum can hold (2^39 − 1). */
export const MAX_TIMESTAMP = 2 ** 39 - 1;

/**
 * Decodes a positive, minimally encoded CScriptNum of 1–5 bytes. Returns null
 * otherwise: the protocol treats every other encoding as BAD_TIMESTAMP, so
 * there is exactly one byte string for each timestamp.
 */
export function decodePositiveScriptNum(bytes: Uint8Array): number | null {
  const n = bytes.length;
  if (n < 1 || n > 5) return null;
  const last = bytes[n - 1]!;
  if ((last & 0x7f) === 0 && (n === 1 || (bytes[n - 2]! & 0x80) === 0)) return null;
  if (last & 0x80) return null;
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[i]!;
  return v > 0 ? v : null;
}

/** Minimal CScriptNum encoding of a positive integer up to MAX_TIMESTAMP. */
export function encodePositiveScriptNum(value: number): Buffer {
  if (!Number.isInteger(value) || value < 1 || value > MAX_TIMESTAMP) {
    throw new RangeError(`timestamp must be an integer from 1 to ${MAX_TIMESTAMP}, got ${value}`);
  }
  const out: number[] = [];
  let v = value;
  while (v > 0) {
    out.push(v % 256);
    v = Math.floor(v / 256);
  }
  if (out[out.length - 1]! & 0x80) out.push(0);
  return Buffer.from(out);
}
