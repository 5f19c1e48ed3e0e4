import type { FastifyInstance } from 'fastify';
import { AddressError, parseStake } from '../../script/address.js';
import { paramsHash, paramsToJson, type NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import { SCHEMA_VERSION } from '../store/layout.js';
import { pageNodes, payouts, sampleActive, type StatusFilter } from '../read/listing.js';
import {
  blockHashAt, explainTx, exportAt, nodeInfo, requireTip, resolveHeight, rootAt, utxoHashAt, utxosOf,
} from '../read/queries.js';
import { withSnapshot } from '../read/snapshot.js';
import type { DB } from '../store/store.js';
import { DASHBOARD_JS, dashboardHtml } from './dashboard.js';
import type { EventHub } from './events.js';
import type { Metrics } from './metrics.js';
import type { TipSummary } from './summary.js';
import * as S from './schemas.js';
import { HttpError } from './server.js';

/**
 * Admits at most `size` expensive reads at once (exports, payouts, listings
 * of a past height: each rebuilds the registry from every stake's history,
 * seconds at 100 000 registrations). Others get a 503 at once instead of
 * queueing, so a burst of them cannot starve the cheap routes.
 */
class Gate {
  private busy = 0;

  constructor(private readonly size: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy >= this.size) {
      throw new HttpError(503, 'busy', `${this.size} expensive requests (export, payouts, past heights) are already running; retry in a moment`);
    }
    this.busy++;
    try {
      return await fn();
    } finally {
      this.busy--;
    }
  }
}

interface Ctx {
  db: DB;
  params: NetworkParams;
  indexer: Indexer | null;
  events: EventHub;
  metrics: Metrics;
  summary: TipSummary;
  /** How many expensive reads may run at once. */
  maxHeavy: number;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const errors = { 400: S.errorSchema, 404: S.errorSchema };
const heavyErrors = { ...errors, 503: S.errorSchema };
const CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

function stake(input: string, params: NetworkParams): Buffer {
  try {
    return parseStake(input, params);
  } catch (err) {
    if (err instanceof AddressError) throw new HttpError(400, 'bad_address', err.message);
    throw err;
  }
}

/** Every route of the read API; all read through one snapshot per request. */
export function registerRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { db, params } = ctx;
  const read = <T>(fn: Parameters<typeof withSnapshot<T>>[1]): Promise<T> => withSnapshot(db, fn);
  const hash = paramsHash(params);
  const paramsJson = paramsToJson(params);
  const heavy = new Gate(ctx.maxHeavy);

  app.get('/v1/status', { schema: { summary: 'Network, params hash, tip, node tip, sync state, counts by status', querystring: S.emptyQuery, response: { 200: S.statusSchema } } }, async () => read(async (r) => {
    const tip = await requireTip(r).catch(() => null);
    const nodeTip = ctx.indexer?.nodeTip() ?? null;
    const sync = !ctx.indexer ? 'not-following' : nodeTip && tip && rpcHex(tip.hash) === nodeTip.hash ? 'synced' : 'catching-up';
    return {
      network: params.name, paramsHash: hash, schemaVersion: SCHEMA_VERSION,
      params: paramsJson,
      tip: tip ? { height: tip.height, hash: rpcHex(tip.hash) } : null,
      nodeTip, sync, counts: (await ctx.summary.get(r)).counts, utxoMuhash: tip ? await utxoHashAt(r, tip.height) : null,
    };
  }));

  app.get<{ Querystring: { status: StatusFilter; at?: number; limit: number; cursor?: string } }>('/v1/nodes', {
    schema: { summary: 'The registry in FIRST_SEEN order, filtered by status, as of a height, paged by cursor', querystring: S.nodesQuery, response: { 200: S.nodesResponse, ...heavyErrors } },
  }, async (req) => (req.query.at === undefined ? read((r) => pageNodes(r, params, req.query)) : heavy.run(() => read((r) => pageNodes(r, params, req.query)))));

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake', {
    schema: { summary: 'A stake\'s current registration, balance, age, renewals and blocks until expiry', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.nodeResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await nodeInfo(r, params, script);
      if (!info.registration) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return info;
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake/history', {
    schema: { summary: 'Every event of every registration of a stake, oldest first', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.historyResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await nodeInfo(r, params, script);
      if (info.history.length === 0) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return { height: info.height, stakeScript: info.stakeScript, history: info.history };
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/scripts/:stake/utxos', {
    schema: { summary: 'The unspent outputs paying a stake script', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.utxosResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => ({ height: (await requireTip(r)).height, utxos: await utxosOf(r, script) }));
  });

  app.get<{ Params: { txid: string } }>('/v1/tx/:txid', {
    schema: { summary: 'The outcome of each announcement of a transaction', params: S.txParams, querystring: S.emptyQuery, response: { 200: S.txResponse, ...errors } },
  }, async (req) => {
    const txid = req.params.txid.toLowerCase();
    const announcements = await read((r) => explainTx(r, txid));
    if (announcements.length === 0) throw new HttpError(404, 'not_found', `no announcement of transaction ${txid} is in the index`);
    return { txid, announcements };
  });

  app.get<{ Querystring: { height?: number } }>('/v1/root', {
    schema: { summary: 'The registry root after a block', querystring: S.heightQuery, response: { 200: S.rootResponse, ...errors } },
  }, async (req) => read(async (r) => {
    const h = await resolveHeight(r, req.query.height);
    return { height: h, tip: rpcHex(await blockHashAt(r, h)), root: await rootAt(r, h), utxoMuhash: await utxoHashAt(r, h) };
  }));

  app.get<{ Querystring: { height?: number } }>('/v1/export', {
    schema: { summary: 'The interchange JSON of docs/spec.md §2.7, as of a height', querystring: S.heightQuery, response: { 200: S.exportSchema, ...heavyErrors } },
  }, async (req) => heavy.run(() => read((r) => exportAt(r, params, req.query.height))));

  app.get<{ Querystring: { from: number; to: number; minAge: number } }>('/v1/payouts', {
    schema: { summary: 'Nodes live with one registration at the end of every block from `from` to `to`', querystring: S.payoutsQuery, response: { 200: S.payoutsResponse, ...heavyErrors } },
  }, async (req) => heavy.run(() => read((r) => payouts(r, params, req.query.from, req.query.to, req.query.minAge))));

  app.get<{ Querystring: { from?: number; to?: number; points: number } }>('/v1/history/active', {
    schema: { summary: 'Active registrations at the end of sampled blocks, for charts', querystring: S.activeQuery, response: { 200: S.activeResponse, ...errors } },
  }, async (req) => read(async (r) => {
    const to = await resolveHeight(r, req.query.to);
    const from = req.query.from ?? 0;
    if (from > to) throw new HttpError(400, 'bad_request', `from (${from}) must not be above to (${to})`);
    return { from, to, points: sampleActive((await ctx.summary.get(r)).steps, from, to, req.query.points) };
  }));

  app.get<{ Querystring: { lastEventId?: number } }>('/v1/events', {
    schema: { summary: 'Server-Sent Events of the live follower', querystring: S.eventsQuery, description: 'Server-Sent Events: block, reorg, registered, renewed, expired, lapsed, rejected (and reset)' },
  }, async (req, reply) => {
    if (ctx.events.clientCount >= ctx.events.maxClients) throw new HttpError(503, 'too_many_streams', 'too many event streams open; try again later');
    const header = req.headers['last-event-id'];
    const fromHeader = typeof header === 'string' && /^\d{1,16}$/.test(header) ? Number(header) : null;
    const last = fromHeader ?? req.query.lastEventId ?? null;
    reply.hijack();
    const res = reply.raw;
    req.raw.socket.setTimeout(0);
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    ctx.events.attach(res, last);
  });

  app.get('/metrics', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => {
    void reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/v1/openapi.json', { schema: { hide: true, querystring: S.emptyQuery } }, async () => app.swagger());

  app.get('/', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => {
    void reply.type('text/html; charset=utf-8').header('content-security-policy', CSP);
    return dashboardHtml(params.name);
  });

  app.get('/dashboard.js', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => {
    void reply.type('text/javascript; charset=utf-8').header('cache-control', 'no-cache');
    return DASHBOARD_JS;
  });

}
