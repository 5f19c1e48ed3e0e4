/**
 * `nodereg index` against nodes that misbehave in ways that used to cost the
 * machine or mislead the user: an --rpc address where a web page answers, a
 * FAKE RPC proxy (in front of a real bcoin node) whose getblock answers never
 * end, a ZMQ publisher that sends a frame of 100 MiB, and a real bcoin node
 * stopped under the running daemon.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { bcoinSnapshot, freePort, startBcoin, type BcoinNode, type BcoinSnapshot } from './helpers/bcoin.js';
import { demoBlocks, submitAll, type ChainBlock } from './helpers/chains.js';
import { ROOT } from './helpers/cli.js';
import { Daemon, rpcArgs, stopsSyncedAt, subscribed } from './helpers/daemon.js';
import { closedUrl } from './helpers/operator.js';
import { FakeBitcoindPublisher } from './helpers/zmqpub.js';

const MiB = 1024 * 1024;
const reference = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as unknown;
let blocks: ChainBlock[];
let tip: ChainBlock;

let dir: string;
let daemon: Daemon | undefined;
const servers: Server[] = [];
const nodes: BcoinNode[] = [];
const publishers: FakeBitcoindPublisher[] = [];

/** Blocks 1..300 on disk once: the two cases that need a node with most of the demo start from a copy. */
let at300: BcoinSnapshot;
beforeAll(async () => {
  blocks = await demoBlocks();
  tip = blocks.at(-1)!;
  at300 = await bcoinSnapshot((n) => submitAll(n, blocks.slice(1, 301)));
}, 180_000);
afterAll(() => at300?.remove());
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-hostile-'));
});
afterEach(async () => {
  await daemon?.kill();
  daemon = undefined;
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  for (const p of publishers.splice(0)) p.close();
  for (const n of nodes.splice(0)) await n.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Where the client's five retries before first contact run out: the count and
 * the messages are checked, not the default delays (about 8 s in all), so the
 * first retry comes after 10 ms.
 */
const QUICK_RETRIES = ['--rpc-backoff-ms', '10'];

async function listen(server: Server): Promise<string> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/`;
}

/** Peak and current resident memory of a process, in bytes, from /proc. */
function memoryOf(pid: number): { peak: number; now: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { peak: kb('VmHWM'), now: kb('VmRSS') };
}

/** A daemon that exits: its code and the non-JSON lines it printed (the final error). */
async function failure(d: Daemon): Promise<{ code: number | null; error: string[]; retries: number }> {
  const { code } = await d.exited;
  return { code, error: d.lines.filter((l) => l.level === 'raw' && l.msg !== '').map((l) => l.msg), retries: d.count('rpc call failed; retrying') };
}

describe('nodereg index against an --rpc that is not a well-behaved node', () => {
  it('gives a clear error for an --rpc where a web page answers, after the same retries as for an address where nothing answers', async () => {
    let requests = 0;
    const url = await listen(createServer((_req, res) => {
      requests++;
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end('<html><head><title>Welcome to nginx!</title></head><body>It works</body></html>');
    }));
    daemon = new Daemon(['--network', 'regtest', '--rpc', url, '--db', join(dir, 'html'), ...QUICK_RETRIES]);
    const html = await failure(daemon);
    daemon = new Daemon(['--network', 'regtest', '--rpc', await closedUrl(), '--db', join(dir, 'closed'), ...QUICK_RETRIES]);
    const closed = await failure(daemon);
    expect(html).toEqual({
      code: 1,
      error: [`nodereg: the node at ${url.slice(0, -1)} answered getblockchaininfo with an HTML page ("Welcome to nginx!") instead of JSON: is --rpc the node's RPC address and port?`],
      retries: 5,
    });
    expect(requests).toBe(6);
    expect(closed).toMatchObject({ code: 1, error: [expect.stringMatching(/^nodereg: cannot reach the node at .* \(ECONNREFUSED\)/)], retries: html.retries });
  }, 60_000);

  it('survives a FAKE RPC proxy whose getblock answers never end: abandons each at --rpc-max-response-mb with a clear error, memory stays bounded, and the index reaches the tip', async () => {
    const node = await at300.start();
    nodes.push(node);
    await submitAll(node, blocks.slice(301));
    let endless = 0;
    let offered = 0;
    const url = await listen(createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => { body += d.toString(); });
      req.on('end', () => void (async () => {
        if (body.includes('"getblock"') && endless < 2) {
          endless++;
          return streamForever(res, (n) => { offered += n; });
        }
        const answer = await node.relay(body, req.headers.authorization ?? '');
        res.writeHead(answer.status, { 'Content-Type': 'application/json' });
        res.end(answer.text);
      })());
    }));
    const db = join(dir, 'db');
    daemon = new Daemon([...rpcArgs(node, url), '--db', db, '--rpc-max-response-mb', '16', '--poll-interval', '100', '--sync-retry-ms', '20']);
    await daemon.waitSynced(tip, 120_000);
    // The second endless answer may be to a request abandoned with the first failure's catch-up.
    const errors = daemon.errors('sync failed; will retry');
    expect(errors[0]).toBe(`the node's answer to getblock was larger than 16 MB: if the node at ${url.slice(0, -1)} really sends blocks that large, raise --rpc-max-response-mb`);
    expect(errors.length).toBeLessThanOrEqual(2);
    expect(errors.every((e) => /^the node's answer to getblock( \(batch of \d+\))? was larger than 16 MB/.test(e))).toBe(true);
    expect(endless).toBe(2);
    // Each endless answer was cut off near the cap, not read to the end: ~2 × 16 MiB (plus socket buffers) offered.
    expect(offered).toBeLessThan(2 * 64 * MiB);
    const mem = memoryOf(daemon.child.pid!);
    console.log(`daemon memory after two endless answers: peak RSS ${Math.round(mem.peak / MiB)} MiB, now ${Math.round(mem.now / MiB)} MiB; ${Math.round(offered / MiB)} MiB offered`);
    expect(mem.peak).toBeLessThan(400 * MiB);
    await stopsSyncedAt(daemon, db, tip, reference);
  }, 180_000);
});

/** Streams hex with backpressure until the client hangs up (or 4 GiB), reporting each chunk's size. */
function streamForever(res: ServerResponse, sent: (n: number) => void): void {
  res.writeHead(200, { 'Content-Type': 'application/json' });
  res.write('{"result":"');
  const chunk = 'ab'.repeat(64 * 1024);
  let total = 0;
  const pump = (): void => {
    while (!res.destroyed && total < 4096 * MiB) {
      total += chunk.length;
      sent(chunk.length);
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
  };
  pump();
}

describe('nodereg index against a ZMQ publisher that sends an oversized frame', () => {
  it('drops the connection on a 100 MiB frame without buffering it, reconnects, and keeps following on notifications', async () => {
    const node = await at300.start();
    nodes.push(node);
    const upTo = 300;
    expect(await node.rpc('getblockcount')).toBe(upTo);
    const pub = await FakeBitcoindPublisher.bind();
    publishers.push(pub);
    const db = join(dir, 'db');
    daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', pub.endpoint, '--poll-interval', '600000', '--log-level', 'debug']);
    await daemon.waitSynced(blocks[upTo]!, 120_000);
    await subscribed(pub, daemon, blocks[upTo]!);
    const before = memoryOf(daemon.child.pid!);
    const huge = Buffer.alloc(100 * MiB, 0x5a);
    await pub.publishRaw(['sequence', huge, Buffer.alloc(4)]);
    await daemon.waitFor('zmq publisher dropped for a protocol error (a frame over the size limit?); rebuilding the socket', {}, 60_000);
    await daemon.waitFor('zmq notifications may have been lost; resyncing', { reason: 'reconnect' }, 60_000);
    const after = memoryOf(daemon.child.pid!);
    console.log(`daemon memory around a 100 MiB ZMQ frame: peak RSS ${Math.round(before.peak / MiB)} → ${Math.round(after.peak / MiB)} MiB`);
    expect(after.peak).toBeLessThan(Math.max(before.peak, before.now) + 50 * MiB);
    expect(daemon.has('zmq garbage message')).toBe(false);
    // Still following on notifications alone (polling is off): every later block arrives,
    // once the new socket's subscription has reached the publisher.
    const heard = daemon.count('zmq block notification');
    for (let i = 0; daemon.count('zmq block notification') === heard; i++) {
      if (i > 250) throw new Error(`the rebuilt socket never received a notification:\n${daemon.tail()}`);
      await pub.publishSequence(blocks[upTo]!.hash, 'C');
      await sleep(20);
    }
    await sleep(150);
    for (const b of blocks.slice(upTo + 1)) {
      await submitAll(node, [b]);
      await pub.publishSequence(b.hash, 'C');
    }
    await stopsSyncedAt(daemon, db, tip, reference);
  }, 180_000);
});

describe('secrets of nodereg index', () => {
  it('never shows the password of --rpc http://user:pass@host in a log line or an error message', async () => {
    const url = (await closedUrl()).replace('http://', 'http://operator:s3cr3t-Pa55@');
    daemon = new Daemon(['--network', 'regtest', '--rpc', url, '--db', join(dir, 'db'), ...QUICK_RETRIES]);
    const { code } = await daemon.exited;
    const all = JSON.stringify(daemon.lines);
    expect(code).toBe(1);
    expect(daemon.has('starting', { rpc: url.replace('s3cr3t-Pa55', '***') })).toBe(true);
    expect(daemon.count('rpc call failed; retrying')).toBe(5);
    expect(all).not.toContain('s3cr3t-Pa55');
    // A URL the CLI refuses is quoted back without its password too.
    daemon = new Daemon(['--network', 'regtest', '--rpc', 'http://operator:s3cr3t-Pa55@host name', '--db', join(dir, 'db')]);
    expect((await daemon.exited).code).toBe(2);
    expect(daemon.lines.map((l) => l.msg).join('\n')).toMatch(/^nodereg: --rpc must be an http\(s\) URL .*got "http:\/\/operator:\*\*\*@host name"$/m);
    expect(JSON.stringify(daemon.lines)).not.toContain('s3cr3t-Pa55');
  }, 60_000);
});

describe('nodereg index flooded with bad ZMQ messages', () => {
  it('writes a bounded number of log lines for 20 000 garbage messages, each line of a window counted', async () => {
    const node = await startBcoin();
    nodes.push(node);
    await submitAll(node, blocks.slice(1, 11));
    const pub = await FakeBitcoindPublisher.bind();
    publishers.push(pub);
    const db = join(dir, 'db');
    daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', pub.endpoint, '--poll-interval', '600000', '--log-level', 'debug']);
    await daemon.waitSynced(blocks[10]!);
    await subscribed(pub, daemon, blocks[10]!);
    const started = Date.now();
    for (let i = 0; i < 20_000; i++) await pub.publishRaw(['sequence', Buffer.alloc(5, i & 0xff)]);
    await sleep(500);
    const seconds = (Date.now() - started) / 1000;
    expect(await daemon.stop()).toEqual({ code: 0, signal: null });
    const lines = daemon.lines.filter((l) => l.msg === 'zmq garbage message');
    const accounted = lines.reduce((n, l) => n + (l.repeated === undefined ? 1 : (l.repeated as number)), 0);
    console.log(`20 000 garbage messages in ${seconds.toFixed(1)} s: ${lines.length} log lines accounting for ${accounted}`);
    // At most a burst of 10 and one count per 10-second window, plus the count written at stop.
    expect(lines.length).toBeLessThanOrEqual(11 * (Math.ceil(seconds / 10) + 1));
    expect(accounted).toBeGreaterThan(10);
    expect(accounted).toBeLessThanOrEqual(20_000);
  }, 180_000);
});

interface Status { sync: string; lastNodeContact: string | null; nodeTip: { height: number } | null }

describe('/v1/status while the node is down', () => {
  it('says node-unreachable with the time of the last answer while a real bcoin node is stopped, and synced again once it is back', async () => {
    const nodeDir = join(dir, 'bcoin');
    const port = await freePort();
    let node = await startBcoin({ dataDir: nodeDir, port, apiKey: 'hostile-status' });
    nodes.push(node);
    await submitAll(node, blocks.slice(1, 41));
    const api = `http://127.0.0.1:${await freePort()}`;
    daemon = new Daemon([...rpcArgs(node), '--db', join(dir, 'db'), '--poll-interval', '100', '--serve', api.slice('http://'.length)]);
    await daemon.waitSynced(blocks[40]!);
    await daemon.waitFor('serving the read API');
    const status = async (): Promise<Status> => (await (await fetch(`${api}/v1/status`)).json()) as Status;
    const until = async (sync: string): Promise<Status> => {
      for (let i = 0; i < 600; i++) {
        const s = await status();
        if (s.sync === sync) return s;
        await sleep(100);
      }
      throw new Error(`/v1/status never said ${sync}: ${JSON.stringify(await status())}\n${daemon!.tail()}`);
    };
    const synced = await until('synced');
    expect(synced.lastNodeContact).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    await node.stop();
    nodes.splice(nodes.indexOf(node), 1);
    const stoppedAt = Date.now();
    const down = await until('node-unreachable');
    expect(down.nodeTip).toMatchObject({ height: 40 });
    const last = Date.parse(down.lastNodeContact!);
    expect(last).toBeLessThanOrEqual(stoppedAt);
    expect(last).toBeGreaterThanOrEqual(Date.parse(synced.lastNodeContact!));
    // It stays so, with the same time, while the node is down.
    await sleep(500);
    expect(await status()).toMatchObject({ sync: 'node-unreachable', lastNodeContact: down.lastNodeContact });

    node = await startBcoin({ dataDir: nodeDir, port, apiKey: 'hostile-status' });
    nodes.push(node);
    const back = await until('synced');
    expect(Date.parse(back.lastNodeContact!)).toBeGreaterThan(last);
    expect(daemon.alive).toBe(true);
  }, 180_000);
});
