import type { FastifyInstance } from 'fastify';
import { AddressError, parseStake } from '../../script/address.js';
import { paramsHash, type NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import { SCHEMA_VERSION } from '../layout.js';
import { pageNodes, payouts, type StatusFilter } from '../listing.js';
import {
  blockHashAt, explainTx, exportAt, nodeInfo, requireTip, resolveHeight, rootAt, utxoHashAt, utxosOf,
} from '../queries.js';
import { withSnapshot } from '../snapshot.js';
import type { DB } from '../store.js';
import { dashboardHtml } from './dashboard.js';
import type { EventHub } from './events.js';
import type { Metrics } from './metrics.js';
import * as S from './schemas.js';
import { HttpError } from './server.js';

interface Ctx {
  db: DB;
  params: NetworkParams;
  indexer: Indexer | null;
  events: EventHub;
  metrics: Metrics;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const errors = { 400: S.errorSchema, 404: S.errorSchema };

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

  app.get('/v1/status', { schema: { querystring: S.emptyQuery, response: { 200: S.statusSchema } } }, async () => read(async (r) => {
    const tip = await requireTip(r).catch(() => null);
    const nodeTip = ctx.indexer?.nodeTip() ?? null;
    const sync = !ctx.indexer ? 'not-following' : nodeTip && tip && rpcHex(tip.hash) === nodeTip.hash ? 'synced' : 'catching-up';
    return {
      network: params.name, paramsHash: hash, schemaVersion: SCHEMA_VERSION,
      tip: tip ? { height: tip.height, hash: rpcHex(tip.hash) } : null,
      nodeTip, sync, utxoMuhash: tip ? await utxoHashAt(r, tip.height) : null,
    };
  }));

  app.get<{ Querystring: { status: StatusFilter; at?: number; limit: number; cursor?: string } }>('/v1/nodes', {
    schema: { querystring: S.nodesQuery, response: { 200: S.nodesResponse, ...errors } },
  }, async (req) => read((r) => pageNodes(r, params, req.query)));

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake', {
    schema: { params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.nodeResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await nodeInfo(r, params, script);
      if (!info.registration) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return info;
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake/history', {
    schema: { params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.historyResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await nodeInfo(r, params, script);
      if (info.history.length === 0) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return { height: info.height, stakeScript: info.stakeScript, history: info.history };
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/scripts/:stake/utxos', {
    schema: { params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.utxosResponse, ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => ({ height: (await requireTip(r)).height, utxos: await utxosOf(r, script) }));
  });

  app.get<{ Params: { txid: string } }>('/v1/tx/:txid', {
    schema: { params: S.txParams, querystring: S.emptyQuery, response: { 200: S.txResponse, ...errors } },
  }, async (req) => {
    const txid = req.params.txid.toLowerCase();
    const announcements = await read((r) => explainTx(r, txid));
    if (announcements.length === 0) throw new HttpError(404, 'not_found', `no announcement of transaction ${txid} is in the index`);
    return { txid, announcements };
  });

  app.get<{ Querystring: { height?: number } }>('/v1/root', {
    schema: { querystring: S.heightQuery, response: { 200: S.rootResponse, ...errors } },
  }, async (req) => read(async (r) => {
    const h = await resolveHeight(r, req.query.height);
    return { height: h, tip: rpcHex(await blockHashAt(r, h)), root: await rootAt(r, h), utxoMuhash: await utxoHashAt(r, h) };
  }));

  app.get<{ Querystring: { height?: number } }>('/v1/export', {
    schema: { querystring: S.heightQuery, response: { 200: S.exportSchema, ...errors } },
  }, async (req) => read((r) => exportAt(r, params, req.query.height)));

  app.get<{ Querystring: { from: number; to: number; minAge: number } }>('/v1/payouts', {
    schema: { querystring: S.payoutsQuery, response: { 200: S.payoutsResponse, ...errors } },
  }, async (req) => read((r) => payouts(r, params, req.query.from, req.query.to, req.query.minAge)));

  app.get<{ Querystring: { lastEventId?: number } }>('/v1/events', {
    schema: { querystring: S.eventsQuery, description: 'Server-Sent Events: block, reorg, registered, renewed, expired, lapsed, rejected (and reset)' },
  }, async (req, reply) => {
    if (ctx.events.clientCount >= ctx.events.maxClients) throw new HttpError(503, 'too_many_streams', 'too many event streams open; try again later');
    const header = req.headers['last-event-id'];
    const fromHeader = typeof header === 'string' && /^\d{1,15}$/.test(header) ? Number(header) : null;
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
    void reply.type('text/html; charset=utf-8').header('content-security-policy', "default-src 'self'; style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'");
    return dashboardHtml(params.name);
  });

}
