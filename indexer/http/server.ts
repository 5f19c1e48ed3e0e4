import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { EventHub } from './events.js';
import type { Metrics } from './metrics.js';
import { mountApi, type MountOptions } from './mount.js';

export interface ServerOptions extends Omit<MountOptions, 'prefix'> {
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

export { HttpError } from './errors.js';

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
  const api = await mountApi(app, opts);
  await app.ready();

  return {
    app, events: api.events, metrics: api.metrics,
    async listen(host: string, port: number): Promise<string> {
      return app.listen({ host, port });
    },
    async close(): Promise<void> {
      api.stop();
      await app.close();
    },
  };
}
