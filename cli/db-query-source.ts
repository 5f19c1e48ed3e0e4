import { listNodes, type ListedNode, type StatusFilter } from '../indexer/read/listing.js';
import {
  blockHashAt, explainTx, exportAt, nodeInfo, proofRootAt, resolveHeight, rootAt, utxoHashAt,
  type ExportJson, type Explanation, type NodeInfo,
} from '../indexer/read/queries.js';
import { payoutTable, type PayoutRequest, type PayoutTable } from '../indexer/read/payouts.js';
import { diffBetween, proofAt, type DiffJson } from '../indexer/read/proofs.js';
import type { ProofJson } from '../script/verifyproof.js';
import type { DB } from '../indexer/store/store.js';
import type { NetworkParams } from '../script/params.js';
import type { QuerySource, RootAt } from './query-source.js';

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** Answers the query commands from an index opened in this process (--db). */
export class DbQuerySource implements QuerySource {
  constructor(private readonly db: DB, readonly params: NetworkParams) {}

  nodes(status: StatusFilter, at?: number, expiringWithin?: number): Promise<{ height: number; nodes: ListedNode[] }> {
    return listNodes(this.db, this.params, { status, at, expiringWithin });
  }

  node(script: Buffer): Promise<NodeInfo> {
    return nodeInfo(this.db, this.params, script);
  }

  explain(txid: string): Promise<Explanation[]> {
    return explainTx(this.db, txid);
  }

  async root(height?: number): Promise<RootAt> {
    const h = await resolveHeight(this.db, height);
    return { height: h, tip: rpcHex(await blockHashAt(this.db, h)), root: await rootAt(this.db, h), proofRoot: await proofRootAt(this.db, h), utxoMuhash: await utxoHashAt(this.db, h) };
  }

  export(height?: number): Promise<ExportJson> {
    return exportAt(this.db, this.params, height);
  }

  payouts(req: PayoutRequest): Promise<PayoutTable> {
    return payoutTable(this.db, this.params, req);
  }

  proof(script: Buffer, height?: number): Promise<ProofJson> {
    return proofAt(this.db, script, height);
  }

  async diff(from: number, to: number): Promise<DiffJson> {
    await resolveHeight(this.db, from);
    await resolveHeight(this.db, to);
    return diffBetween(this.db, this.params, from, to);
  }

  async close(): Promise<void> {
    if (this.db.status === 'open') await this.db.close();
  }
}
