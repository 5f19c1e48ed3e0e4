import type { RpcClient } from './rpc.js';

const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const noop = (): void => {};

export interface FetchedBlock {
  height: number;
  hash: string;
  raw: Buffer;
}

/**
 * Blocks `fromHeight..toHeight` inclusive, strictly in height order, for catch-up.
 * Hashes come in getblockhash batches one batch ahead, and `depth` getblock
 * requests stay in flight, so the consumer rarely waits on a round trip.
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
  const inFlight: Array<Promise<FetchedBlock>> = [];
  let next = fromHeight;
  const launch = (): void => {
    const height = next++;
    const c = Math.floor((height - fromHeight) / batchSize);
    const hashes = chunkOf(c)!;
    chunkOf(c + 1);
    chunks.delete(c - 1);
    const p = hashes.then(async (hs) => {
      const hash = hs[height - fromHeight - c * batchSize]!;
      return { height, hash, raw: await rpc.getBlockRaw(hash, { signal }) };
    });
    p.catch(noop);
    inFlight.push(p);
  };
  try {
    while (inFlight.length < depth && next <= toHeight) launch();
    while (inFlight.length > 0) {
      const block = await inFlight.shift()!;
      if (next <= toHeight) launch();
      yield block;
    }
  } finally {
    abort.abort(new Error('fetchBlocks stopped'));
  }
}
