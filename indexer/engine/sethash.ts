import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { elementToNum, MuHash3072, reduceMod3072 } from '../../script/muhash.js';
import { DEFAULT_THREADS } from '../chain/threads.js';
import { MAX_SCRIPT_SIZE } from './utxohash.js';

/** Elements serialized back to back; element i is data[ends[i-1] .. ends[i]). */
export interface ElementBatch {
  data: Uint8Array;
  ends: Uint32Array;
  count: number;
}

/**
 * The product mod p of a batch's MuHash elements (each mapped by `elementToNum`),
 * reduced after every multiply. Per element that is about 4.2 µs of mapping,
 * 3.5 µs for the 3072-bit multiply and 0.35 µs for the reduction (this
 * machine). Multiplying wider products first (a product tree) does not pay
 * in V8: a 6144-bit multiply costs 2.9 times a 3072-bit one, and reducing a
 * wide product with % costs more than the folds it replaces.
 */
export function productOf(b: ElementBatch): bigint {
  let acc = 1n;
  let from = 0;
  for (let i = 0; i < b.count; i++) {
    const to = b.ends[i]!;
    acc = reduceMod3072(acc * elementToNum(b.data.subarray(from, to)));
    from = to;
  }
  return acc;
}

/** A Buffer over an ArrayBuffer of its own (never Node's shared pool), so it can be transferred to a worker. */
function ownBuffer(size: number): Buffer {
  return Buffer.from(new ArrayBuffer(size));
}

const BATCH_ELEMENTS = 4096;
const BATCH_BYTES = 1 << 20;
const WORKER_URL = new URL('./sethashworker.js', import.meta.url);

/**
 * The MuHash of a whole UTXO set, computed once from its coins instead of
 * coin by coin as blocks create and spend them: a temporary recount only
 * reports the hash at its tip, and the set there is a fraction of every
 * coin ever created and spent. MuHash is a product, so batches of elements
 * are multiplied in worker threads side by side and the partial products
 * combined in any order. Without the compiled worker (the TypeScript
 * sources run directly, as under the test runner) it multiplies on the
 * calling thread, with the same result.
 */
export class SetHasher {
  private data = ownBuffer(BATCH_BYTES);
  private ends = new Uint32Array(BATCH_ELEMENTS);
  private count = 0;
  private used = 0;
  private readonly product = new MuHash3072();
  private readonly workers: Worker[] = [];
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<() => void> = [];
  private readonly pending = new Set<Promise<void>>();
  private failure: unknown = null;

  constructor(threads = DEFAULT_THREADS) {
    const available = WORKER_URL.protocol === 'file:' && existsSync(fileURLToPath(WORKER_URL));
    if (!available || threads < 2) return;
    for (let i = 0; i < threads; i++) {
      // Small heaps: a worker holds one batch and a few 3072-bit numbers at a time, and runs beside a full coin table.
      const w = new Worker(WORKER_URL, { resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 } });
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  /**
   * Adds the coin txid:vout (`txid`: its first 32 bytes; `code`: height·2 + coinbase, the value as two
   * 32-bit words) to the current batch; Core leaves out scripts over
   * MAX_SCRIPT_SIZE. Call `ready` every few thousand coins.
   */
  put(txid: Uint8Array, vout: number, code: number, lo: number, hi: number, script: Uint8Array): void {
    const n = script.length;
    if (n > MAX_SCRIPT_SIZE) return;
    // The script length as a compactSize, written here: below MAX_SCRIPT_SIZE it is one byte or 0xfd and a u16.
    // With writeCompactSize (bigint checks) and a fresh Buffer view per coin, put took 0.36-0.47 µs a coin; now 0.14-0.17 µs
    // (478 000 coins with 22-byte scripts, this machine).
    const size = 48 + (n < 0xfd ? 1 : 3) + n;
    if (this.used + size > this.data.length) {
      const bigger = ownBuffer(Math.max(this.data.length * 2, this.used + size));
      bigger.set(this.data.subarray(0, this.used));
      this.data = bigger;
    }
    if (this.count === this.ends.length) {
      const bigger = new Uint32Array(this.ends.length * 2);
      bigger.set(this.ends);
      this.ends = bigger;
    }
    const d = this.data;
    let at = this.used;
    for (let i = 0; i < 32; i++) d[at + i] = txid[i]!;
    d.writeUInt32LE(vout, at + 32);
    d.writeUInt32LE(code, at + 36);
    d.writeUInt32LE(lo, at + 40);
    d.writeUInt32LE(hi, at + 44);
    at += 48;
    if (n < 0xfd) {
      d[at++] = n;
    } else {
      d[at] = 0xfd;
      d[at + 1] = n & 0xff;
      d[at + 2] = n >>> 8;
      at += 3;
    }
    d.set(script, at);
    this.used = at + n;
    this.ends[this.count++] = this.used;
  }

  /** Sends the batch once it is full, waiting while every worker is busy: this bounds what is held. */
  async ready(): Promise<void> {
    if (this.count >= BATCH_ELEMENTS || this.used >= BATCH_BYTES) await this.send();
  }

  /** Hands the current batch to an idle worker (waiting for one), or multiplies it here without workers. */
  private async send(): Promise<void> {
    if (this.count === 0) return;
    const batch: ElementBatch = { data: this.data, ends: this.ends, count: this.count };
    this.data = ownBuffer(BATCH_BYTES);
    this.ends = new Uint32Array(BATCH_ELEMENTS);
    this.count = 0;
    this.used = 0;
    if (this.workers.length === 0) {
      this.product.insertNum(productOf(batch));
      return;
    }
    while (this.idle.length === 0 && this.failure === null) await new Promise<void>((r) => this.waiting.push(r));
    if (this.failure !== null) throw this.failure;
    const w = this.idle.pop()!;
    const job = new Promise<void>((resolve, reject) => {
      const done = (): void => {
        w.off('message', onMessage);
        w.off('error', onError);
        w.off('exit', onExit);
        this.pending.delete(job);
        this.idle.push(w);
        this.waiting.shift()?.();
      };
      const onMessage = (hex: string): void => {
        done();
        this.product.insertNum(BigInt('0x' + hex));
        resolve();
      };
      const onError = (err: unknown): void => {
        this.failure ??= err;
        done();
        reject(err);
      };
      const onExit = (code: number): void => onError(new Error(`a UTXO-hash worker exited (code ${code}) in the middle of a batch`));
      w.on('message', onMessage);
      w.on('error', onError);
      w.on('exit', onExit);
    });
    job.catch(() => undefined);
    this.pending.add(job);
    w.postMessage(batch, [batch.data.buffer as ArrayBuffer, batch.ends.buffer as ArrayBuffer]);
  }

  /** The hash of every coin added, once all batches are multiplied; the workers end. */
  async finish(): Promise<MuHash3072> {
    try {
      await this.send();
      await Promise.all([...this.pending]);
      if (this.failure !== null) throw this.failure;
      return this.product;
    } finally {
      await this.close();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.workers.length = 0;
  }
}
