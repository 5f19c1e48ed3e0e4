import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

/** One POST the receiver got, with the status it answered. */
export interface Received {
  readonly headers: IncomingHttpHeaders;
  readonly raw: Buffer;
  readonly body: { id: string; seq: number; type: string; timestamp: number; data: Record<string, unknown> };
  readonly status: number;
}

/**
 * A real webhook receiver on 127.0.0.1: records every request, answers 503
 * to the first `failFirst` of them and 200 afterwards. It can be closed and
 * opened again on the same port, as a receiver that goes down.
 */
export class Receiver {
  readonly got: Received[] = [];
  failFirst = 0;
  /** Chooses the status per request instead of `failFirst`. */
  answer: ((body: Received['body']) => number) | null = null;
  private server: Server | null = null;

  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  /** The events answered with 200, in arrival order. */
  get accepted(): Received[] {
    return this.got.filter((r) => r.status === 200);
  }

  open(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const body = JSON.parse(raw.toString('utf8')) as Received['body'];
        const status = this.answer ? this.answer(body) : this.got.length < this.failFirst ? 503 : 200;
        this.got.push({ headers: req.headers, raw, body, status });
        res.writeHead(status).end();
      });
    });
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  close(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (!s) return Promise.resolve();
    s.closeAllConnections();
    return new Promise((resolve) => s.close(() => resolve()));
  }

  /** Waits (a bound only against a hang) until `cond` holds over what was received. */
  async until(cond: (r: Receiver) => boolean, what: string, ms = 120_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond(this)) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; got ${this.got.length} requests: ${this.got.slice(-5).map((g) => g.body.type).join(', ')}`);
      await sleep(20);
    }
  }
}
