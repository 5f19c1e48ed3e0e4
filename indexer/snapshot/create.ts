import { createWriteStream, renameSync, rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { blockHashAt, requireTip, rootAt, utxoHashAt } from '../read/queries.js';
import type { ReadDB } from '../read/snapshot.js';
import { K, prefixOf } from '../store/layout.js';
import { encodePrefix, encodeTrailerHead, END_ROW, sha256, SnapshotFileError, VERSION, writeRow, type SnapshotHeader } from './format.js';
import { carries } from './rows.js';
import { proofRootAt } from './roots.js';

export interface CreateOptions {
  /** Undo records of this many blocks up to the tip go along (0: none). */
  readonly undoBlocks: number;
  /** Called as rows are read, with the bytes (keys and values) read so far. */
  readonly onProgress?: (bytesRead: number) => void;
}

export interface CreateResult {
  readonly header: SnapshotHeader;
  readonly rows: number;
  /** Uncompressed body bytes, and the file's size. */
  readonly bodyBytes: number;
  readonly fileBytes: number;
  /** The file's trailing digest, hex. */
  readonly sha256: string;
}

const CHUNK = 1 << 20;

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

async function meta(db: ReadDB, name: string): Promise<string> {
  const v = await db.get(K.meta(name));
  if (v === undefined) throw new SnapshotFileError(`the index has no "${name}" meta row; it is not a complete nodereg index`);
  return v.toString('utf8');
}

/** The header of a snapshot of `db` at its tip. */
export async function headerOf(db: ReadDB, undoBlocks: number): Promise<SnapshotHeader> {
  const { height } = await requireTip(db);
  return {
    format: 'nodereg-snapshot', version: VERSION,
    network: await meta(db, 'network'), paramsHash: await meta(db, 'paramsHash'),
    height, tip: rpcHex(await blockHashAt(db, height)), root: await rootAt(db, height),
    proofRoot: await proofRootAt(db, height), utxoMuhash: await utxoHashAt(db, height),
    undoBlocks: Math.min(undoBlocks, height + 1),
  };
}

/**
 * Writes the index at its tip to `out` (docs/snapshots.md): one pass over
 * LevelDB in key order, through gzip, in chunks of about 1 MiB, so memory
 * stays flat whatever the index's size. The file appears under its name only
 * once complete.
 */
export async function createSnapshot(db: ReadDB, out: string, opts: CreateOptions): Promise<CreateResult> {
  const header = await headerOf(db, opts.undoBlocks);
  let rows = 0;
  let bodyBytes = 0;
  let fileBytes = 0;
  let read = 0;
  async function* body(): AsyncGenerator<Buffer> {
    // Rows are framed straight into 1 MiB chunks: a million rows are then about
    // eighty allocations, not two million small ones.
    let chunk = Buffer.allocUnsafe(CHUNK);
    let at = 0;
    for await (const [k, v] of db.iterator()) {
      const keep = carries(k, header.height, header.undoBlocks);
      if (keep === null) {
        const prefix = prefixOf(k);
        throw new SnapshotFileError(`the index holds rows of ${prefix === null ? 'an empty key' : `prefix 0x${prefix.toString(16)}`} that this nodereg does not know; make the snapshot with the nodereg that built the index`);
      }
      read += k.length + v.length;
      if (!keep) continue;
      const size = 8 + k.length + v.length;
      if (at + size > chunk.length) {
        if (at > 0) {
          opts.onProgress?.(read);
          bodyBytes += at;
          yield chunk.subarray(0, at);
        }
        chunk = Buffer.allocUnsafe(Math.max(CHUNK, size));
        at = 0;
      }
      at = writeRow(chunk, at, k, v);
      rows++;
    }
    const last = Buffer.concat([chunk.subarray(0, at), END_ROW]);
    bodyBytes += last.length;
    yield last;
    opts.onProgress?.(read);
  }
  const hash = sha256();
  let digestHex = '';
  async function* framed(gzipped: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
    const emit = (b: Buffer): Buffer => {
      hash.update(b);
      fileBytes += b.length;
      return b;
    };
    yield emit(encodePrefix(header));
    for await (const chunk of gzipped) yield emit(chunk);
    yield emit(encodeTrailerHead(rows, bodyBytes));
    const digest = hash.digest();
    digestHex = digest.toString('hex');
    fileBytes += digest.length;
    yield digest;
  }
  const partial = `${out}.partial-${process.pid}`;
  try {
    await pipeline(Readable.from(body()), createGzip(), framed, createWriteStream(partial, { flags: 'wx' }));
    renameSync(partial, out);
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  }
  return { header, rows, bodyBytes, fileBytes, sha256: digestHex };
}
