import type { ListedNode, StatusFilter } from '../indexer/read/listing.js';
import type { ExportJson, Explanation, NodeInfo } from '../indexer/read/queries.js';
import type { PayoutRequest, PayoutTable } from '../indexer/read/payouttypes.js';
import type { DiffJson } from '../indexer/read/proofs.js';
import type { ProofJson } from '../script/verifyproof.js';
import type { NetworkParams } from '../script/params.js';
import { UserError, type NetworkArgs } from './common.js';
import { asUserError, openIndexForRead } from './index-access.js';
import { ApiSource } from './operator/api-source.js';

/*
 * Where the query commands read: an index directory opened in this process
 * (--db), or a running daemon's read API (--api) when the daemon holds the
 * index's lock. Both answer with the same values, so the commands print the
 * same output either way.
 */

export interface RootAt {
  height: number;
  /** Block hash, RPC hex. */
  tip: string;
  root: string;
  proofRoot: string;
  utxoMuhash: string | null;
}

export interface QuerySource {
  readonly params: NetworkParams;
  nodes(status: StatusFilter, at?: number, expiringWithin?: number): Promise<{ height: number; nodes: ListedNode[] }>;
  node(script: Buffer): Promise<NodeInfo>;
  explain(txidRpcHex: string): Promise<Explanation[]>;
  root(height?: number): Promise<RootAt>;
  export(height?: number): Promise<ExportJson>;
  payouts(req: PayoutRequest): Promise<PayoutTable>;
  proof(script: Buffer, height?: number): Promise<ProofJson>;
  diff(from: number, to: number): Promise<DiffJson>;
  close(): Promise<void>;
}

export interface SourceArgs extends NetworkArgs {
  db?: string;
  api?: string;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The payout table from a daemon's `GET /v1/payouts`, its shape checked. */
export async function apiPayouts(api: ApiSource, req: PayoutRequest): Promise<PayoutTable> {
  const q = new URLSearchParams({ from: String(req.from), to: String(req.to), amount: req.amount.toString(), weight: req.weight ?? 'uptime' });
  if (req.minPayout !== undefined) q.set('minPayout', req.minPayout.toString());
  const path = `/v1/payouts?${q.toString()}`;
  const r = await api.get(path);
  if (!isObject(r)) throw r === null ? new UserError(`${api.label} has no /v1/payouts: is --api a nodereg read API?`) : api.unexpected(path);
  const rowOk = (x: unknown): boolean => isObject(x) && typeof x.stakeScript === 'string' && /^([0-9a-f]{2})+$/.test(x.stakeScript)
    && typeof x.amount === 'string' && /^\d+$/.test(x.amount) && Number.isSafeInteger(x.weight);
  if (typeof r.amount !== 'string' || !Array.isArray(r.payouts) || typeof r.payoutsHash !== 'string' || !r.payouts.every(rowOk)) throw api.unexpected(path);
  return r as unknown as PayoutTable;
}

/** Reads through the daemon's HTTP routes (docs/api.md). */
class ApiQuerySource implements QuerySource {
  constructor(private readonly api: ApiSource) {}

  get params(): NetworkParams {
    return this.api.params;
  }

  private async must(path: string): Promise<Json> {
    const r = await this.api.get(path);
    if (!isObject(r)) throw r === null ? new UserError(`${this.api.label} has no ${path.split('?')[0]}: is --api a nodereg read API?`) : this.api.unexpected(path);
    return r;
  }

  async nodes(status: StatusFilter, at?: number, expiringWithin?: number): Promise<{ height: number; nodes: ListedNode[] }> {
    // Pages are separate requests: if a block arrives between two of them, start over.
    for (let attempt = 0; attempt < 5; attempt++) {
      const nodes: ListedNode[] = [];
      let height: number | null = null;
      let cursor: string | null = null;
      let moved = false;
      do {
        const q = new URLSearchParams({ status, limit: '1000' });
        if (at !== undefined) q.set('at', String(at));
        if (expiringWithin !== undefined) q.set('expiringWithin', String(expiringWithin));
        if (cursor !== null) q.set('cursor', cursor);
        const path = `/v1/nodes?${q.toString()}`;
        const page = await this.must(path);
        if (!Number.isSafeInteger(page.height) || !Array.isArray(page.nodes) || !(page.nextCursor === null || typeof page.nextCursor === 'string')) {
          throw this.api.unexpected(path);
        }
        if (height !== null && page.height !== height) {
          moved = true;
          break;
        }
        height = page.height as number;
        nodes.push(...(page.nodes as ListedNode[]));
        cursor = page.nextCursor as string | null;
      } while (cursor !== null);
      if (!moved) return { height: height!, nodes };
    }
    throw new UserError(`${this.api.label} kept moving between pages; try again, or pass --at <height>`);
  }

  node(script: Buffer): Promise<NodeInfo> {
    return this.api.info(script);
  }

  explain(txid: string): Promise<Explanation[]> {
    return this.api.explain(txid);
  }

  async root(height?: number): Promise<RootAt> {
    const path = `/v1/root${height === undefined ? '' : `?height=${height}`}`;
    const r = await this.must(path);
    if (!Number.isSafeInteger(r.height) || typeof r.tip !== 'string' || typeof r.root !== 'string' || typeof r.proofRoot !== 'string' || !(r.utxoMuhash === null || typeof r.utxoMuhash === 'string')) {
      throw this.api.unexpected(path);
    }
    return { height: r.height as number, tip: r.tip, root: r.root, proofRoot: r.proofRoot, utxoMuhash: r.utxoMuhash as string | null };
  }

  async proof(script: Buffer, height?: number): Promise<ProofJson> {
    // The proof is checked by whoever reads it (nodereg proof verify); here only its shape matters.
    const path = `/v1/proof/${script.toString('hex')}${height === undefined ? '' : `?height=${height}`}`;
    const r = await this.must(path);
    if (typeof r.proofRoot !== 'string' || !Array.isArray(r.siblings) || typeof r.included !== 'boolean') throw this.api.unexpected(path);
    return r as unknown as ProofJson;
  }

  async diff(from: number, to: number): Promise<DiffJson> {
    const path = `/v1/diff?from=${from}&to=${to}`;
    const r = await this.must(path);
    if (!isObject(r.from) || !isObject(r.to) || !Array.isArray(r.added) || !Array.isArray(r.removed) || !Array.isArray(r.changed)) throw this.api.unexpected(path);
    return r as unknown as DiffJson;
  }

  async export(height?: number): Promise<ExportJson> {
    const path = `/v1/export${height === undefined ? '' : `?height=${height}`}`;
    const r = await this.must(path);
    if (!Number.isSafeInteger(r.height) || !Array.isArray(r.nodes) || !Array.isArray(r.rejected)) throw this.api.unexpected(path);
    return r as unknown as ExportJson;
  }

  payouts(req: PayoutRequest): Promise<PayoutTable> {
    return apiPayouts(this.api, req);
  }

  async close(): Promise<void> {
    await this.api.close();
  }
}

/** The advice when a daemon holds the index: ask it instead. */
const LOCKED_HINT = '; stop that process, or ask it instead: replace --db with --api http://<its --serve/--listen address>';

/** Opens --db or --api; expected failures become one-line errors. */
export async function openQuerySource(args: SourceArgs): Promise<QuerySource> {
  if (args.api !== undefined) {
    try {
      return new ApiQuerySource(await ApiSource.open(args.api, args));
    } catch (err) {
      throw asUserError(err);
    }
  }
  try {
    const { db, params } = await openIndexForRead(args.db!, args);
    // The readers load only for --db, keeping them off the start-up of every other command.
    const { DbQuerySource } = await import('./db-query-source.js');
    return new DbQuerySource(db, params);
  } catch (err) {
    const e = asUserError(err);
    if (e instanceof UserError && /in use by another process/.test(e.message)) throw new UserError(e.message.replace(/; stop that process.*$/, '') + LOCKED_HINT);
    throw e;
  }
}
