import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { merkleTreeOf } from '../chain/pow.js';
import { BlockParseError, blockTxCount, scanHeader, walkTxidsInto, type ScannedHeader } from '../chain/scanner.js';
import type { FetchedBlock } from './fetch.js';

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** A fetched block that passed `checkBlock`, with its header and txids. */
export interface CheckedBlock {
  header: ScannedHeader;
  txids: Buffer;
}

/**
 * A block from the node, checked before it may connect: it is the block asked
 * for, and its transactions match its merkle root without repeats. Its txids
 * come with it. Throws a BlockParseError (retried: the block is fetched again).
 * Needs nothing of the chain state, so it runs on the check thread.
 */
export function checkBlock(raw: Buffer, hash: string, txids?: Buffer): CheckedBlock {
  const header = scanHeader(raw);
  if (rpcHex(header.hash) !== hash) {
    throw new BlockParseError(`the node returned block ${rpcHex(header.hash)} for hash ${hash}`, 0);
  }
  const out = txids ?? Buffer.allocUnsafe(blockTxCount(raw) * 32);
  const { txs } = walkTxidsInto(raw, out, 0, null);
  const tree = txs === 0 ? null : merkleTreeOf(out, txs);
  if (tree === null || !tree.root.equals(header.merkleRoot)) {
    throw new BlockParseError(`block ${hash} from the node does not match its merkle root (corrupted in transit?)`, 0);
  }
  // A node never keeps such a copy in its chain (same hash, transactions
  // repeated): one that arrives was made on the way, and is fetched again.
  if (tree.mutated) {
    throw new BlockParseError(`block ${hash} from the node repeats transactions under the same merkle root (a mutated copy, CVE-2012-2459)`, 0);
  }
  return { header, txids: out.subarray(0, txs * 32) };
}

/** A fetched block and what checking it gave: its header and txids, or why it is not the block (thrown when its turn to connect comes). */
export interface CheckedFetch {
  fetched: FetchedBlock;
  checked: CheckedBlock | Error;
}

/** Main thread → check thread: a group's blocks, end to end in `bytes` (transferred). */
export interface CheckRequest {
  id: number;
  hashes: string[];
  /** End offset of each block in `bytes`. */
  ends: number[];
  bytes: ArrayBuffer;
}

/** Check thread → main thread: per block its txid count (txids end to end in `txids`, transferred), or why it failed. */
export interface CheckReply {
  id: number;
  txids: ArrayBuffer;
  results: Array<{ txs: number } | { error: string; parse: boolean }>;
}

/** The check thread answered something that is not a reply to the request, or died: a bug or a crash, never the node's fault. */
export class CheckThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CheckThreadError';
  }
}

/** What the check thread does with a request: also what runs in-line when there is no thread. */
export function answer(req: CheckRequest): CheckReply {
  const bytes = Buffer.from(req.bytes);
  let total = 0;
  const counts: number[] = [];
  let start = 0;
  for (const end of req.ends) {
    let n = 0;
    try {
      n = blockTxCount(bytes.subarray(start, end));
    } catch {
      // checkBlock throws the same failure below.
    }
    counts.push(n);
    total += n;
    start = end;
  }
  const txids = Buffer.allocUnsafeSlow(total * 32);
  const results: CheckReply['results'] = [];
  start = 0;
  let at = 0;
  for (let i = 0; i < req.ends.length; i++) {
    const end = req.ends[i]!;
    try {
      const { txids: got } = checkBlock(bytes.subarray(start, end), req.hashes[i]!, txids.subarray(at, at + counts[i]! * 32));
      results.push({ txs: got.length / 32 });
    } catch (err) {
      results.push({ error: err instanceof Error ? err.message : String(err), parse: err instanceof BlockParseError });
    }
    at += counts[i]! * 32;
    start = end;
  }
  return { id: req.id, txids: txids.buffer as ArrayBuffer, results };
}

export const CHECK_WORKER_URL = new URL('./checkworker.js', import.meta.url);

/** Blocks checked in-line, on the calling thread. */
function checkInline(group: FetchedBlock[]): CheckedFetch[] {
  return group.map((fetched) => {
    try {
      return { fetched, checked: checkBlock(fetched.raw, fetched.hash) };
    } catch (err) {
      return { fetched, checked: err instanceof Error ? err : new Error(String(err)) };
    }
  });
}

/**
 * Checks the node's blocks (`checkBlock`: header hash, txids, merkle root) on
 * a thread of their own, so that the follower's thread only connects and
 * commits. One request per fetched group, answered in order. When the
 * compiled checkworker.js is not there (the TypeScript sources run directly,
 * as under the test runner) or `url` is null, blocks are checked in-line,
 * with the same results. A thread that dies, or answers anything but a
 * well-formed reply, fails every request then and after with a
 * CheckThreadError: never a hang, never a block taken on a bad answer.
 */
export class BlockChecker {
  private worker: Worker | null = null;
  private readonly waiting = new Map<number, { group: FetchedBlock[]; resolve: (r: CheckedFetch[]) => void; reject: (e: unknown) => void }>();
  private nextId = 0;
  private failure: CheckThreadError | null = null;

  constructor(url: URL | null = CHECK_WORKER_URL) {
    if (url === null || (url.protocol === 'file:' && !existsSync(fileURLToPath(url)))) return;
    // Small heaps: a thread holds a group of blocks (about 1 MiB) and its txids at a time.
    const w = new Worker(url, { resourceLimits: { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 64 } });
    // Never what keeps a process alive: the follower closes it, and an embedder that only calls syncOnce need not.
    w.unref();
    w.on('message', (m: unknown) => this.receive(m));
    w.on('error', (err) => this.fail(`the block-check thread failed: ${err.message}`));
    w.on('messageerror', () => this.fail('the block-check thread sent a message that cannot be read'));
    w.on('exit', (code) => this.fail(`the block-check thread exited (code ${code})`));
    this.worker = w;
  }

  /** Whether blocks go to a thread (false: checked in-line). */
  get threaded(): boolean {
    return this.worker !== null;
  }

  /** The group's blocks, each with its header and txids or its failure, in order. */
  check(group: FetchedBlock[]): Promise<CheckedFetch[]> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const w = this.worker;
    if (w === null || group.length === 0) return Promise.resolve(checkInline(group));
    let total = 0;
    const ends: number[] = [];
    for (const b of group) ends.push((total += b.raw.length));
    // A fresh buffer of its own, moved to the thread: the blocks' own may be slices of a shared pool.
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const b of group) {
      bytes.set(b.raw, at);
      at += b.raw.length;
    }
    const id = this.nextId++;
    const req: CheckRequest = { id, hashes: group.map((b) => b.hash), ends, bytes: bytes.buffer };
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { group, resolve, reject });
      w.postMessage(req, [bytes.buffer]);
    });
  }

  private receive(m: unknown): void {
    const reply = m as Partial<CheckReply> | null;
    const job = typeof reply?.id === 'number' ? this.waiting.get(reply.id) : undefined;
    if (job === undefined) return this.fail('the block-check thread answered a request it was not sent');
    const out = job.group.length === 0 ? null : this.parse(reply!, job.group);
    if (out === null) return this.fail('the block-check thread sent a malformed answer');
    this.waiting.delete(reply!.id!);
    job.resolve(out);
  }

  /** The reply as checked blocks, or null unless every part of it is well formed and fits the group. */
  private parse(reply: Partial<CheckReply>, group: FetchedBlock[]): CheckedFetch[] | null {
    const { txids, results } = reply;
    if (!(txids instanceof ArrayBuffer) || !Array.isArray(results) || results.length !== group.length) return null;
    const all = Buffer.from(txids);
    const out: CheckedFetch[] = [];
    let at = 0;
    for (let i = 0; i < group.length; i++) {
      const r = results[i] as Record<string, unknown> | null;
      const fetched = group[i]!;
      if (typeof r?.error === 'string') {
        out.push({ fetched, checked: r.parse === true ? Object.assign(new BlockParseError('', 0), { message: r.error }) : new Error(r.error) });
        continue;
      }
      const txs = r?.txs;
      if (!Number.isSafeInteger(txs) || (txs as number) < 1 || at + (txs as number) * 32 > all.length) return null;
      const raw = fetched.raw;
      if (raw.length < 80) return null;
      const ids = all.subarray(at, (at += (txs as number) * 32));
      // The thread hashed this header and found `fetched.hash`: taken from the hash asked for, not hashed again.
      const hash = Buffer.from(fetched.hash, 'hex').reverse();
      if (hash.length !== 32) return null;
      const header: ScannedHeader = {
        hash, header: raw.subarray(0, 80), prevHash: raw.subarray(4, 36), merkleRoot: raw.subarray(36, 68),
        time: raw.readUInt32LE(68), bits: raw.readUInt32LE(72),
      };
      out.push({ fetched, checked: { header, txids: ids } });
    }
    return out;
  }

  private fail(message: string): void {
    if (this.failure === null) this.failure = new CheckThreadError(`${message}: blocks from the node cannot be checked (a bug or a crash, not the node's fault); restart the indexer`);
    for (const job of this.waiting.values()) job.reject(this.failure);
    this.waiting.clear();
    if (this.worker !== null) {
      const w = this.worker;
      this.worker = null;
      void w.terminate();
    }
  }

  /** Ends the thread; requests after this are checked in-line. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w === null) return;
    w.removeAllListeners('exit');
    const err = new CheckThreadError('the block checker was closed');
    for (const job of this.waiting.values()) job.reject(err);
    this.waiting.clear();
    await w.terminate();
  }
}

/**
 * The groups of `groups`, checked, one group ahead: while the caller connects
 * a group the checker checks the next. Stopping early stops `groups` (and its
 * fetches) too.
 */
export async function* checkedGroups(groups: AsyncIterable<FetchedBlock[]>, checker: BlockChecker): AsyncGenerator<CheckedFetch[]> {
  let ahead: Promise<CheckedFetch[]> | null = null;
  try {
    for await (const group of groups) {
      const next = checker.check(group);
      next.catch(() => undefined); // awaited below; this only keeps an abandoned one quiet
      if (ahead !== null) yield await ahead;
      ahead = next;
    }
    if (ahead !== null) yield await ahead;
  } finally {
    ahead = null;
  }
}
