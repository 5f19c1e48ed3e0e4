import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import { silent, type LogFn } from '../log.js';
import { QueryError } from '../read/queries.js';
import { levelSource, type DataSource } from '../read/source.js';
import type { DB } from '../store/store.js';
import { HttpError } from './errors.js';
import { EventHub } from './events.js';
import { Metrics } from './metrics.js';
import { registerDashboard } from './dashboard-routes.js';
import { explorerUrlProblem } from './explorer-url.js';
import { EXPLORE_SCHEMAS, registerExploreRoutes } from './explore-routes.js';
import { registerRoutes } from './routes.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { TipSummary } from './summary.js';

export interface MountOptions {
  /** The LevelDB index to serve; or give `source` (the PostgreSQL mirror: `nodereg serve --postgres`). */
  readonly db?: DB;
  readonly source?: DataSource;
  readonly params: NetworkParams;
  /** The live follower, for `nodereg index --serve` and embedders; null for a static index. */
  readonly indexer?: Indexer | null;
  /** Allowed CORS origin(s); CORS is off unless given. */
  readonly corsOrigin?: string | string[];
  readonly log?: LogFn;
  readonly eventRetention?: number;
  /** First event id (default: the start time in µs, so ids grow across restarts). */
  readonly firstEventId?: number;
  /** Expensive reads (exports, payouts, past heights) allowed at once; more get a 503. Default 2. */
  readonly maxHeavyRequests?: number;
  /** The path prefix the routes are mounted under ('' at the root); the dashboard is served only at the root. */
  readonly prefix?: string;
  /** The dashboard's link for a transaction, `{txid}` standing for its id (`--explorer-url`); no links when absent. */
  readonly explorerUrl?: string | null;
}

export interface MountedApi {
  readonly events: EventHub;
  readonly metrics: Metrics;
  /** Stops the heartbeat and ends the event streams. */
  stop(): void;
}

const MAX_URL = 2048;
/** The methods every route answers; anything else is a 405 that says so. */
const ALLOW = 'GET, HEAD';

/**
 * Puts the read API into `app`: the shared schemas, the OpenAPI generator,
 * the method and parameter checks, the error shapes and every route. `app`
 * is nodereg's own fastify instance (`buildServer`) or an encapsulated
 * scope of an embedder's (`createApiServer`), so none of this leaks into
 * the embedder's other routes.
 */
export async function mountApi(app: FastifyInstance, opts: MountOptions): Promise<MountedApi> {
  const log = opts.log ?? silent;
  const prefix = opts.prefix ?? '';
  const explorerProblem = opts.explorerUrl ? explorerUrlProblem(opts.explorerUrl) : null;
  if (explorerProblem) throw new Error(explorerProblem);
  const events = new EventHub(opts.eventRetention, undefined, opts.firstEventId);
  const source = opts.source ?? (opts.db ? levelSource(opts.db, opts.params) : null);
  if (source === null) throw new Error('mountApi needs an index (db) or a source');
  const summary = new TipSummary();
  const metrics = new Metrics(source, opts.indexer ?? null, summary, events);
  if (opts.indexer) events.follow(opts.indexer);

  for (const schema of [...SHARED_SCHEMAS, ...EXPLORE_SCHEMAS]) app.addSchema(schema);
  await app.register(swagger, {
    // Components are named by their $id (Status, Export, …) rather than def-0, def-1.
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
    openapi: {
      openapi: '3.0.3',
      info: { title: 'nodereg read API', version: '1', description: 'The on-chain node registry, read-only. All routes are GET.', license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' } },
      // Relative: the document describes whichever host and prefix served it. No authentication.
      servers: [{ url: '/', description: 'this server' }],
      security: [],
    },
  });

  app.addHook('onRequest', async (req) => {
    if (req.url.length > MAX_URL) throw new HttpError(414, 'uri_too_long', `URLs are limited to ${MAX_URL} characters`);
    // A CORS preflight (an OPTIONS with Origin and Access-Control-Request-Method) is @fastify/cors's to answer.
    const preflight = req.method === 'OPTIONS' && opts.corsOrigin !== undefined && req.headers.origin !== undefined && req.headers['access-control-request-method'] !== undefined;
    if (req.method !== 'GET' && req.method !== 'HEAD' && !preflight) {
      throw new HttpError(405, 'method_not_allowed', 'the API is read-only: only GET is served');
    }
  });
  // Ajv's coercion reads query integers with Number(), which takes " ", "0x10" and "1e2":
  // only plain decimal digits are integers here (a minus sign is left for the schema's minimum to reject).
  // Unknown parameters are named here too, rather than by Ajv's "must NOT have additional properties".
  app.addHook('preValidation', async (req) => {
    const props = (req.routeOptions.schema?.querystring as { properties?: Record<string, { type?: unknown }> } | undefined)?.properties;
    if (!props) return;
    for (const [name, value] of Object.entries(req.query as Record<string, unknown>)) {
      if (!Object.hasOwn(props, name)) {
        const known = Object.keys(props);
        throw new HttpError(400, 'bad_request', `querystring/${name.slice(0, 40)} is not a parameter of this route (${known.length ? `it takes ${known.join(', ')}` : 'it takes none'})`);
      }
      if (props[name]?.type === 'integer' && typeof value === 'string' && !/^-?\d{1,16}$/.test(value)) {
        throw new HttpError(400, 'bad_request', `querystring/${name} must be a whole number in decimal digits, got "${value.slice(0, 40)}"`);
      }
    }
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpDuration.observe({ route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      return reply.code(400).send({ error: 'bad_request', message: `${err.validationContext ?? 'request'}${err.message.replace(/^(querystring|params)/, '')}` });
    }
    if (err instanceof HttpError) {
      if (err.statusCode === 503) void reply.header('retry-after', '1');
      if (err.statusCode === 405) void reply.header('allow', ALLOW);
      return reply.code(err.statusCode).send({ error: err.code, message: err.message });
    }
    if (err instanceof QueryError) return reply.code(400).send({ error: 'bad_request', message: err.message });
    if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'bad_request', message: err.message });
    }
    log('error', 'http handler failed', { url: req.url, error: err.stack ?? err.message });
    return reply.code(500).send({ error: 'internal', message: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}; see ${prefix}/v1/openapi.json` });
  });

  // After the method check (so only a real preflight reaches it) and the error handler (so its route uses ours).
  if (opts.corsOrigin) await app.register(cors, { origin: opts.corsOrigin, methods: ['GET'] });
  registerRoutes(app, { source, params: opts.params, indexer: opts.indexer ?? null, events, metrics, summary, maxHeavy: opts.maxHeavyRequests ?? 2 });
  registerExploreRoutes(app, source, opts.params);
  if (prefix === '') registerDashboard(app, opts.params.name, opts.explorerUrl ?? null);


  const heartbeat = setInterval(() => events.heartbeat(), 15_000);
  heartbeat.unref();
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    clearInterval(heartbeat);
    events.closeAll();
  };
  app.addHook('onClose', async () => stop());
  return { events, metrics, stop };
}
