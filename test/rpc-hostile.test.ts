import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../indexer/log.js';
import { RpcClient } from '../indexer/node/rpc.js';
import { rejection } from './helpers/rpc.js';

/*
 * The RPC client against real local HTTP servers that are not well-behaved
 * nodes: one that streams an endless answer, one that declares a huge one, and
 * a FAKE proxy that echoes the credentials it was sent back in its errors.
 */

const MiB = 1024 * 1024;

interface Served {
  url: string;
  /** Bytes of body written to each response so far. */
  written: number[];
  /** Responses whose client closed the connection before the end. */
  cut: () => number;
  close: () => Promise<void>;
}

async function serve(handler: (req: IncomingMessage, res: ServerResponse, body: string, n: number) => void): Promise<Served> {
  const written: number[] = [];
  let cut = 0;
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const n = written.push(0) - 1;
      res.on('close', () => { if (!res.writableFinished) cut++; });
      const write = res.write.bind(res);
      res.write = ((chunk: string | Buffer, ...rest: never[]) => {
        written[n]! += Buffer.byteLength(chunk);
        return write(chunk, ...rest);
      }) as typeof res.write;
      handler(req, res, body, n);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    written,
    cut: () => cut,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** Streams `{"result":"00…` with backpressure until `limit` bytes or until the client hangs up. */
function endlessHex(res: ServerResponse, limit: number): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.write('{"result":"');
  const chunk = '00'.repeat(32 * 1024);
  let sent = 0;
  const pump = (): void => {
    while (!res.destroyed && sent < limit) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end('","error":null,"id":1}');
  };
  pump();
}

let server: Served | undefined;
let dir: string | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

describe('RpcClient against answers of any size', () => {
  it('abandons an endless getblock answer at the cap, names the call and the cap, and reads no more than about the cap', async () => {
    server = await serve((_req, res) => endlessHex(res, 2048 * MiB));
    const before = process.memoryUsage().arrayBuffers;
    const rpc = new RpcClient({ url: server.url, maxResponseBytes: 8 * MiB, retries: 0 });
    const err = await rejection(rpc.call('getblock', ['00'.repeat(32), 0]));
    expect(err).toMatchObject({ kind: 'too-large', transient: false });
    expect(err.message).toBe(`the node's answer to getblock was larger than 8 MB: if the node at ${server.url} really sends blocks that large, raise --rpc-max-response-mb`);
    expect(err.message).not.toMatch(/cannot reach/);
    // The client hung up: the server did not get to write its 2 GiB.
    await new Promise((r) => setTimeout(r, 100));
    expect(server.cut()).toBe(1);
    expect(server.written[0]!).toBeLessThan(64 * MiB);
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * MiB);
  }, 60_000);

  it('refuses an answer whose Content-Length is over the default cap of 128 MB before reading it', async () => {
    server = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': String(700 * MiB) });
      res.write('{"result":"');
    });
    const rpc = new RpcClient({ url: server.url, retries: 0 });
    const err = await rejection(rpc.getBlocksRaw(['11'.repeat(32)]));
    expect(err.message).toMatch(/^the node's answer to getblock was larger than 128 MB: /);
  });

  it('names a batch as a batch when it passes the cap, and reads a large answer under the cap whole', async () => {
    server = await serve((_req, res, body) => {
      const isBatch = body.startsWith('[');
      if (isBatch) return endlessHex(res, 64 * MiB);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ result: 'ab'.repeat(3 * MiB), error: null, id: 1 }));
    });
    const rpc = new RpcClient({ url: server.url, maxResponseBytes: 8 * MiB, retries: 0 });
    expect((await rpc.call<string>('getblock', ['22'.repeat(32), 0])).length).toBe(6 * MiB);
    const err = await rejection(rpc.batch([{ method: 'getblockhash', params: [1] }, { method: 'getblockhash', params: [2] }]));
    expect(err.message).toMatch(/^the node's answer to getblockhash \(batch of 2\) was larger than 8 MB/);
  });
});

describe('RpcClient against something that is not a node', () => {
  it('calls an HTML page an HTML page, with its title, after the same retries as an unreachable node', async () => {
    let requests = 0;
    server = await serve((_req, res) => {
      requests++;
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<!doctype html><html><head><title>Router login</title></head><body>hi</body></html>');
    });
    const rpc = new RpcClient({ url: server.url, retries: 3, backoffMs: 1 });
    const err = await rejection(rpc.getBlockchainInfo());
    expect(err).toMatchObject({ kind: 'malformed', transient: true });
    expect(err.message).toBe(`the node at ${server.url} answered getblockchaininfo with an HTML page ("Router login") instead of JSON: is --rpc the node's RPC address and port?`);
    expect(requests).toBe(4);
  });
});

describe('secrets never reach an error or a log line', () => {
  /** A FAKE proxy that answers every call with a JSON-RPC error quoting the Authorization header it got, decoded. */
  const echoingProxy = (): Promise<Served> => serve((req, res) => {
    const auth = req.headers.authorization ?? '';
    const decoded = Buffer.from(auth.replace(/^Basic /, ''), 'base64').toString();
    res.writeHead(500, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ result: null, error: { code: -1, message: `denied for ${decoded} (${auth}) via http://${decoded}@upstream:8332/` }, id: 1 }));
  });

  it('masks the password of --rpc http://user:pass@host in errors from a fake proxy that echoes it', async () => {
    server = await echoingProxy();
    const url = server.url.replace('http://', 'http://alice:Tr0ub4dor@');
    const rpc = new RpcClient({ url, retries: 0 });
    const err = await rejection(rpc.getBestBlockHash());
    expect(err.message).toContain('denied for alice:***');
    expect(err.message).toContain('http://alice:***@upstream:8332/');
    expect(`${err.message} ${err.nodeMessage}`).not.toMatch(/Tr0ub4dor|YWxpY2U6VHIwdWI0ZG9y/);
  });

  it('masks a cookie\'s secret read from --rpc-cookie in errors and in log lines, text and JSON', async () => {
    server = await echoingProxy();
    dir = mkdtempSync(join(tmpdir(), 'nodereg-cookie-'));
    const cookie = join(dir, '.cookie');
    writeFileSync(cookie, '__cookie__:9f8e7d6c5b4a39281706f5e4d3c2b1a0\n');
    const rpc = new RpcClient({ url: server.url, cookieFile: cookie, retries: 0 });
    const err = await rejection(rpc.getBestBlockHash());
    expect(err.message).toContain('denied for __cookie__:***');
    expect(err.message).not.toContain('9f8e7d6c5b4a39281706f5e4d3c2b1a0');
    const lines: string[] = [];
    for (const json of [false, true]) {
      const log = createLogger({ json, write: (l) => lines.push(l) });
      log('warn', 'rpc call failed', { error: err.nodeMessage, rpc: 'http://u:9f8e7d6c5b4a39281706f5e4d3c2b1a0@h:1/', cause: new Error('via http://bob:hunter2hunter2@x') });
    }
    expect(lines).toHaveLength(2);
    for (const l of lines) {
      expect(l).not.toMatch(/9f8e7d6c5b4a39281706f5e4d3c2b1a0|hunter2hunter2/);
      expect(l).toContain('u:***@h:1');
      expect(l).toContain('bob:***@x');
    }
  });
});

describe('RpcClient.contact: whether the node answers now', () => {
  it('records the last answer, and since when calls fail: a stopped server, then a deleted cookie as bitcoind leaves on shutdown', async () => {
    server = await serve((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ result: 'aa'.repeat(32), error: null, id: 1 }));
    });
    dir = mkdtempSync(join(tmpdir(), 'nodereg-contact-'));
    const cookie = join(dir, '.cookie');
    writeFileSync(cookie, '__cookie__:0123456789abcdef\n');
    const rpc = new RpcClient({ url: server.url, cookieFile: cookie, retries: 0 });
    expect(rpc.contact).toEqual({ lastAnswer: null, failingSince: null });
    await rpc.getBestBlockHash();
    const answered = rpc.contact.lastAnswer!;
    expect(answered).toBeGreaterThan(0);
    expect(rpc.contact.failingSince).toBeNull();

    await server.close();
    server = undefined;
    expect(await rejection(rpc.getBestBlockHash())).toMatchObject({ kind: 'unreachable' });
    expect(rpc.contact.lastAnswer).toBe(answered);
    expect(rpc.contact.failingSince).toBeGreaterThanOrEqual(answered);

    const cookieOnly = new RpcClient({ url: 'http://127.0.0.1:9', cookieFile: join(dir, 'missing'), retries: 0 });
    expect(await rejection(cookieOnly.getBestBlockHash())).toMatchObject({ kind: 'auth', transient: true });
    expect(cookieOnly.contact.failingSince).not.toBeNull();
  });
});
