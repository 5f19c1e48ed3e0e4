import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { AddressError, parseStake } from '../../script/address.js';
import { paramsHash, paramsToJson, type NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import { SCHEMA_VERSION } from '../store/layout.js';
import { sampleActive, type StatusFilter } from '../read/listing.js';
import { heightUpTo, tipOrRefuse } from '../read/queries.js';
import type { PayoutRequest, PayoutTable } from '../read/payouts.js';
import { payoutTableJson } from '../read/payoutjson.js';
import type { DataSource, RegistryView } from '../read/source.js';
import { DASHBOARD_JS, dashboardHtml } from './dashboard.js';
import type { EventHub, ResumeFrom } from './events.js';
import { registerHealth, syncState } from './health.js';
import type { Metrics } from './metrics.js';
import type { TipSummary } from './summary.js';
import * as S from './schemas.js';
import { HttpError } from './errors.js';

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
  source: DataSource;
  params: NetworkParams;
  indexer: Indexer | null;
  events: EventHub;
  metrics: Metrics;
  summary: TipSummary;
  /** How many expensive reads may run at once. */
  maxHeavy: number;
}

const errors = { 400: S.ref(S.errorSchema), 404: S.ref(S.errorSchema) };
const heavyErrors = { ...errors, 503: S.ref(S.errorSchema) };

const gzip = promisify(gzipCb);

function stake(input: string, params: NetworkParams): Buffer {
  try {
    return parseStake(input, params);
  } catch (err) {
    if (err instanceof AddressError) throw new HttpError(400, 'bad_address', `params/stake: ${err.message}`);
    throw err;
  }
}

/** Refuses, by name, the height parameters above the tip; the snapshot's tip height otherwise. */
async function heightsAtMostTip(r: RegistryView, query: Record<string, number | undefined>): Promise<number> {
  const tip = tipOrRefuse(await r.tip()).height;
  for (const [name, h] of Object.entries(query)) {
    if (h !== undefined && h > tip) throw new HttpError(400, 'bad_request', `querystring/${name} ${h} is above the index tip ${tip}`);
  }
  return tip;
}

interface PayoutsQuery { from: number; to: number; minAge?: number; amount?: string; weight?: 'uptime' | 'age'; minPayout?: string }

/**
 * A table request (`amount` given) or null for the older membership listing;
 * each kind's parameters are refused with the other's, never ignored.
 */
function payoutTableRequest(q: PayoutsQuery): PayoutRequest | null {
  if (q.amount === undefined) {
    const extra = q.weight !== undefined ? 'weight' : q.minPayout !== undefined ? 'minPayout' : null;
    if (extra) throw new HttpError(400, 'bad_request', `querystring/${extra} needs amount (the total to pay, in base units)`);
    return null;
  }
  if (q.minAge !== undefined) throw new HttpError(400, 'bad_request', 'querystring/minAge does not apply with amount: the payout table pays every node live in the window by its weight');
  if (q.from > q.to) throw new HttpError(400, 'bad_request', `from (${q.from}) must not be above to (${q.to})`);
  const amount = BigInt(q.amount);
  if (amount === 0n) throw new HttpError(400, 'bad_request', 'querystring/amount must be above 0 base units');
  return { from: q.from, to: q.to, amount, weight: q.weight ?? 'uptime', minPayout: q.minPayout === undefined ? undefined : BigInt(q.minPayout) };
}

/** Whether an If-None-Match header names `etag` (weak comparison, as for GET). */
function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const bare = (t: string): string => t.trim().replace(/^W\//, '');
  return header.split(',').some((t) => t.trim() === '*' || bare(t) === bare(etag));
}

/** Whether Accept-Encoding allows gzip (listed, or `*`, with a q above 0). */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  return header.split(',').some((part) => {
    const [coding, ...opts] = part.trim().toLowerCase().split(';');
    const q = opts.map((o) => /^\s*q=([\d.]+)\s*$/.exec(o)).find(Boolean);
    return (coding === 'gzip' || coding === '*') && (q ? Number(q[1]) > 0 : true);
  });
}

/** Every route of the read API; all read through one view of the source per request. */
export function registerRoutes(app: FastifyInstance, ctx: Ctx): void {
  const { source, params } = ctx;
  const read = <T>(fn: (r: RegistryView) => Promise<T>): Promise<T> => source.read(fn);
  const hash = paramsHash(params);
  const paramsJson = paramsToJson(params);
  const heavy = new Gate(ctx.maxHeavy);

  app.get('/v1/status', { schema: { operationId: 'getStatus', summary: 'Network, params hash, tip, node tip, sync state, counts by status', querystring: S.emptyQuery, response: { 200: S.ref(S.statusSchema), 400: S.ref(S.errorSchema) } } }, async () => read(async (r) => {
    const tip = await r.tip();
    const nodeTip = ctx.indexer?.nodeTip() ?? null;
    const sync = syncState(ctx.indexer, tip?.hash ?? null);
    const contact = ctx.indexer?.nodeContact() ?? null;
    return {
      network: params.name, paramsHash: hash, schemaVersion: SCHEMA_VERSION,
      params: paramsJson,
      tip: tip ? { height: tip.height, hash: tip.hash } : null,
      nodeTip, sync, lastNodeContact: contact?.lastAnswer ?? null, counts: (await ctx.summary.get(r)).counts, utxoMuhash: tip ? (await r.roots(tip.height)).utxoMuhash : null,
    };
  }));

  app.get<{ Querystring: { status: StatusFilter; at?: number; limit: number; cursor?: string; expiringWithin?: number } }>('/v1/nodes', {
    schema: { operationId: 'listNodes', summary: 'The registry in FIRST_SEEN order, filtered by status, as of a height, paged by cursor', querystring: S.nodesQuery, response: { 200: S.ref(S.nodesResponse), ...heavyErrors } },
  }, async (req) => {
    const page = (r: RegistryView): ReturnType<RegistryView['pageNodes']> => heightsAtMostTip(r, { at: req.query.at }).then(() => r.pageNodes(req.query));
    return req.query.at === undefined ? read(page) : heavy.run(() => read(page));
  });

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake', {
    schema: { operationId: 'getNode', summary: 'A stake\'s current registration, balance, age, renewals and blocks until expiry', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.ref(S.nodeResponse), ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await r.nodeInfo(script);
      if (!info.registration) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return info;
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/nodes/:stake/history', {
    schema: { operationId: 'getNodeHistory', summary: 'Every event of every registration of a stake, oldest first', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.ref(S.historyResponse), ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => {
      const info = await r.nodeInfo(script);
      if (info.history.length === 0) throw new HttpError(404, 'not_found', `${req.params.stake} has never been registered`);
      return { height: info.height, stakeScript: info.stakeScript, history: info.history };
    });
  });

  app.get<{ Params: { stake: string } }>('/v1/scripts/:stake/utxos', {
    schema: { operationId: 'listScriptUtxos', summary: 'The unspent outputs paying a stake script', params: S.stakeParams, querystring: S.emptyQuery, response: { 200: S.ref(S.utxosResponse), ...errors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    return read(async (r) => ({ height: tipOrRefuse(await r.tip()).height, utxos: await r.utxos(script) }));
  });

  app.get<{ Params: { txid: string } }>('/v1/tx/:txid', {
    schema: { operationId: 'getTxOutcomes', summary: 'The outcome of each announcement of a transaction', params: S.txParams, querystring: S.emptyQuery, response: { 200: S.ref(S.txResponse), ...errors } },
  }, async (req) => {
    const txid = req.params.txid.toLowerCase();
    const announcements = await read((r) => r.explainTx(txid));
    if (announcements.length === 0) throw new HttpError(404, 'not_found', `no announcement of transaction ${txid} is in the index`);
    return { txid, announcements };
  });

  app.get<{ Querystring: { height?: number } }>('/v1/root', {
    schema: { operationId: 'getRoot', summary: 'The registry root after a block', querystring: S.heightQuery, response: { 200: S.ref(S.rootResponse), ...errors } },
  }, async (req) => read(async (r) => {
    const h = heightUpTo(await heightsAtMostTip(r, { height: req.query.height }), req.query.height);
    const roots = await r.roots(h);
    return { height: h, tip: await r.blockHash(h), root: roots.root, proofRoot: roots.proofRoot, utxoMuhash: roots.utxoMuhash };
  }));

  app.get<{ Params: { stake: string }; Querystring: { height?: number } }>('/v1/proof/:stake', {
    schema: { operationId: 'getProof', summary: 'A proof that a stake is live at a height, or that it is not, against the proof root', params: S.stakeParams, querystring: S.heightQuery, response: { 200: S.ref(S.proofResponse), ...heavyErrors } },
  }, async (req) => {
    const script = stake(req.params.stake, params);
    // Every proof builds the tree of its height's live set: one hash per tree node.
    return heavy.run(() => read(async (r) => {
      await heightsAtMostTip(r, { height: req.query.height });
      return r.proof(script, req.query.height);
    }));
  });

  app.get<{ Querystring: { from: number; to: number } }>('/v1/diff', {
    schema: { operationId: 'getDiff', summary: 'What changed in the live set between two heights, with both heights\' roots', querystring: S.diffQuery, response: { 200: S.ref(S.diffResponse), ...heavyErrors } },
  }, async (req) => heavy.run(() => read(async (r) => {
    await heightsAtMostTip(r, { from: req.query.from, to: req.query.to });
    return r.diff(req.query.from, req.query.to);
  })));

  app.get<{ Querystring: { height?: number } }>('/v1/export', {
    schema: { operationId: 'getExport', summary: 'The interchange JSON of docs/spec.md §2.7, as of a height', querystring: S.heightQuery, response: { 200: S.ref(S.exportSchema), 304: { description: 'Not modified: the If-None-Match ETag is current', type: 'null' }, ...heavyErrors } },
  }, async (req, reply) => {
    // The export at a height is fixed by the chain up to that block, so its hash (with the
    // params) tags it: a client holding the tag gets a 304 without the expensive rebuild.
    const tagAt = async (r: RegistryView, h: number | undefined): Promise<{ height: number; etag: string }> => {
      const height = heightUpTo(await heightsAtMostTip(r, { height: h }), h);
      return { height, etag: `W/"${hash.slice(0, 16)}-${height}-${await r.blockHash(height)}"` };
    };
    const asked = await read((r) => tagAt(r, req.query.height));
    void reply.header('vary', 'accept-encoding');
    if (etagMatches(req.headers['if-none-match'], asked.etag)) return reply.code(304).header('etag', asked.etag).send();
    const { json, etag } = await heavy.run(() => read(async (r) => ({ etag: (await tagAt(r, asked.height)).etag, json: await r.exportAt(asked.height) })));
    const text = reply.serialize(json);
    void reply.header('etag', etag).type('application/json; charset=utf-8');
    if (!acceptsGzip(req.headers['accept-encoding'])) return reply.send(text);
    return reply.header('content-encoding', 'gzip').send(await gzip(text));
  });

  app.get<{ Querystring: PayoutsQuery }>('/v1/payouts', {
    schema: {
      operationId: 'getPayouts',
      summary: 'With `amount`: the payout table of docs/spec.md §2.10 over heights `from`..`to`. Without: the nodes live with one registration at the end of every block from `from` to `to`',
      querystring: S.payoutsQuery, response: { 200: { anyOf: [S.ref(S.payoutTableResponse), S.ref(S.payoutsResponse)] }, ...heavyErrors },
    },
  }, async (req, reply) => {
    const q = req.query;
    const table = payoutTableRequest(q);
    const answer = await heavy.run(() => read(async (r) => {
      await heightsAtMostTip(r, { from: q.from, to: q.to });
      return table ? r.payoutTable(table) : r.payouts(q.from, q.to, q.minAge ?? 0);
    }));
    // A table of 100 000 rows is megabytes: native JSON, rather than matching it against each anyOf branch first,
    // and sent as bytes so that neither the content length nor the socket write walks a 13 MB string again.
    return table ? reply.type('application/json; charset=utf-8').send(payoutTableJson(answer as PayoutTable)) : answer;
  });

  app.get<{ Querystring: { from?: number; to?: number; points: number } }>('/v1/history/active', {
    schema: { operationId: 'getActiveHistory', summary: 'Active registrations at the end of sampled blocks, for charts', querystring: S.activeQuery, response: { 200: S.ref(S.activeResponse), ...errors } },
  }, async (req) => read(async (r) => {
    const to = heightUpTo(await heightsAtMostTip(r, { from: req.query.from, to: req.query.to }), req.query.to);
    const from = req.query.from ?? 0;
    if (from > to) throw new HttpError(400, 'bad_request', `from (${from}) must not be above to (${to})`);
    return { from, to, points: sampleActive((await ctx.summary.get(r)).steps, from, to, req.query.points) };
  }));

  app.get<{ Querystring: { lastEventId?: number } }>('/v1/events', {
    schema: {
      operationId: 'streamEvents', summary: 'Server-Sent Events of the live follower', querystring: S.eventsQuery,
      description: 'Server-Sent Events: block, reorg, registered, renewed, expired, lapsed, rejected (and reset). Resume with the Last-Event-ID header or `lastEventId`.',
      response: {
        200: { description: 'an event stream (HEAD: its headers only)', content: { 'text/event-stream': { schema: { type: 'string', description: 'id/event/data frames' } } } },
        400: S.ref(S.errorSchema), 503: S.ref(S.errorSchema),
      },
    },
  }, async (req, reply) => {
    if (ctx.events.clientCount >= ctx.events.maxClients) throw new HttpError(503, 'too_many_streams', 'too many event streams open; try again later');
    const headers = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' };
    // HEAD answers what GET would send first, and no stream.
    if (req.method === 'HEAD') return reply.code(200).headers(headers).send('');
    // The header wins over the query; a header that is not an id gets a reset, as an unknown id does.
    const header = req.headers['last-event-id'];
    let from: ResumeFrom = req.query.lastEventId ?? null;
    if (typeof header === 'string' && header.trim() !== '') from = /^\d{1,16}$/.test(header.trim()) ? Number(header.trim()) : { malformed: header };
    reply.hijack();
    const res = reply.raw;
    req.raw.socket.setTimeout(0);
    res.writeHead(200, { ...headers, connection: 'keep-alive' });
    ctx.events.attach(res, from);
  });

  app.get('/metrics', { schema: { hide: true, querystring: S.emptyQuery } }, async (_req, reply) => {
    void reply.type(ctx.metrics.registry.contentType);
    // prom-client writes an undefined value (the event-loop lag before its
    // first sample) as "Nan"; the text format spells it "NaN".
    return (await ctx.metrics.registry.metrics()).replace(/ Nan$/gm, ' NaN');
  });

  registerHealth(app, source, ctx.indexer);

  app.get('/v1/openapi.json', { schema: { hide: true, querystring: S.emptyQuery } }, async () => app.swagger());
}
