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
import { workersAvailable, WORKER_URL } from './chainpass.js';
import { WorkerPool } from './pool.js';
import { visitBlockTxids, type BlockVisitor } from './scanner.js';

/** Length and last four bytes of a script: a number that rules out almost every script without making a string. */
function scriptKey(b: Uint8Array, s: number, e: number): number {
  const len = e - s;
  let tail = 0;
  for (let p = Math.max(s, e - 4); p < e; p++) tail = tail * 256 + b[p]!;
  return len * 0x1_0000_0000 + tail;
}

/** Tells whether an output script is one of the stake scripts (latin1). */
export class StakeMatcher {
  private readonly keys = new Set<number>();
  private readonly scripts: Set<string>;

  constructor(stakes: Iterable<string>) {
    this.scripts = new Set(stakes);
    for (const s of this.scripts) {
      const b = Buffer.from(s, 'latin1');
      this.keys.add(scriptKey(b, 0, b.length));
    }
  }

  has(b: Buffer, s: number, e: number): boolean {
    return this.keys.has(scriptKey(b, s, e)) && this.scripts.has(b.toString('latin1', s, e));
  }
}

/** What the sweep finds in one block. */
export interface OutputSweep {
  txCount: number;
  /** The marked transactions' indexes and txids (32 bytes each, same order). */
  marked: number[];
  txids: Buffer;
}

/** The sweep of one block: the transactions that pay a stake or carry an attempt, and their txids. */
export function sweepOutputs(bytes: Buffer, stakes: StakeMatcher, scratch: { buf: Buffer }): OutputSweep {
  let pays = false;
  let attempt = false;
  const marked: number[] = [];
  const v: BlockVisitor = {
    input() {},
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
  const n = visitBlockTxids(bytes, v, want, out);
  const txids = Buffer.allocUnsafe(marked.length * 32);
  marked.forEach((i, k) => out.copy(txids, k * 32, i * 32, i * 32 + 32));
  return { txCount: n, marked, txids };
}

/** Requests between `OutputSweeps` and chainworker.js. */
export type SweepMessage =
  | { kind: 'stakes'; stakes: string[] }
  | { kind: 'outputs'; key: Uint8Array | null; locs: BlockLocation[] };

/** A worker's state between sweep messages, and its answer to each. */
export class SweepWorker {
  private stakes = new StakeMatcher([]);
  private readonly scratch = { buf: Buffer.alloc(0) };

  handle(m: SweepMessage): OutputSweep[] | null {
    if (m.kind === 'stakes') {
      this.stakes = new StakeMatcher(m.stakes);
      return null;
    }
    const reader = new BlockReader(m.key === null ? null : Buffer.from(m.key));
    try {
      return m.locs.map((loc) => sweepOutputs(reader.read(loc), this.stakes, this.scratch));
    } finally {
      reader.close();
    }
  }
}

/** Blocks are handed to threads in runs of about this many bytes. */
const RUN_BYTES = 4 * 1024 * 1024;

/**
 * Sweeps `blocks` on worker threads (on the calling thread, run by run as
 * asked, when there is a single thread or no compiled worker), every run
 * queued at once, so that the threads work ahead of the caller, which asks
 * for the txids block by block in order.
 */
export class OutputSweeps {
  private readonly runOf = new Map<number, { run: number; at: number }>();
  private readonly runs: BlockLocation[][] = [];
  private readonly results: Array<Promise<OutputSweep[]> | null> = [];
  private readonly pool: WorkerPool | null;
  private readonly local: SweepWorker | null = null;

  constructor(blocks: ReadonlyArray<BlockLocation & { height: number }>, private readonly xorKey: Buffer | null, stakes: Iterable<string>, threads: number) {
    let cur: BlockLocation[] = [];
    let bytes = 0;
    for (const b of blocks) {
      this.runOf.set(b.height, { run: this.runs.length, at: cur.length });
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
    this.pool = threads > 1 && this.runs.length > 1 && workersAvailable() ? new WorkerPool(WORKER_URL, threads) : null;
    if (this.pool !== null) {
      this.pool.broadcast({ kind: 'stakes', stakes: stakeList });
      for (const locs of this.runs) {
        const r = this.pool.run<OutputSweep[]>({ kind: 'outputs', key: xorKey, locs });
        r.catch(() => undefined); // awaited in `txidsOf`
        this.results.push(r);
      }
    } else {
      this.local = new SweepWorker();
      this.local.handle({ kind: 'stakes', stakes: stakeList });
      for (let i = 0; i < this.runs.length; i++) this.results.push(null);
    }
  }

  /** Whether the block at `height` is swept. */
  has(height: number): boolean {
    return this.runOf.has(height);
  }

  /** The block's txids for the connect pass: those of the transactions that pay a stake or carry an attempt, zero elsewhere. */
  async txidsOf(height: number): Promise<Buffer> {
    const where = this.runOf.get(height);
    if (where === undefined) throw new RangeError(`block ${height} is not swept`);
    let r = this.results[where.run];
    if (r === null || r === undefined) {
      r = Promise.resolve(this.local!.handle({ kind: 'outputs', key: this.xorKey, locs: this.runs[where.run]! }) as OutputSweep[]);
      this.results[where.run] = r;
    }
    const o = (await r)[where.at]!;
    const out = Buffer.alloc(o.txCount * 32);
    const ids = Buffer.from(o.txids.buffer, o.txids.byteOffset, o.txids.byteLength);
    o.marked.forEach((t, k) => ids.copy(out, t * 32, k * 32, k * 32 + 32));
    // A run's results are let go once its last block is taken.
    if (where.at === this.runs[where.run]!.length - 1) this.results[where.run] = Promise.resolve([]);
    return out;
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }
}
