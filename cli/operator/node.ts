import { RpcClient, RpcError } from '../../indexer/node/rpc.js';
import { forEachTxid } from '../../indexer/chain/scanner.js';
import type { NetworkParams } from '../../script/params.js';
import { UsageError, UserError } from '../common.js';
import { resolveRpc, type RpcFlags } from '../datadir.js';
import type { StakeCoin } from './build.js';
import { checkFeeRate, MAX_FEE_RATE } from './feerate.js';

// Imported when a block is decoded: keeps the library off `status`, which only reads.
const bitcoinjs = (): Promise<typeof import('bitcoinjs-lib')> => import('bitcoinjs-lib');

export { checkFeeRate, MAX_FEE_RATE };

/*
 * What the operator commands ask the node: the chain it is on, a fee rate,
 * previous transactions for legacy inputs, and whether a transaction it was
 * given is really in its mempool.
 */

export interface RpcArgs extends RpcFlags {
  rpcTimeout?: number;
}

/** Used when neither --fee-rate nor the node's estimatesmartfee gives a rate (regtest, a fresh node). */
export const DEFAULT_FEE_RATE = 2;
/** The confirmation target asked of estimatesmartfee. */
export const FEE_TARGET_BLOCKS = 6;

export interface FeeRate {
  /** sat/vB. */
  readonly rate: number;
  /** Where the rate came from; `mempoolminfee` and `relayfee` are the node's floor. */
  readonly source: '--fee-rate' | 'estimatesmartfee' | 'default' | 'mempoolminfee' | 'relayfee';
  /** Why this rate, in words, for the report. */
  readonly why: string;
}

/** The lowest rate the node relays and keeps in its mempool, and which of its settings sets it. */
export interface FeeFloor {
  readonly rate: number;
  readonly source: 'mempoolminfee' | 'relayfee';
}

/** An RPC client for one command (the node found from --rpc or --datadir/--chain): few retries, so a wrong URL fails in seconds rather than minutes. */
export function rpcFrom(args: RpcArgs, params: NetworkParams, env: NodeJS.ProcessEnv = process.env): RpcClient {
  const node = resolveRpc(args, params);
  try {
    return new RpcClient({
      url: node.url,
      user: node.user,
      password: node.password ?? env.NODEREG_RPC_PASSWORD,
      cookieFile: node.cookieFile,
      timeoutMs: (args.rpcTimeout ?? 30) * 1000,
      retries: 2,
      backoffMs: 200,
    });
  } catch (err) {
    if (err instanceof RpcError) throw new UsageError(err.message);
    throw err;
  }
}

/** Refuses a node on another chain than the params: nothing it says would fit the index. */
export async function checkChain(rpc: RpcClient, params: NetworkParams): Promise<void> {
  const genesis = await rpc.getBlockHash(0);
  if (genesis !== params.genesisHash) {
    throw new UserError(`the node at ${rpc.url} is on another chain (genesis ${genesis.slice(0, 16)}…) than ${params.name}: check --rpc and --network/--params`);
  }
}

/** A BTC-per-kvB field of an RPC answer as sat/vB, or null when absent or not a positive number. */
function satPerVb(answer: unknown, field: string): number | null {
  const v = typeof answer === 'object' && answer !== null ? (answer as Record<string, unknown>)[field] : undefined;
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.round(v * 1e8) / 1000 : null;
}

/** The answer of a call the node may not have (an old fork), or null. */
async function optional(rpc: RpcClient, method: string): Promise<unknown> {
  try {
    return await rpc.call<unknown>(method);
  } catch (err) {
    if (err instanceof RpcError && err.kind === 'rpc') return null;
    throw err;
  }
}

/**
 * The node's fee floor: `mempoolminfee` (getmempoolinfo), which rises above
 * the relay fee when the mempool is full, and `relayfee` (getnetworkinfo,
 * `-minrelaytxfee`). A transaction below either is refused. Null when the
 * node reports neither.
 */
export async function feeFloor(rpc: RpcClient): Promise<FeeFloor | null> {
  const mempool = satPerVb(await optional(rpc, 'getmempoolinfo'), 'mempoolminfee');
  const relay = satPerVb(await optional(rpc, 'getnetworkinfo'), 'relayfee');
  if (mempool === null && relay === null) return null;
  return (mempool ?? 0) >= (relay ?? 0) ? { rate: mempool!, source: 'mempoolminfee' } : { rate: relay!, source: 'relayfee' };
}

/** The rate asked for: --fee-rate, else the node's estimate for 6 blocks (at least 1 sat/vB), else the default. */
async function wantedRate(rpc: RpcClient, flag: number | undefined): Promise<FeeRate> {
  if (flag !== undefined) {
    checkFeeRate(flag);
    return { rate: flag, source: '--fee-rate', why: 'as given' };
  }
  let perKvB: bigint | null = null;
  try {
    perKvB = (await rpc.estimateSmartFee(FEE_TARGET_BLOCKS)).satPerKvB;
  } catch (err) {
    // A node without fee estimation (some forks, or disabled) is not an error: fall back.
    if (!(err instanceof RpcError && err.kind === 'rpc')) throw err;
  }
  if (perKvB === null) return { rate: DEFAULT_FEE_RATE, source: 'default', why: `estimatesmartfee has no estimate yet; the default ${DEFAULT_FEE_RATE} sat/vB` };
  const rate = Math.max(1, Number(perKvB) / 1000);
  if (rate > MAX_FEE_RATE) {
    throw new UserError(`the node estimates ${rate} sat/vB, above the ${MAX_FEE_RATE} sat/vB limit: pass --fee-rate explicitly`);
  }
  return { rate, source: 'estimatesmartfee', why: `the node's estimate for ${FEE_TARGET_BLOCKS} blocks` };
}

/**
 * The rate to pay: the one asked for ({@link wantedRate}), raised to the node's
 * floor when below it, since the node would refuse the transaction otherwise
 * (a fresh node has no estimate, and its floor may be far above the default).
 */
export async function resolveFeeRate(rpc: RpcClient, flag: number | undefined): Promise<FeeRate> {
  const wanted = await wantedRate(rpc, flag);
  const floor = await feeFloor(rpc);
  if (floor === null) return wanted;
  if (floor.rate > MAX_FEE_RATE) {
    throw new UserError(`the node's fee floor (${floor.source}) is ${floor.rate} sat/vB, above the ${MAX_FEE_RATE} sat/vB limit: is its -minrelaytxfee or mempool right?`);
  }
  const asked = wanted.source === '--fee-rate' ? `--fee-rate ${wanted.rate} sat/vB` : `${wanted.rate} sat/vB (${wanted.why})`;
  if (floor.rate > wanted.rate) {
    return { rate: floor.rate, source: floor.source, why: `the node's floor (${floor.source}), above ${asked}: the node refuses anything less` };
  }
  return { ...wanted, why: `${wanted.why}; the node's floor is ${floor.rate} sat/vB (${floor.source})` };
}

/**
 * The previous transactions of these coins, by txid. Read from their blocks,
 * so no transaction index is needed on the node.
 */
export async function fetchPrevTxs(rpc: RpcClient, coins: readonly StakeCoin[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const byHeight = new Map<number, Set<string>>();
  for (const c of coins) {
    let set = byHeight.get(c.height);
    if (!set) byHeight.set(c.height, (set = new Set()));
    set.add(c.txid);
  }
  for (const [height, txids] of byHeight) {
    const block = (await bitcoinjs()).Block.fromBuffer(await rpc.getBlockRaw(await rpc.getBlockHash(height)));
    for (const tx of block.transactions ?? []) {
      const id = tx.getId();
      if (txids.has(id)) out.set(id, Buffer.from(tx.toBuffer()));
    }
    for (const id of txids) {
      if (!out.has(id)) throw new UserError(`transaction ${id} is not in the node's block at height ${height}: the index and the node disagree; let the index catch up and retry`);
    }
  }
  return out;
}

/** Whether the node holds the transaction in its mempool. */
export async function inMempool(rpc: RpcClient, txid: string): Promise<boolean> {
  try {
    await rpc.call('getmempoolentry', [txid]);
    return true;
  } catch (err) {
    if (err instanceof RpcError && err.kind === 'rpc') return false;
    throw err;
  }
}

async function inTipBlock(rpc: RpcClient, txid: string): Promise<boolean> {
  const want = Buffer.from(txid, 'hex').reverse();
  let found = false;
  forEachTxid(await rpc.getBlockRaw(await rpc.getBestBlockHash()), (id) => {
    if (id.equals(want)) found = true;
  });
  return found;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends a transaction and makes sure the node kept it. bcoin answers
 * sendrawtransaction before validating, so an invalid transaction only
 * shows as missing from the mempool; that is reported, not assumed sent.
 */
export async function sendTransaction(rpc: RpcClient, hex: string, txid: string): Promise<void> {
  try {
    await rpc.sendRawTransaction(hex);
  } catch (err) {
    if (err instanceof RpcError && err.kind === 'rpc') {
      throw new UserError(`the node refused transaction ${txid}: ${(err.nodeMessage ?? err.message).split('\n')[0]}`);
    }
    throw err;
  }
  for (let i = 0; i < 30; i++) {
    if (await inMempool(rpc, txid)) return;
    await sleep(100);
  }
  if (await inTipBlock(rpc, txid)) return;
  throw new UserError(`the node took transaction ${txid} but did not keep it in its mempool: it is invalid or conflicts with an unconfirmed one (see the node's log)`);
}
