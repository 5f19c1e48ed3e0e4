import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import type { LogFn } from '../log.js';
import { silent } from '../log.js';
import { QueryError } from '../read/queries.js';
import type { DB } from '../store/store.js';
import { EventHub } from './events.js';
import { Metrics } from './metrics.js';
import { registerRoutes } from './routes.js';
import { SHARED_SCHEMAS } from './schemas.js';
import { TipSummary } from './summary.js';

export interface ServerOptions {
  readonly db: DB;
  readonly params: NetworkParams;
  /** The live follower when serving from `nodereg index --serve`; null for a static index. */
  readonly indexer?: Indexer | null;
  /** Allowed CORS origin(s); CORS is off unless given. */
  readonly corsOrigin?: string | string[];
  readonly log?: LogFn;
  readonly eventRetention?: number;
  /** First event id (default: the start time in µs, so ids grow across restarts). */
  readonly firstEventId?: number;
  /** Expensive reads (exports, payouts, past heights) allowed at once; more get a 503. Default 2. */
  readonly maxHeavyRequests?: number;
  /**
   * One JSON line per answered request through fastify's pino logger: to
   * stderr when true, or to the given stream.
   */
  readonly accessLog?: boolean | { write(line: string): void };
}

export interface ApiServer {
  readonly app: FastifyInstance;
  readonly events: EventHub;
  readonly metrics: Metrics;
  listen(host: string, port: number): Promise<string>;
  close(): Promise<void>;
}

/** An error a client caused; the route handler throws it and the client gets a 4xx JSON error. */
export class HttpError extends Error {
  constructor(readonly statusCode: number, readonly code: string, message: string) {
    super(message);
    this.name = 'HttpError';
  }
}

const MAX_URL = 2048;

/** fastify's request logging as an access log: one line per request, when it is answered. */
class AccessLog extends LogController {
  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const line = { req, res: reply, responseTime: Math.round(reply.elapsedTime * 100) / 100 };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else reply.log.info(line, 'request completed');
  }
}
/** The methods every route answers; anything else is a 405 that says so. */
const ALLOW = 'GET, HEAD';

/**
 * Errors Node's HTTP parser raises before fastify sees a request (headers
 * too large or too slow, malformed requests): answered in the API's own
 * {error, message} shape, then the connection is closed.
 */
function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, error, message] = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'request_timeout', 'the request was not received in time']
    : err.code === 'HPE_HEADER_OVERFLOW' ? [431, 'headers_too_large', 'request headers are limited to 8 KiB']
      : [400, 'bad_request', 'malformed HTTP request'];
  const body = JSON.stringify({ error, message });
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  }
  socket.destroy();
}

/**
 * The read-only HTTP API. Limits keep slow or hostile clients from
 * exhausting it: 8 KiB of headers (the request line included), URLs of at
 * most 2 KiB, path parameters of at most 200 characters, no request bodies,
 * 10 s to send headers and 15 s to send a request, at most 200 event
 * streams, and at most `maxHeavyRequests` registry rebuilds (exports,
 * payouts, past heights) at once.
 */
export async function buildServer(opts: ServerOptions): Promise<ApiServer> {
  const log = opts.log ?? silent;
  const app = Fastify({
    logger: opts.accessLog ? { level: 'info', stream: opts.accessLog === true ? process.stderr : opts.accessLog } : false,
    logController: new AccessLog(),
    routerOptions: { maxParamLength: 200 },
    bodyLimit: 1024,
    return503OnClosing: true,
    frameworkErrors: (error, _req, reply) => {
      const status = error.statusCode ?? 400;
      const raw = reply.raw;
      raw.statusCode = status;
      raw.setHeader('content-type', 'application/json; charset=utf-8');
      raw.end(JSON.stringify({ error: status === 414 ? 'uri_too_long' : 'bad_request', message: error.message }));
    },
    clientErrorHandler,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: true, useDefaults: true, allErrors: false } },
    serverFactory: (handler: (req: IncomingMessage, res: ServerResponse) => void) =>
      createServer({
        maxHeaderSize: 8192, requestTimeout: 15_000, headersTimeout: 10_000, keepAliveTimeout: 5000,
        // Node enforces the two timeouts above only when it checks, every 30 s by default.
        connectionsCheckingInterval: 1000,
      }, handler),
  });
  const events = new EventHub(opts.eventRetention, undefined, opts.firstEventId);
  const summary = new TipSummary();
  const metrics = new Metrics(opts.db, opts.indexer ?? null, summary, events);
  if (opts.indexer) events.follow(opts.indexer);

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);
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
    void reply.code(404).send({ error: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}; see /v1/openapi.json` });
  });

  // After the method check (so only a real preflight reaches it) and the error handler (so its route uses ours).
  if (opts.corsOrigin) await app.register(cors, { origin: opts.corsOrigin, methods: ['GET'] });
  registerRoutes(app, { db: opts.db, params: opts.params, indexer: opts.indexer ?? null, events, metrics, summary, maxHeavy: opts.maxHeavyRequests ?? 2 });
  await app.ready();

  const heartbeat = setInterval(() => events.heartbeat(), 15_000);
  heartbeat.unref();
  return {
    app, events, metrics,
    async listen(host: string, port: number): Promise<string> {
      return app.listen({ host, port });
    },
    async close(): Promise<void> {
      clearInterval(heartbeat);
      events.closeAll();
      await app.close();
    },
  };
}
