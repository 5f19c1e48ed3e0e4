import { closeSync, createReadStream, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Level } from 'level';
import { paramsHash, type NetworkParams } from '../../script/params.js';
import { checkIndex, type CheckItem } from '../read/check.js';
import { utxoHashAt } from '../read/queries.js';
import { K } from '../store/layout.js';
import { openIndexStore, type DB } from '../store/store.js';
import {
  decodeTrailer, MAGIC, MAX_HEADER_BYTES, parseHeader, PREFIX_BYTES, RowReader, sha256, SnapshotFileError, TRAILER_BYTES,
  VERSION, type SnapshotHeader,
} from './format.js';
import { carries, firstUndoHeight, SNAPSHOT_META } from './rows.js';
import { proofRootAt } from './roots.js';

/** The snapshot does not match what it claims, or the target cannot take it; the message says what to do. */
export class SnapshotLoadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SnapshotLoadError';
  }
}

export interface LoadOptions {
  /** Called as the file is read: compressed bytes so far and the file's size. */
  readonly onProgress?: (bytesRead: number, total: number) => void;
  /**
   * Checks against a node, run on the loaded index before it takes the
   * target's name; it throws to refuse the snapshot.
   */
  readonly beforeCommit?: (db: DB, header: SnapshotHeader, params: NetworkParams) => Promise<void>;
  /** Stops the load (Ctrl-C): it throws `SnapshotLoadInterrupted`, and nothing is left behind. */
  readonly signal?: AbortSignal;
}

/** The load was stopped through its signal; the half-loaded directory was removed. */
export class SnapshotLoadInterrupted extends Error {
  constructor() {
    super('the snapshot load was interrupted; nothing was loaded');
    this.name = 'SnapshotLoadInterrupted';
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Removes what killed loads into `target` left beside it: `.<name>.loading-<pid>`
 * directories whose process is gone. One whose process still runs is another
 * load in progress and is left alone.
 */
function removeStaleLoads(parent: string, name: string): void {
  const prefix = `.${name}.loading-`;
  for (const entry of readdirSync(parent)) {
    if (!entry.startsWith(prefix)) continue;
    const pid = entry.slice(prefix.length);
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid || alive(Number(pid))) continue;
    rmSync(join(parent, entry), { recursive: true, force: true });
  }
}

export interface LoadResult {
  readonly header: SnapshotHeader;
  readonly rows: number;
  /** Every value recomputed from the loaded rows and compared with the header. */
  readonly checks: CheckItem[];
}

/** Reads a snapshot's header and trailer without reading its body. */
export function readEnds(file: string): { header: SnapshotHeader; prefixBytes: number; size: number; trailer: ReturnType<typeof decodeTrailer>; prefix: Buffer } {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new SnapshotFileError(`cannot read the snapshot ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const size = fstatSync(fd).size;
    const at = (pos: number, len: number): Buffer => {
      const b = Buffer.alloc(len);
      const n = readSync(fd, b, 0, len, pos);
      return b.subarray(0, n);
    };
    const head = at(0, PREFIX_BYTES);
    if (head.length < MAGIC.length || !head.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new SnapshotFileError(`${file} is not a nodereg snapshot (it does not start with "NREGSNAP")`);
    }
    if (size < PREFIX_BYTES + TRAILER_BYTES) throw new SnapshotFileError(`${file} is truncated (${size} bytes); fetch it again`);
    if (head[MAGIC.length] !== VERSION) {
      throw new SnapshotFileError(`${file} is a snapshot of format version ${head[MAGIC.length]}; this nodereg reads version ${VERSION}: use the nodereg that made it`);
    }
    const n = head.readUInt32LE(MAGIC.length + 1);
    if (n > MAX_HEADER_BYTES || PREFIX_BYTES + n + TRAILER_BYTES > size) {
      throw new SnapshotFileError(`${file} is damaged or truncated: its header claims ${n} bytes; fetch it again`);
    }
    const json = at(PREFIX_BYTES, n);
    const trailer = decodeTrailer(at(size - TRAILER_BYTES, TRAILER_BYTES), file);
    return { header: parseHeader(json, file), prefixBytes: PREFIX_BYTES + n, size, trailer, prefix: Buffer.concat([head, json]) };
  } finally {
    closeSync(fd);
  }
}

/** The target must be new or an empty directory: a snapshot never writes over an index. */
function checkTarget(target: string): void {
  if (!existsSync(target)) return;
  if (!statSync(target).isDirectory()) throw new SnapshotLoadError(`--db ${target} is a file; give a new directory for the loaded index`);
  if (readdirSync(target).length > 0) {
    throw new SnapshotLoadError(`--db ${target} is not empty; a snapshot loads only into a new or empty directory, so give another --db (or remove this one if it is a stale index)`);
  }
}

/**
 * Loads a snapshot into a new index at `target` (docs/snapshots.md). Rows go
 * into a directory beside it; only once the file's checksum holds, every
 * value in the header is recomputed from the loaded rows, and `beforeCommit`
 * agrees, does that directory take the target's name. On any failure it is
 * removed, so no half-loaded index is ever left behind.
 */
export async function loadSnapshot(file: string, target: string, opts: LoadOptions = {}): Promise<LoadResult> {
  checkTarget(target);
  const ends = readEnds(file);
  const { header } = ends;
  const parent = dirname(resolve(target));
  mkdirSync(parent, { recursive: true });
  removeStaleLoads(parent, basename(resolve(target)));
  const temp = join(parent, `.${basename(resolve(target))}.loading-${process.pid}`);
  rmSync(temp, { recursive: true, force: true });
  const stopped = (): void => {
    if (opts.signal?.aborted) throw new SnapshotLoadInterrupted();
  };
  let db: DB | null = new Level<Buffer, Buffer>(temp, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: true, errorIfExists: true });
  let committed = false;
  try {
    await db.open();
    const rows = await streamRows(file, ends, db, opts.onProgress, opts.signal).catch((err: unknown) => {
      stopped();
      throw err;
    });
    stopped();
    await db.close();
    db = null;
    const opened = await openIndexStore(temp, null, { create: false });
    db = opened.db;
    if (opened.params.name !== header.network || paramsHash(opened.params) !== header.paramsHash) {
      throw damaged(file, `its rows are of network "${opened.params.name}" (params ${paramsHash(opened.params).slice(0, 12)}…), its header says "${header.network}" (${header.paramsHash.slice(0, 12)}…)`);
    }
    const checks = await recompute(db, header, file);
    stopped();
    await opts.beforeCommit?.(db, header, opened.params);
    stopped();
    await db.put(K.meta(SNAPSHOT_META), Buffer.from(JSON.stringify({ height: header.height, tip: header.tip, undoFrom: Math.max(0, firstUndoHeight(header.height, header.undoBlocks)) })), { sync: true });
    await db.close();
    db = null;
    checkTarget(target);
    if (existsSync(target)) rmdirSync(target);
    renameSync(temp, target);
    committed = true;
    return { header, rows, checks };
  } finally {
    if (db !== null && db.status === 'open') await db.close();
    if (!committed) rmSync(temp, { recursive: true, force: true });
  }
}

const damaged = (file: string, why: string): SnapshotLoadError =>
  new SnapshotLoadError(`the snapshot ${file} does not hold what its header says: ${why}; it is damaged or was altered, so fetch it from another source`);

/** Streams the body into `db`, checking the whole-file digest at the end. */
async function streamRows(file: string, ends: ReturnType<typeof readEnds>, db: DB, onProgress?: LoadOptions['onProgress'], signal?: AbortSignal): Promise<number> {
  const { header, trailer } = ends;
  const hash = sha256().update(ends.prefix);
  let read = ends.prefixBytes;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      read += chunk.length;
      onProgress?.(read, ends.size);
      done(null, chunk);
    },
  });
  const reader = new RowReader(file);
  const write = async (source: AsyncIterable<Buffer>): Promise<void> => {
    let batch = db.batch();
    let size = 0;
    for await (const chunk of source) {
      // Known before reading: a damaged file cannot make the load write more than it claims.
      if (reader.bytes + chunk.length > trailer.bodyBytes) throw new SnapshotFileError(`${file} is damaged: its rows decompress to more than the ${trailer.bodyBytes} bytes it claims; fetch it again`);
      for (const [k, v] of reader.push(chunk)) {
        if (carries(k, header.height, header.undoBlocks) !== true) {
          throw damaged(file, `it holds a row (key ${k.subarray(0, 12).toString('hex')}…) that a snapshot at height ${header.height} never carries`);
        }
        batch.put(k, v);
        size += k.length + v.length;
        if (size >= 4 << 20) {
          await batch.write();
          batch = db.batch();
          size = 0;
        }
      }
    }
    reader.finish();
    await batch.write({ sync: true });
  };
  const end = ends.size - TRAILER_BYTES - 1;
  try {
    await pipeline(createReadStream(file, { start: ends.prefixBytes, end: Math.max(end, ends.prefixBytes - 1) }), tap, createGunzip(), write, { signal });
  } catch (err) {
    if (err instanceof SnapshotFileError || err instanceof SnapshotLoadError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw new SnapshotFileError(`${file} is damaged: its compressed rows do not decompress (${(err as Error).message}); fetch it again`);
    throw err;
  }
  hash.update(trailer.head);
  if (!hash.digest().equals(trailer.digest)) {
    throw new SnapshotFileError(`${file} is damaged: its SHA-256 checksum does not match its content (a changed or corrupted byte); fetch it again`);
  }
  if (reader.rows !== trailer.rows || reader.bytes !== trailer.bodyBytes) {
    throw new SnapshotFileError(`${file} is damaged: it holds ${reader.rows} rows where its end marker says ${trailer.rows}; fetch it again`);
  }
  return reader.rows;
}

/**
 * Every value of the header recomputed from the loaded rows: the registry
 * root from the registration rows and from the event history, the UTXO-set
 * MuHash from the coin rows (`nodereg check`'s derivations), the proof root
 * when the header has one; and each stored per-height value at the tip.
 */
async function recompute(db: DB, header: SnapshotHeader, file: string): Promise<CheckItem[]> {
  const report = await checkIndex(db);
  if (report.height !== header.height || report.tip !== header.tip) {
    throw damaged(file, `its tip is block ${report.tip} at height ${report.height}, its header says ${header.tip} at ${header.height}`);
  }
  if (report.mismatch !== null) throw damaged(file, report.mismatch);
  const checks = [...report.items];
  for (const item of checks) {
    const claimed = item.what.startsWith('registry root') ? header.root : item.what.startsWith('UTXO') ? header.utxoMuhash : undefined;
    if (claimed !== undefined && claimed !== item.derived) throw damaged(file, `the ${item.what} is ${item.derived}, its header says ${claimed ?? 'none'}`);
  }
  const storedUtxo = await utxoHashAt(db, header.height);
  if (storedUtxo !== header.utxoMuhash) throw damaged(file, `its UTXO-set MuHash at the tip is ${storedUtxo ?? 'not kept'}, its header says ${header.utxoMuhash ?? 'none'}`);
  if (header.proofRoot !== null) {
    // check.ts recomputed the proof root from the rows and the history; both must give the header's.
    const derived = report.items.filter((i) => i.what.startsWith('proof root'));
    if (derived.length === 0) throw new SnapshotLoadError(`the snapshot ${file} carries a proof root, which this nodereg cannot recompute; load it with a nodereg that keeps proof roots`);
    for (const item of derived) {
      if (item.derived !== header.proofRoot) throw damaged(file, `the ${item.what} is ${item.derived}, its header says ${header.proofRoot}`);
    }
    const stored = await proofRootAt(db, header.height);
    if (stored !== header.proofRoot) throw damaged(file, `its proof root stored at the tip is ${stored}, its header says ${header.proofRoot}`);
  }
  return checks;
}
