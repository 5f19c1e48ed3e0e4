import { setMaxListeners } from 'node:events';
import type { RpcClient } from './rpc.js';
import { RpcError } from './rpcerror.js';

const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const noop = (): void => {};

export interface FetchedBlock {
  height: number;
  hash: string;
  raw: Buffer;
}

/**
 * How catch-up groups blocks into getblock requests. A request aims at about
 * `groupBytes` of blocks (twice that as hex in the answer), sized from the
 * largest block of the last answer, so a block that size or bigger goes
 * alone; and holds at most `maxGroup` blocks, so that tiny blocks do not make
 * one request (and its wait) long. What is read ahead is then about
 * `depth × groupBytes` while block sizes change slowly from one request to the
 * next, and never more than `depth × maxGroup` blocks. The block limit starts
 * at `firstGroup` and doubles with each full request that succeeds, so that the
 * first groups arrive soon and the consumer does not wait on a long first
 * answer while the pipeline fills.
 *
 * A request of several blocks that still fails after one retry is split in
 * two halves, fetched one after the other (each split the same way), and the
 * requests after it are no bigger than such a half until requests succeed
 * again (the limit then doubles back, up to `maxGroup`): a node or a link that
 * fails big answers still delivers, a block at a time at worst. A single
 * block gets the client's full retries, and its failure ends the fetch.
 */
export const GROUPING = { groupBytes: 1024 * 1024, maxGroup: 512, firstGroup: 16 } as const;

export interface FetchOptions {
  /** getblock requests kept in flight (default 8). */
  depth?: number;
  /** Heights per getblockhash batch (default 100). */
  batchSize?: number;
  /** Blocks per getblock request at most (default GROUPING.maxGroup). */
  maxGroup?: number;
  /** Bytes of blocks a getblock request aims at (default GROUPING.groupBytes). */
  groupBytes?: number;
}

/**
 * Blocks `fromHeight..toHeight` inclusive, strictly in height order, for catch-up.
 * Hashes come in getblockhash batches one batch ahead, and `depth` getblock
 * requests stay in flight, so the consumer rarely waits on a round trip. Small
 * blocks are asked for several at a time in one batch request (GROUPING),
 * since per-request overhead then outweighs the block itself.
 * Breaking out of the loop aborts whatever is still in flight, silently.
 * The consumer still checks that each block extends the previous one: the node
 * may reorganise mid-fetch.
 */
export async function* fetchBlocks(
  rpc: RpcClient,
  fromHeight: number,
  toHeight: number,
  opts: FetchOptions = {},
): AsyncGenerator<FetchedBlock> {
  for await (const group of fetchGroups(rpc, fromHeight, toHeight, opts)) yield* group;
}

/**
 * `fetchBlocks` a request's worth at a time (one block to `maxGroup`, in
 * height order): a consumer that handles blocks synchronously then awaits
 * once per request rather than once per block.
 */
export async function* fetchGroups(
  rpc: RpcClient,
  fromHeight: number,
  toHeight: number,
  opts: FetchOptions = {},
): AsyncGenerator<FetchedBlock[]> {
  const depth = opts.depth ?? 8;
  const batchSize = opts.batchSize ?? 100;
  const maxGroup = opts.maxGroup ?? GROUPING.maxGroup;
  const groupBytes = opts.groupBytes ?? GROUPING.groupBytes;
  if (!isHeight(fromHeight) || !Number.isSafeInteger(toHeight)) throw new RangeError(`bad height range ${fromHeight}..${toHeight}`);
  const positive = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;
  if (!(positive(depth) && positive(batchSize) && positive(maxGroup) && positive(groupBytes))) {
    throw new RangeError('depth, batchSize, maxGroup and groupBytes must be positive integers');
  }
  const abort = new AbortController();
  const signal = abort.signal;
  // Every call in flight listens to the signal: `depth` getblock requests and the
  // getblockhash batches they need, up to one more than a request's heights span.
  setMaxListeners(depth * (2 + Math.ceil(maxGroup / batchSize)) + 2, signal);
  const chunks = new Map<number, Promise<string[]>>();
  const chunkOf = (c: number): Promise<string[]> | undefined => {
    const lo = fromHeight + c * batchSize;
    if (lo > toHeight) return undefined;
    let p = chunks.get(c);
    if (!p) {
      p = rpc.getBlockHashes(lo, Math.min(lo + batchSize - 1, toHeight), { signal });
      p.catch(noop); // awaited through the block promises; this only keeps an abandoned one quiet
      chunks.set(c, p);
    }
    return p;
  };
  const hashAt = async (height: number): Promise<string> => {
    const c = Math.floor((height - fromHeight) / batchSize);
    const hashes = chunkOf(c)!;
    chunkOf(c + 1);
    chunks.delete(c - 1);
    return (await hashes)[height - fromHeight - c * batchSize]!;
  };
  const inFlight: Array<Promise<FetchedBlock[]>> = [];
  let next = fromHeight;
  // Start with one block per request; size groups from the largest block of the last answer.
  let group = 1;
  // At most this many blocks a request: halved by a failed request, doubled by a full one that succeeds.
  let ceiling = Math.min(maxGroup, GROUPING.firstGroup);
  const getGroup = async (hashes: string[]): Promise<Buffer[]> => {
    if (hashes.length === 1) return rpc.getBlocksRaw(hashes, { signal });
    try {
      const raws = await rpc.getBlocksRaw(hashes, { signal, retries: 1 });
      if (hashes.length >= ceiling) ceiling = Math.min(maxGroup, ceiling * 2);
      return raws;
    } catch (err) {
      if (signal.aborted || !(err instanceof RpcError) || !(err.transient || err.kind === 'too-large')) throw err;
      const half = hashes.length >> 1;
      ceiling = Math.max(1, Math.min(ceiling, half));
      const first = await getGroup(hashes.slice(0, half));
      return first.concat(await getGroup(hashes.slice(half)));
    }
  };
  const launch = (): void => {
    const heights: number[] = [];
    const size = Math.min(group, ceiling);
    for (let i = 0; i < size && next <= toHeight; i++) heights.push(next++);
    const p = Promise.all(heights.map(hashAt)).then(async (hashes) => {
      const raws = await getGroup(hashes);
      return raws.map((raw, i) => ({ height: heights[i]!, hash: hashes[i]!, raw }));
    });
    p.catch(noop);
    inFlight.push(p);
  };
  try {
    while (inFlight.length < depth && next <= toHeight) launch();
    while (inFlight.length > 0) {
      const blocks = await inFlight.shift()!;
      let largest = 1;
      for (const b of blocks) largest = Math.max(largest, b.raw.length);
      group = Math.max(1, Math.min(ceiling, Math.floor(groupBytes / largest)));
      if (next <= toHeight) launch();
      yield blocks;
    }
  } finally {
    abort.abort(new Error('fetchBlocks stopped'));
  }
}
