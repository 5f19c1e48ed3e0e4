import type { RpcClient } from './rpc.js';

const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const noop = (): void => {};

export interface FetchedBlock {
  height: number;
  hash: string;
  raw: Buffer;
}

/** A getblock batch aims at about this many bytes of blocks (twice that as hex in the answer). */
const GROUP_BYTES = 1024 * 1024;
const MAX_GROUP = 16;

/**
 * Blocks `fromHeight..toHeight` inclusive, strictly in height order, for catch-up.
 * Hashes come in getblockhash batches one batch ahead, and `depth` getblock
 * requests stay in flight, so the consumer rarely waits on a round trip. Small
 * blocks are asked for several at a time in one batch request (up to
 * MAX_GROUP, aiming at GROUP_BYTES per request), since per-request overhead
 * then outweighs the block itself.
 * Breaking out of the loop aborts whatever is still in flight, silently.
 * The consumer still checks that each block extends the previous one: the node
 * may reorganise mid-fetch.
 */
export async function* fetchBlocks(
  rpc: RpcClient,
  fromHeight: number,
  toHeight: number,
  opts: { depth?: number; batchSize?: number } = {},
): AsyncGenerator<FetchedBlock> {
  for await (const group of fetchGroups(rpc, fromHeight, toHeight, opts)) yield* group;
}

/**
 * `fetchBlocks` a request's worth at a time (one block to MAX_GROUP, in
 * height order): a consumer that handles blocks synchronously then awaits
 * once per request rather than once per block.
 */
export async function* fetchGroups(
  rpc: RpcClient,
  fromHeight: number,
  toHeight: number,
  opts: { depth?: number; batchSize?: number } = {},
): AsyncGenerator<FetchedBlock[]> {
  const depth = opts.depth ?? 8;
  const batchSize = opts.batchSize ?? 100;
  if (!isHeight(fromHeight) || !Number.isSafeInteger(toHeight)) throw new RangeError(`bad height range ${fromHeight}..${toHeight}`);
  if (!(Number.isInteger(depth) && depth >= 1 && Number.isInteger(batchSize) && batchSize >= 1)) {
    throw new RangeError('depth and batchSize must be positive integers');
  }
  const abort = new AbortController();
  const signal = abort.signal;
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
  // Start with one block per request; size groups from the blocks seen since.
  let group = 1;
  let seenBytes = 0;
  let seenBlocks = 0;
  const launch = (): void => {
    const heights: number[] = [];
    for (let i = 0; i < group && next <= toHeight; i++) heights.push(next++);
    const p = Promise.all(heights.map(hashAt)).then(async (hashes) => {
      const raws = await rpc.getBlocksRaw(hashes, { signal });
      return raws.map((raw, i) => ({ height: heights[i]!, hash: hashes[i]!, raw }));
    });
    p.catch(noop);
    inFlight.push(p);
  };
  try {
    while (inFlight.length < depth && next <= toHeight) launch();
    while (inFlight.length > 0) {
      const blocks = await inFlight.shift()!;
      for (const b of blocks) seenBytes += b.raw.length;
      seenBlocks += blocks.length;
      group = Math.max(1, Math.min(MAX_GROUP, Math.floor(GROUP_BYTES / Math.max(1, seenBytes / seenBlocks))));
      if (next <= toHeight) launch();
      yield blocks;
    }
  } finally {
    abort.abort(new Error('fetchBlocks stopped'));
  }
}
