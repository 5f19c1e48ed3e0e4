import { createHash, type Hash } from 'node:crypto';

/*
 * The snapshot file, byte by byte (docs/snapshots.md):
 *
 *   "NREGSNAP" | u8 version | u32le n | header (n bytes of JSON)
 *   gzip member: rows, each u32le keyLen | u32le valueLen | key | value,
 *                in strictly increasing key order, ended by a row of two zero lengths
 *   "NREGEND1" | u64le rows | u64le body bytes (uncompressed) | SHA-256
 *
 * The SHA-256 covers every byte of the file before it. It is taken over the
 * file rather than the uncompressed rows so that a change to any byte is
 * refused, including the gzip header's time and OS fields, which
 * decompression ignores.
 */

export const MAGIC = Buffer.from('NREGSNAP', 'latin1');
export const END_MAGIC = Buffer.from('NREGEND1', 'latin1');
export const VERSION = 1;
/** magic, version, header length. */
export const PREFIX_BYTES = MAGIC.length + 1 + 4;
/** end magic, row count, body bytes, digest. */
export const TRAILER_BYTES = END_MAGIC.length + 8 + 8 + 32;
/** A header is a few hundred bytes; anything near this is not one. */
export const MAX_HEADER_BYTES = 64 * 1024;
/** The largest row read back: an undo record of a very large block stays far below. */
export const MAX_ROW_BYTES = 256 * 1024 * 1024;

/** What the file commits to, checked again after loading (docs/snapshots.md). */
export interface SnapshotHeader {
  readonly format: 'nodereg-snapshot';
  readonly version: number;
  readonly network: string;
  readonly paramsHash: string;
  readonly height: number;
  /** Block hash at `height`, RPC hex. */
  readonly tip: string;
  /** Registry root at `height` (docs/spec.md §2.6). */
  readonly root: string;
  /** Proof-tree root at `height` (docs/spec.md §2.9), null while the index stores none. */
  readonly proofRoot: string | null;
  /** Core's UTXO-set MuHash at `height`, null when the index keeps none (built without --utxo-hash). */
  readonly utxoMuhash: string | null;
  /** Undo records are included for heights `height - undoBlocks + 1 … height` (where the index had them). */
  readonly undoBlocks: number;
}

/** The file is not a snapshot, or not an intact one; the message says which and what to do. */
export class SnapshotFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotFileError';
  }
}

export function encodePrefix(header: SnapshotHeader): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.allocUnsafe(PREFIX_BYTES);
  MAGIC.copy(head, 0);
  head[MAGIC.length] = VERSION;
  head.writeUInt32LE(json.length, MAGIC.length + 1);
  return Buffer.concat([head, json]);
}

/** The trailer's fixed part; the digest over the file (this part included) follows it. */
export function encodeTrailerHead(rows: number, bodyBytes: number): Buffer {
  const b = Buffer.allocUnsafe(END_MAGIC.length + 16);
  END_MAGIC.copy(b, 0);
  b.writeBigUInt64LE(BigInt(rows), 8);
  b.writeBigUInt64LE(BigInt(bodyBytes), 16);
  return b;
}

export interface Trailer {
  readonly rows: number;
  readonly bodyBytes: number;
  readonly digest: Buffer;
  /** The bytes the digest also covers. */
  readonly head: Buffer;
}

export function decodeTrailer(b: Buffer, file: string): Trailer {
  if (b.length !== TRAILER_BYTES || !b.subarray(0, END_MAGIC.length).equals(END_MAGIC)) {
    throw new SnapshotFileError(`${file} has no snapshot end marker: it is truncated (an interrupted download or copy?) or is not a nodereg snapshot; fetch it again`);
  }
  const rows = b.readBigUInt64LE(8);
  const bodyBytes = b.readBigUInt64LE(16);
  if (rows > BigInt(Number.MAX_SAFE_INTEGER) || bodyBytes > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new SnapshotFileError(`${file} is damaged: its end marker holds impossible counts; fetch it again`);
  }
  return { rows: Number(rows), bodyBytes: Number(bodyBytes), digest: b.subarray(24), head: b.subarray(0, 24) };
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Validates the header's shape; its values are checked against the loaded rows later. */
export function parseHeader(raw: Buffer, file: string): SnapshotHeader {
  const bad = (why: string): SnapshotFileError => new SnapshotFileError(`${file} is damaged or not a nodereg snapshot: its header ${why}; fetch it again`);
  let h: unknown;
  try {
    h = JSON.parse(raw.toString('utf8'));
  } catch {
    throw bad('is not JSON');
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw bad('is not a JSON object');
  const o = h as Record<string, unknown>;
  const height = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const hexOrNull = (v: unknown): boolean => v === null || (typeof v === 'string' && HEX64.test(v));
  if (o.format !== 'nodereg-snapshot') throw bad('does not say "nodereg-snapshot"');
  if (o.version !== VERSION) throw new SnapshotFileError(`${file} is a snapshot of format version ${String(o.version)}; this nodereg reads version ${VERSION}: use the nodereg that made it`);
  if (typeof o.network !== 'string' || o.network === '') throw bad('has no network');
  if (typeof o.paramsHash !== 'string' || !HEX64.test(o.paramsHash)) throw bad('has no params hash');
  if (!height(o.height)) throw bad('has no height');
  for (const f of ['tip', 'root'] as const) if (typeof o[f] !== 'string' || !HEX64.test(o[f] as string)) throw bad(`has no ${f}`);
  for (const f of ['proofRoot', 'utxoMuhash'] as const) if (!hexOrNull(o[f])) throw bad(`has a malformed ${f}`);
  if (!height(o.undoBlocks)) throw bad('has no undo block count');
  return o as unknown as SnapshotHeader;
}

/** Frames one row into `b` at `at`; returns the offset after it. */
export function writeRow(b: Buffer, at: number, key: Uint8Array, value: Uint8Array): number {
  b.writeUInt32LE(key.length, at);
  b.writeUInt32LE(value.length, at + 4);
  b.set(key, at + 8);
  b.set(value, at + 8 + key.length);
  return at + 8 + key.length + value.length;
}

/** Frames one row. */
export function encodeRow(key: Buffer, value: Buffer): Buffer {
  const b = Buffer.allocUnsafe(8 + key.length + value.length);
  writeRow(b, 0, key, value);
  return b;
}

/** The row that ends the body. */
export const END_ROW = Buffer.alloc(8);

/**
 * Cuts the uncompressed body back into rows as its bytes arrive, in any
 * chunk sizes; memory holds at most one row and one chunk. Checks the order
 * (so no key appears twice) and that nothing follows the end row.
 */
export class RowReader {
  /** Bytes not yet cut into rows: chunks, joined only once a whole row is there. */
  private chunks: Buffer[] = [];
  private held = 0;
  /** Bytes the row being read needs, once its lengths are known. */
  private need = 8;
  private last: Buffer | null = null;
  private ended = false;
  rows = 0;
  bytes = 0;

  constructor(private readonly file: string) {}

  /** Rows completed by `chunk`. */
  push(chunk: Buffer): Array<[Buffer, Buffer]> {
    this.bytes += chunk.length;
    if (this.ended) {
      if (chunk.length > 0) throw this.damaged('bytes follow its end row');
      return [];
    }
    this.chunks.push(chunk);
    this.held += chunk.length;
    // A large row arrives in many chunks: wait for all of them rather than join them again and again.
    if (this.held < this.need) return [];
    const b = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.held);
    const out: Array<[Buffer, Buffer]> = [];
    let o = 0;
    this.need = 8;
    while (b.length - o >= 8) {
      const kl = b.readUInt32LE(o);
      const vl = b.readUInt32LE(o + 4);
      if (kl === 0) {
        if (vl !== 0) throw this.damaged('a row has an empty key');
        this.ended = true;
        if (b.length > o + 8) throw this.damaged('bytes follow its end row');
        o += 8;
        break;
      }
      if (kl + vl > MAX_ROW_BYTES) throw this.damaged(`a row claims ${kl + vl} bytes`);
      if (b.length - o - 8 < kl + vl) {
        this.need = 8 + kl + vl;
        break;
      }
      const key = Buffer.from(b.subarray(o + 8, o + 8 + kl));
      const value = Buffer.from(b.subarray(o + 8 + kl, o + 8 + kl + vl));
      if (this.last !== null && Buffer.compare(this.last, key) >= 0) throw this.damaged('its rows are out of order');
      this.last = key;
      out.push([key, value]);
      this.rows++;
      o += 8 + kl + vl;
    }
    const rest = Buffer.from(b.subarray(o));
    this.chunks = rest.length > 0 ? [rest] : [];
    this.held = rest.length;
    return out;
  }

  /** Called once the body is read: it must have ended with the end row. */
  finish(): void {
    if (!this.ended) throw this.damaged('its rows stop before the end row');
  }

  private damaged(why: string): SnapshotFileError {
    return new SnapshotFileError(`${this.file} is damaged: ${why}; fetch it again`);
  }
}

export function sha256(): Hash {
  return createHash('sha256');
}
