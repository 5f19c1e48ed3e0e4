import type { NetworkParams } from '../../script/params.js';
import type { ProofJson } from '../../script/verifyproof.js';
import type { DB } from '../store/store.js';
import {
  balanceHistory, rejectedPage, searchNodes, stakeRejections, type BalanceHistory, type RejectedPage, type SearchResult, type StakeRejections,
} from './explore.js';
import { pageNodes, payouts, summarize, type NodePage, type PageQuery, type Payee, type RegistrySummary } from './listing.js';
import { payoutTable, type PayoutRequest, type PayoutTable } from './payouts.js';
import { diffBetween, proofAt, type DiffJson } from './proofs.js';
import {
  blockHashAt, explainTx, exportAt, nodeInfo, proofRootAt, requireTip, rootAt, utxoHashAt, utxosOf,
  type Explanation, type ExportJson, type NodeInfo, type ScriptUtxo,
} from './queries.js';
import { withSnapshot } from './snapshot.js';

/*
 * What the HTTP API reads, whichever store holds the registry: the LevelDB
 * index (below) or its PostgreSQL mirror (indexer/mirror/source.ts). Each
 * request reads one consistent view. Where an answer is derived from rows,
 * both stores hand the same rows to the same function of read/*.
 */

export interface TipRef {
  height: number;
  /** RPC-order hex. */
  hash: string;
}

export interface HeightRoots {
  root: string;
  proofRoot: string;
  utxoMuhash: string | null;
}

/** One request's view of the registry. Heights are checked against the tip by the caller. */
export interface RegistryView {
  /** null for an empty index. */
  tip(): Promise<TipRef | null>;
  blockHash(height: number): Promise<string>;
  roots(height: number): Promise<HeightRoots>;
  /** Not cached: `TipSummary` keeps one per tip. */
  summary(): Promise<RegistrySummary>;
  nodeInfo(script: Buffer): Promise<NodeInfo>;
  pageNodes(query: PageQuery): Promise<NodePage>;
  utxos(script: Buffer): Promise<ScriptUtxo[]>;
  explainTx(txidRpcHex: string): Promise<Explanation[]>;
  proof(script: Buffer, height?: number): Promise<ProofJson>;
  diff(from: number, to: number): Promise<DiffJson>;
  exportAt(height?: number): Promise<ExportJson>;
  payoutTable(request: PayoutRequest): Promise<PayoutTable>;
  payouts(from: number, to: number, minAge: number): Promise<{ from: number; to: number; nodes: Payee[] }>;
  search(query: string, limit: number): Promise<SearchResult>;
  balanceHistory(script: Buffer, limit: number): Promise<BalanceHistory>;
  stakeRejections(script: Buffer): Promise<StakeRejections>;
  rejectedPage(query: { reason?: string; limit: number; cursor?: string }): Promise<RejectedPage>;
}

export interface DataSource {
  readonly params: NetworkParams;
  /** What the store is, for logs: 'leveldb' or 'postgres'. */
  readonly kind: string;
  /** Runs `fn` against one consistent view, released afterwards. */
  read<T>(fn: (view: RegistryView) => Promise<T>): Promise<T>;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** The API's reads from a LevelDB index, one snapshot per request. */
export function levelSource(db: DB, params: NetworkParams): DataSource {
  return {
    params,
    kind: 'leveldb',
    read: (fn) => withSnapshot(db, (r) => fn({
      tip: async () => {
        const tip = await requireTip(r).catch(() => null);
        return tip && { height: tip.height, hash: rpcHex(tip.hash) };
      },
      blockHash: async (h) => rpcHex(await blockHashAt(r, h)),
      roots: async (h) => ({ root: await rootAt(r, h), proofRoot: await proofRootAt(r, h), utxoMuhash: await utxoHashAt(r, h) }),
      summary: () => summarize(r),
      nodeInfo: (script) => nodeInfo(r, params, script),
      pageNodes: (q) => pageNodes(r, params, q),
      utxos: (script) => utxosOf(r, script),
      explainTx: (txid) => explainTx(r, txid),
      proof: (script, h) => proofAt(r, script, h),
      diff: (from, to) => diffBetween(r, params, from, to),
      exportAt: (h) => exportAt(r, params, h),
      payoutTable: (q) => payoutTable(r, params, q),
      payouts: (from, to, minAge) => payouts(r, params, from, to, minAge),
      search: (q, limit) => searchNodes(r, params, q, limit),
      balanceHistory: (script, limit) => balanceHistory(r, script, limit),
      stakeRejections: (script) => stakeRejections(r, script),
      rejectedPage: (q) => rejectedPage(r, q),
    })),
  };
}
