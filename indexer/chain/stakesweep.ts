/**
 * The fast recount's sweep (recount.ts `fast`). The chain pass keeps the
 * txids of a chain's first blocks only (a budget); the connect pass of a
 * full recount hashes the later blocks again on its own thread. A fast
 * recount needs the txids of far fewer transactions: those that pay a stake
 * (their coins are tracked) or carry an announcement attempt (the registry
 * records the txid). Once the chain pass has named every stake, worker
 * threads sweep the blocks whose txids were not kept, ahead of the connect
 * pass, and hash only those transactions; the connect pass gets their txids
 * (the others' bytes are zero, never read) and applies every rule itself.
 */
import { isAttempt } from '../../script/carrier.js';
import { isUnspendable } from '../../script/opcodes.js';
import { BlockReader, type BlockLocation } from './blkfiles.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { WorkerPool } from './pool.js';
import { BlkFileError } from './blkread.js';
import { BlockParseError, txidPrint, visitBlockTxids, type BlockVisitor } from './scanner.js';

/** Bits of `StakeMatcher`'s filter: 2^21 (256 KiB), a few hits in a hundred with 50 000 stakes. */
const FILTER_BITS = 21;

/**
 * A script's length and four of its last bytes (not the very last two,
 * constant in P2PKH and P2SH) folded into FILTER_BITS bits; `len` ≥ 6.
 */
function filterBit(b: Uint8Array, e: number, len: number): number {
  const x = (b[e - 6]! | (b[e - 5]! << 8) | (b[e - 4]! << 16) | (b[e - 3]! << 24)) ^ Math.imul(len, 0x9e37_79b1);
  return (x ^ (x >>> FILTER_BITS)) & ((1 << FILTER_BITS) - 1);
}

/**
 * Tells whether an output script is one of the stake scripts (latin1). Asked
 * of every output of every swept block: a script of a length no stake has,
 * or whose filter bit is clear, is ruled out without making a string.
 */
export class StakeMatcher {
  private readonly lengths = new Uint8Array(256);
  private readonly filter = new Uint8Array(1 << (FILTER_BITS - 3));
  private readonly scripts = new Set<string>();

  constructor(stakes: Iterable<string>) {
    for (const s of stakes) {
      this.scripts.add(s);
      const b = Buffer.from(s, 'latin1');
      if (b.length > 255) continue;
      this.lengths[b.length] = 1;
      // A stake under 6 bytes (none is: the smallest template has 22) is matched by its string alone.
      if (b.length < 6) continue;
      const bit = filterBit(b, b.length, b.length);
      this.filter[bit >>> 3] |= 1 << (bit & 7);
    }
  }

  has(b: Buffer, s: number, e: number): boolean {
    const len = e - s;
    if (len > 255 || this.lengths[len] === 0) return false;
    if (len >= 6) {
      const bit = filterBit(b, e, len);
      if ((this.filter[bit >>> 3]! & (1 << (bit & 7))) === 0) return false;
    }
    return this.scripts.has(b.toString('latin1', s, e));
  }
}

/** What the sweep finds in one block. */
export interface OutputSweep {
  txCount: number;
  /** The marked transactions' indexes and txids (32 bytes each, same order). */
  marked: number[];
  txids: Buffer;
  /** Each transaction's offset in the block. */
  txAt: Uint32Array;
  /** Transaction i's inputs are inputs inAt[i]..inAt[i + 1] (txCount + 1 entries). */
  inAt: Uint32Array;
  /** Each input's `txidPrint` of the txid it spends, in block order. */
  prints: Uint32Array;
}

/** Reused arrays of a sweep: big enough for the largest block so far. */
export interface SweepScratch {
  buf: Buffer;
  txAt?: Uint32Array;
  inAt?: Uint32Array;
  prints?: Uint32Array;
}

/** The sweep of one block: the transactions that pay a stake or carry an attempt, and their txids. */
export function sweepOutputs(bytes: Buffer, stakes: StakeMatcher, scratch: SweepScratch): OutputSweep {
  let pays = false;
  let attempt = false;
  const marked: number[] = [];
  // A transaction takes at least 10 bytes, an input at least 41.
  if (scratch.txAt === undefined || scratch.txAt.length < bytes.length / 10 + 1) {
    scratch.txAt = new Uint32Array(Math.ceil(bytes.length / 10) + 1);
    scratch.inAt = new Uint32Array(Math.ceil(bytes.length / 10) + 2);
    scratch.prints = new Uint32Array(Math.ceil(bytes.length / 41) + 1);
  }
  const { txAt, inAt, prints } = scratch as Required<SweepScratch>;
  let nIn = 0;
  let nTx = 0;
  const v: BlockVisitor = {
    input(b, at) {
      prints[nIn++] = txidPrint(b, at);
    },
    output(b, _vout, _valueAt, s, e) {
      if (isUnspendable(b, s, e)) {
        if (!attempt && isAttempt(b.subarray(s, e))) attempt = true;
      } else if (!pays && stakes.has(b, s, e)) {
        pays = true;
      }
    },
    txEnd() {
      pays = false;
      attempt = false;
      inAt[++nTx] = nIn;
    },
  };
  // Asked after a transaction's outputs, before its txEnd.
  const want = (i: number): boolean => {
    if (!pays && !attempt) return false;
    marked.push(i);
    return true;
  };
  // Room for 32 bytes per transaction: a transaction takes at least 10 bytes.
  if (scratch.buf.length < bytes.length * 4) scratch.buf = Buffer.allocUnsafe(bytes.length * 4);
  const out = scratch.buf;
  inAt[0] = 0;
  const n = visitBlockTxids(bytes, v, want, out, txAt);
  const txids = Buffer.allocUnsafe(marked.length * 32);
  marked.forEach((i, k) => out.copy(txids, k * 32, i * 32, i * 32 + 32));
  return { txCount: n, marked, txids, txAt: txAt.slice(0, n), inAt: inAt.slice(0, n + 1), prints: prints.slice(0, nIn) };
}

/** Requests between `OutputSweeps` and sweepworker.js. */
export type SweepMessage =
  | { kind: 'stakes'; stakes: string[] }
  | { kind: 'outputs'; key: Uint8Array | null; locs: BlockLocation[] };

/** A worker's answer to `outputs`: each block's sweep, and the blocks' bytes one after another (transferred, not copied). */
export interface SweptRun {
  sweeps: OutputSweep[];
  bytes: ArrayBuffer;
  /**
   * Why the run could not be read or swept (its file changed since the chain
   * pass, say), as the BlkFileError the caller throws: a worker's own errors
   * reach the caller as plain errors.
   */
  failure?: { file: string; offset: number | null; message: string; code: string | null };
}

/** A worker's state between sweep messages, and its answer to each. */
export class SweepWorker {
  private stakes = new StakeMatcher([]);
  private readonly scratch: SweepScratch = { buf: Buffer.alloc(0) };

  handle(m: SweepMessage): SweptRun | null {
    if (m.kind === 'stakes') {
      this.stakes = new StakeMatcher(m.stakes);
      return null;
    }
    // One buffer for the run's blocks, handed on whole to the connect pass,
    // which then neither reads them again nor allocates a buffer per block.
    const bytes = Buffer.allocUnsafeSlow(m.locs.reduce((n, l) => n + l.size, 0)).buffer;
    const reader = new BlockReader(m.key === null ? null : Buffer.from(m.key));
    let at = 0;
    let loc: BlockLocation | null = null;
    try {
      const sweeps: OutputSweep[] = [];
      for (loc of m.locs) {
        const block = reader.readInto(loc, Buffer.from(bytes, at, loc.size));
        at += loc.size;
        sweeps.push(sweepOutputs(block, this.stakes, this.scratch));
      }
      return { sweeps, bytes };
    } catch (err) {
      const empty = new ArrayBuffer(0);
      if (err instanceof BlkFileError) return { sweeps: [], bytes: empty, failure: { file: err.file, offset: err.offset, message: err.message, code: err.code } };
      // The chain pass parsed these very bytes.
      if (err instanceof BlockParseError && loc !== null) {
        const e = new BlkFileError(loc.file, loc.offset, `the block no longer parses (${err.message}); was the file changed since the chain was loaded?`);
        return { sweeps: [], bytes: empty, failure: { file: e.file, offset: e.offset, message: e.message, code: null } };
      }
      throw err;
    } finally {
      reader.close();
    }
  }
}

const SWEEP_WORKER_URL = new URL('./sweepworker.js', import.meta.url);

/** Whether the compiled sweepworker.js is there (not when the TypeScript sources run directly, as under the test runner). */
function workersAvailable(): boolean {
  return SWEEP_WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(SWEEP_WORKER_URL));
}

/** Blocks are handed to threads in runs of about this many bytes. */
const RUN_BYTES = 4 * 1024 * 1024;

/** Runs asked of the threads and not yet taken by the caller, per thread: bounds the block bytes held ahead. */
const RUNS_AHEAD_PER_THREAD = 3;

/** One block as the connect pass gets it from the sweep. */
export interface SweptBlock {
  /** The block's bytes, de-obfuscated (a view into its run's buffer). */
  bytes: Buffer;
  /** The txids of the transactions that pay a stake or carry an attempt, zero elsewhere. */
  txids: Buffer;
  /** What the sweep found: which transactions those are, and where each transaction and input is. */
  sweep: OutputSweep;
}

/**
 * Sweeps `blocks` on worker threads (on the calling thread, run by run as
 * asked, when there is a single thread or no compiled worker), a few runs
 * ahead of the caller, which asks for the blocks one by one in order: it gets
 * each block's bytes with the txids it needs, so that it reads nothing itself.
 */
export class OutputSweeps {
  private readonly runOf = new Map<number, { run: number; at: number; offset: number }>();
  private readonly runs: BlockLocation[][] = [];
  private readonly results: Array<Promise<SweptRun> | null> = [];
  private readonly pool: WorkerPool | null;
  private readonly local: SweepWorker | null = null;
  /** Runs asked of the pool so far. */
  private asked = 0;
  private readonly ahead: number;

  /**
   * The threads start here, once the chain pass has ended: started while it
   * read its last fifth, they took the cores from it (10M bench chain, quiet,
   * four runs each: 17.9-20.2 s against 20.0-22.4 s, the same at 1M).
   */
  constructor(
    blocks: ReadonlyArray<BlockLocation & { height: number }>, private readonly xorKey: Buffer | null, stakes: Iterable<string>, threads: number,
  ) {
    let cur: BlockLocation[] = [];
    let bytes = 0;
    for (const b of blocks) {
      this.runOf.set(b.height, { run: this.runs.length, at: cur.length, offset: bytes });
      cur.push({ file: b.file, offset: b.offset, size: b.size });
      bytes += b.size;
      if (bytes >= RUN_BYTES) {
        this.runs.push(cur);
        cur = [];
        bytes = 0;
      }
    }
    if (cur.length > 0) this.runs.push(cur);
    const stakeList = [...stakes];
    this.pool = threads > 1 && this.runs.length > 1 && workersAvailable() ? new WorkerPool(SWEEP_WORKER_URL, threads) : null;
    this.ahead = Math.max(2, RUNS_AHEAD_PER_THREAD * threads);
    for (let i = 0; i < this.runs.length; i++) this.results.push(null);
    if (this.pool !== null) {
      this.pool.broadcast({ kind: 'stakes', stakes: stakeList });
      this.askAhead(0);
    } else {
      this.local = new SweepWorker();
      this.local.handle({ kind: 'stakes', stakes: stakeList });
    }
  }

  /** Asks the pool for the runs up to `ahead` past `run`. */
  private askAhead(run: number): void {
    const pool = this.pool!;
    for (; this.asked < this.runs.length && this.asked <= run + this.ahead; this.asked++) {
      const r = pool.run<SweptRun>({ kind: 'outputs', key: this.xorKey, locs: this.runs[this.asked]! } satisfies SweepMessage);
      r.catch(() => undefined); // awaited in `block`
      this.results[this.asked] = r;
    }
  }

  /** The block at `height`: its bytes and the txids the connect pass needs. */
  async block(height: number): Promise<SweptBlock> {
    const where = this.runOf.get(height);
    if (where === undefined) throw new RangeError(`block ${height} is not swept`);
    if (this.pool !== null) this.askAhead(where.run);
    let r = this.results[where.run];
    if (r === null || r === undefined) {
      r = Promise.resolve(this.local!.handle({ kind: 'outputs', key: this.xorKey, locs: this.runs[where.run]! })!);
      this.results[where.run] = r;
    }
    const run = await r;
    if (run.failure !== undefined) throw blkFileError(run.failure);
    const loc = this.runs[where.run]![where.at]!;
    const bytes = Buffer.from(run.bytes, where.offset, loc.size);
    // A run's results are let go once its last block is taken.
    if (where.at === this.runs[where.run]!.length - 1) this.results[where.run] = Promise.resolve({ sweeps: [], bytes: new ArrayBuffer(0) });
    const o = run.sweeps[where.at]!;
    const out = Buffer.alloc(o.txCount * 32);
    const ids = Buffer.from(o.txids.buffer, o.txids.byteOffset, o.txids.byteLength);
    o.marked.forEach((t, k) => ids.copy(out, t * 32, k * 32, k * 32 + 32));
    return { bytes, txids: out, sweep: o };
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}

/** The BlkFileError a worker described (`SweptRun.failure`), with the same message. */
function blkFileError(f: NonNullable<SweptRun['failure']>): BlkFileError {
  const prefix = f.offset === null ? `${f.file}: ` : `${f.file} at offset ${f.offset}: `;
  return new BlkFileError(f.file, f.offset, f.message.startsWith(prefix) ? f.message.slice(prefix.length) : f.message, f.code);
}
