import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BlkFileError, readRegularFile, regularFileSize } from './blkread.js';
import { deobfuscate, incompleteWarning, listBlkFiles, magicOf, readXorKey, splitRecords } from './blkfiles.js';
import type { ChunkRequest } from './chainworker.js';
import { DEFAULT_THREADS } from './threads.js';
import { WorkerPool } from './pool.js';
import { analyzeChunk, type ChunkResult, type RecordInfo } from './records.js';

/** One analysed record and its txids (a view into its chunk's buffer). */
export interface AnalysedRecord {
  file: string;
  info: RecordInfo;
  txids: Buffer;
  /** The block's bytes, de-obfuscated: a view into the file's buffer, valid only until the generator goes on. */
  bytes: Buffer;
}

export interface ChainPassOptions {
  /** Threads that parse and hash blocks; 1 keeps everything on the calling thread. */
  threads?: number;
  /**
   * The calling thread has work of its own during the pass (a speculative
   * connect): it counts as one of `threads`, so one worker fewer is started,
   * but never fewer than one.
   */
  callerBusy?: boolean;
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** A recoverable oddity of the directory, such as a half-written newest block. */
  onWarning?: (message: string) => void;
  /** Checked before each file is read; when true the generator returns early. */
  shouldStop?: () => boolean;
}

// Here for the recount command's help, which must not load the chain pass to print it.
export { DEFAULT_THREADS } from './threads.js';

/** Records are handed to threads in runs of about this many bytes. */
const CHUNK_BYTES = 4 * 1024 * 1024;

export const WORKER_URL = new URL('./chainworker.js', import.meta.url);

/** The chain pass's requests to the pool: analyse a run of records of a shared file buffer. */
class ChunkPool {
  private readonly pool: WorkerPool;
  private nextId = 0;

  constructor(threads: number) {
    this.pool = new WorkerPool(WORKER_URL, threads);
  }

  async run(file: SharedArrayBuffer, ranges: number[]): Promise<ChunkResult> {
    const req: ChunkRequest = { kind: 'chunk', id: this.nextId++, file, ranges };
    const m = await this.pool.run<{ infos: RecordInfo[]; txids: ArrayBuffer }>(req);
    return { infos: m.infos, txids: Buffer.from(m.txids) };
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Worker threads run the compiled chainworker.js next to this module; when it
 * is not there (the TypeScript sources run directly, as under the test
 * runner) the chain pass stays on the calling thread, with identical results.
 */
export function workersAvailable(): boolean {
  return WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
}

/** Cuts a file's [offset, size] pairs into runs of about CHUNK_BYTES. */
function chunksOf(ranges: number[]): number[][] {
  const chunks: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  for (let r = 0; r < ranges.length; r += 2) {
    cur.push(ranges[r]!, ranges[r + 1]!);
    bytes += ranges[r + 1]!;
    if (bytes >= CHUNK_BYTES) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}

/**
 * The chain pass's reading half: every block record of a blocks directory,
 * analysed (parsed, txids hashed, proof of work and merkle root checked,
 * announcement stakes noted), yielded a run of records at a time in file
 * order. Each file is read whole into one reused buffer and cut into chunks
 * that worker threads analyse side by side.
 */
export async function* analyseBlocksDir(dir: string, magic: string | Buffer, opts: ChainPassOptions = {}): AsyncGenerator<AnalysedRecord[]> {
  const magicBytes = magicOf(magic);
  const files = await listBlkFiles(dir);
  const key = await readXorKey(dir);
  const threads = opts.threads ?? DEFAULT_THREADS;
  // Measured on two cores: a speculative connect on the main thread beside one
  // worker recounts the 1M-tx chain in 2.8 s (median), beside two in 3.0 s
  // with outliers near 4 s, as three busy threads contend for two cores.
  const workers = opts.callerBusy ? Math.max(1, threads - 1) : threads;
  const pool = threads > 1 && files.length > 0 && workersAvailable() ? new ChunkPool(workers) : null;
  try {
    const sizes = await Promise.all(files.map((f) => regularFileSize(f)));
    const total = sizes.reduce((a, b) => a + b, 0);
    let before = 0;
    // One buffer, as big as the biggest file, holds each file in turn: files
    // are up to 128 MiB and memory returns to the system late once worker
    // threads have shared it, so it is never allocated twice.
    const largest = Math.max(0, ...sizes);
    const into = pool !== null ? Buffer.from(new SharedArrayBuffer(largest)) : Buffer.allocUnsafeSlow(largest);
    for (let i = 0; i < files.length; i++) {
      if (opts.shouldStop?.()) return;
      const file = files[i]!;
      // Only the bytes the file had when listed, so it always fits: a live
      // node may have appended since.
      const buf = await readRegularFile(file, sizes[i]!, into);
      if (opts.shouldStop?.()) return;
      deobfuscate(buf, 0, key);
      const last = i === files.length - 1;
      const { ranges, error, incomplete } = splitRecords(buf, file, magicBytes, key, last);
      // The newest block of a live node's last file may be half written even
      // though its record fits in the preallocated space: if only padding
      // follows it, a record that does not parse is that block.
      const tail = last && error === null && incomplete === null && ranges.length > 0 ? ranges[ranges.length - 2]! : -1;
      const chunks = chunksOf(ranges);
      // Every chunk of the file is queued at once; results are handed on in
      // order as they come, so the caller works on one chunk while the
      // threads are still on the next ones.
      const queued = pool !== null ? chunks.map((c) => pool.run(buf.buffer as SharedArrayBuffer, c)) : [];
      for (const q of queued) q.catch(() => undefined);
      let done = 0;
      for (let c = 0; c < chunks.length; c++) {
        const r = pool !== null ? await queued[c]! : analyzeChunk(buf, chunks[c]!);
        for (let k = 1; k < chunks[c]!.length; k += 2) done += chunks[c]![k]!;
        opts.onProgress?.(before + done, total);
        const out: AnalysedRecord[] = [];
        for (const info of r.infos) {
          if (info.error !== null) {
            if (info.offset !== tail) throw new BlkFileError(file, info.offset, info.error);
            opts.onWarning?.(incompleteWarning(file, info.offset - 8));
            continue;
          }
          out.push({ file, info, txids: r.txids.subarray(info.txidAt, info.txidAt + info.txCount * 32), bytes: buf.subarray(info.offset, info.offset + info.size) });
        }
        yield out;
      }
      if (error !== null) throw error;
      if (incomplete !== null) opts.onWarning?.(incompleteWarning(file, incomplete));
      before += sizes[i]!;
      opts.onProgress?.(before, total);
    }
  } finally {
    await pool?.close();
  }
}
