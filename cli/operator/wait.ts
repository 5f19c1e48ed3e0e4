import type { Explanation } from '../../indexer/read/queries.js';
import type { RpcClient } from '../../indexer/node/rpc.js';
import { UserError } from '../common.js';
import { inMempool } from './node.js';
import type { IndexSource } from './sources.js';

export interface WaitOptions {
  /** Give up after this many seconds; 0 or undefined waits for as long as the transaction stays in the mempool. */
  readonly timeoutSec?: number;
  readonly pollMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the index has the transaction confirmed and returns what became
 * of its announcement. A transaction that leaves the mempool without reaching
 * the index (replaced, conflicted, evicted) ends the wait with an error
 * rather than hanging.
 */
export async function waitForOutcome(source: IndexSource, rpc: RpcClient, txid: string, opts: WaitOptions = {}): Promise<Explanation[]> {
  const deadline = opts.timeoutSec ? Date.now() + opts.timeoutSec * 1000 : Infinity;
  const pollMs = opts.pollMs ?? 500;
  for (;;) {
    await source.catchUp(rpc);
    const seen = await source.explain(txid);
    if (seen.length > 0) return seen;
    if (!(await inMempool(rpc, txid))) {
      // It may have been mined between the catch-up and the mempool check.
      await source.catchUp(rpc);
      const again = await source.explain(txid);
      if (again.length > 0) return again;
      throw new UserError(`transaction ${txid} is neither in the node's mempool nor in ${source.label}: it was dropped or replaced; check "nodereg status" and announce again`);
    }
    if (Date.now() > deadline) {
      throw new UserError(`transaction ${txid} is still unconfirmed after ${opts.timeoutSec} s; it stays in the mempool: check later with "nodereg status"`);
    }
    await sleep(pollMs);
  }
}
