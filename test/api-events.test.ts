import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import type { ChainBuilder } from '../fixtures/generator/chain.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import type { ExportJson } from '../indexer/read/queries.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { submitAll } from './helpers/chains.js';
import { CLI, ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';
import { checkExposition } from './helpers/exposition.js';

const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as ExportJson;

interface SseEvent {
  id: number;
  type: string;
  data: Record<string, unknown>;
}

/** A plain-HTTP Server-Sent Events reader: no EventSource, no reconnection of its own. */
class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  private readonly req: ClientRequest;
  private buffer = '';

  constructor(base: URL, lastEventId?: number) {
    const headers: Record<string, string> = { accept: 'text/event-stream' };
    if (lastEventId !== undefined) headers['last-event-id'] = String(lastEventId);
    this.req = get({ host: base.hostname, port: base.port, path: '/v1/events', headers }, (res) => {
      this.status = res.statusCode!;
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => this.feed(chunk));
    });
    this.req.on('error', () => undefined);
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('\n\n')) >= 0) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const fields = new Map<string, string>();
      for (const line of frame.split('\n')) {
        const m = /^([a-z]+): ?(.*)$/.exec(line);
        if (m) fields.set(m[1]!, m[2]!);
      }
      if (!fields.has('event')) continue;
      this.events.push({ id: Number(fields.get('id')), type: fields.get('event')!, data: JSON.parse(fields.get('data')!) as Record<string, unknown> });
    }
  }

  get lastId(): number {
    return this.events[this.events.length - 1]?.id ?? 0;
  }

  async waitFor(pred: (e: SseEvent) => boolean, what: string, ms = 30_000): Promise<SseEvent> {
    const deadline = Date.now() + ms;
    for (;;) {
      const hit = this.events.find(pred);
      if (hit) return hit;
      if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms; got ${this.events.length} events, last ${JSON.stringify(this.events.slice(-3))}`);
      await sleep(20);
    }
  }

  close(): void {
    this.req.destroy();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function getJson<T>(base: URL, path: string): Promise<{ status: number; body: T; text: string }> {
  const res = await fetch(new URL(path, base));
  const text = await res.text();
  return { status: res.status, body: (res.headers.get('content-type')?.startsWith('application/json') ? JSON.parse(text) : null) as T, text };
}

const isBlock = (h: number, hash?: string) => (e: SseEvent): boolean => e.type === 'block' && e.data.height === h && (hash === undefined || e.data.hash === hash);

describe('`nodereg index --serve` against a real bcoin node', () => {
  let node: BcoinNode;
  let dir: string;
  let daemon: ChildProcess;
  let log = '';
  let base: URL;
  let c: ChainBuilder;
  let side: ChainBuilder;
  let first: SseClient;
  let live: SseClient;
  const clients: SseClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nodereg-sse-'));
    node = await startBcoin();
    c = demo();
    await submitAll(node, c.bestChain().slice(1));
    daemon = spawn(process.execPath, [
      CLI, 'index', '--network', 'regtest', '--rpc', node.url, '--rpc-user', 'x', '--rpc-password', node.apiKey,
      '--db', join(dir, 'db'), '--serve', '127.0.0.1:0', '--access-log', '--poll-interval', '100', '--log-json', '--log-level', 'info',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    daemon.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
    const deadline = Date.now() + 20_000;
    let m: RegExpExecArray | null;
    while (!(m = /"msg":"serving the read API","address":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(log))) {
      if (Date.now() > deadline || daemon.exitCode !== null) throw new Error(`the daemon did not start serving:\n${log}`);
      await sleep(20);
    }
    base = new URL(m[1]!);
  }, 60_000);

  afterAll(async () => {
    for (const cl of clients) cl.close();
    if (daemon && daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r));
      daemon.kill('SIGTERM');
      const timer = setTimeout(() => daemon.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const client = (lastEventId?: number): SseClient => {
    const cl = new SseClient(base, lastEventId);
    clients.push(cl);
    return cl;
  };

  it('streams every block and registry event of the catch-up to a client replaying from id 0, numbered without gaps', async () => {
    first = client(0);
    await first.waitFor(isBlock(450, expected.tip), 'block 450');
    expect(first.status).toBe(200);
    const evs = first.events;
    expect(evs.map((e) => e.id)).toEqual(evs.map((_, i) => evs[0]!.id + i));
    expect(evs.filter((e) => e.type === 'block').map((e) => e.data.height)).toEqual(Array.from({ length: 451 }, (_, h) => h));
    expect(evs.filter((e) => e.type === 'block').map((e) => e.data.hash)).toEqual(c.bestChain().map((b) => b.hash));
    expect(evs.filter((e) => e.type === 'reorg')).toEqual([]);

    // Each registry event follows the block event of its own height.
    let height = -1;
    for (const e of evs) {
      if (e.type === 'block') height = e.data.height as number;
      else expect({ type: e.type, height: e.data.height }).toEqual({ type: e.type, height });
    }

    expect(evs.filter((e) => e.type === 'rejected').map((e) => ({ txid: e.data.txid, height: e.data.height, vout: e.data.vout, reason: e.data.reason })))
      .toEqual(expected.rejected);

    // The registry events are exactly the stored histories of the five stakes.
    const fromStream = evs.filter((e) => ['registered', 'renewed', 'expired', 'lapsed'].includes(e.type))
      .map((e) => `${e.data.address} ${e.type} ${e.data.height} ${e.data.txid}`);
    const fromHistory: string[] = [];
    for (const n of expected.nodes) {
      const { body } = await getJson<{ history: Array<{ event: string; height: number; txid: string | null }> }>(base, `/v1/nodes/${n.address}/history`);
      for (const h of body.history) fromHistory.push(`${n.address} ${h.event} ${h.height} ${h.txid}`);
    }
    expect(fromStream.sort()).toEqual(fromHistory.sort());
    expect(evs.find((e) => e.type === 'expired')?.data).toMatchObject({ height: 246, address: expected.nodes[0]!.address, txid: null, expiryHeight: 246 });
    expect(evs.find((e) => e.type === 'lapsed')?.data).toMatchObject({ height: 442, address: expected.nodes[3]!.address, renewals: 1 });
  });

  it('shows the node tip and the sync state in /v1/status while following', async () => {
    let status: { sync: string; nodeTip: unknown; tip: unknown } | null = null;
    for (let i = 0; i < 100 && status?.sync !== 'synced'; i++) {
      status = (await getJson<{ sync: string; nodeTip: unknown; tip: unknown }>(base, '/v1/status')).body;
      if (status.sync !== 'synced') await sleep(50);
    }
    expect(status).toMatchObject({ sync: 'synced', nodeTip: { height: 450, hash: expected.tip }, tip: { height: 450, hash: expected.tip }, counts: { active: 3, expired: 1, lapsed: 1 } });
    expect((await getJson(base, '/v1/export')).body).toEqual(expected);
  });

  it('sends an explicit reorg event when the node switches to a longer branch, then the new branch\'s blocks', async () => {
    live = client();
    const missedFrom = first.lastId;
    first.close();
    await sleep(100);

    side = c.fork(c.height - 6);
    const hank = side.account('hank', 'p2tr');
    side.wallet.pay(hank, [carrier(newNode(hank, side.nextTime()))]);
    side.mine();
    side.mineEmpty(8);
    await submitAll(node, side.chainBlocks().filter((b) => b.height > c.height - 6));
    await live.waitFor(isBlock(453, side.tip.hash), 'block 453 of the new branch');

    const evs = live.events;
    expect(evs[0]!.id).toBe(missedFrom + 1);
    expect(evs.map((e) => e.id)).toEqual(evs.map((_, i) => missedFrom + 1 + i));
    expect(evs[0]).toEqual({ id: missedFrom + 1, type: 'reorg', data: { depth: 6, forkHeight: 444, oldTip: { height: 450, hash: expected.tip } } });
    expect(evs.filter((e) => e.type === 'reorg')).toHaveLength(1);
    const branch = side.chainBlocks().filter((b) => b.height > 444);
    expect(evs.filter((e) => e.type === 'block').map((e) => [e.data.height, e.data.hash])).toEqual(branch.map((b) => [b.height, b.hash]));
    expect(evs.filter((e) => e.type === 'registered').map((e) => [e.data.address, e.data.height])).toEqual([[hank.address, 445]]);
  });

  it('resumes a client that reconnects with Last-Event-ID with exactly the events it missed: no gap, no duplicate', async () => {
    const missedFrom = live.events[0]!.id - 1;
    const resumed = client(missedFrom);
    await resumed.waitFor(isBlock(453, side.tip.hash), 'block 453 after resuming');
    await sleep(200);
    expect(resumed.events).toEqual(live.events);
    const all = [...first.events, ...resumed.events].map((e) => e.id);
    expect(all).toEqual(all.map((_, i) => all[0]! + i));

    const query = await fetch(new URL(`/v1/events?lastEventId=${missedFrom}`, base));
    const reader = query.body!.getReader();
    let text = '';
    while (!text.includes(`"hash":"${side.tip.hash}"`)) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text.match(/^id: (\d+)$/gm)![0]).toBe(`id: ${missedFrom + 1}`);
  });

  it('tells a client whose id this process never issued (a restart, or a typo) to reset', async () => {
    const stale = client(999_999);
    const reset = await stale.waitFor((e) => e.type === 'reset', 'reset');
    expect(stale.events).toHaveLength(1);
    expect(reset).toEqual({ id: live.lastId, type: 'reset', data: { reason: `event 999999 is not retained (have ${first.events[0]!.id}..${live.lastId}); reload /v1/export` } });
  });

  it('reports the followed tip and every metric family on /metrics', async () => {
    const status = (await getJson<Record<string, unknown>>(base, '/v1/status')).body;
    expect(status).toMatchObject({ sync: 'synced', nodeTip: { height: 453, hash: side.tip.hash }, tip: { height: 453, hash: side.tip.hash }, counts: { active: 4, expired: 1, lapsed: 1 } });
    const { text } = await getJson(base, '/metrics');
    const txs = c.bestChain().slice(1).reduce((s, b) => s + b.txids.length, 0) + side.chainBlocks().filter((b) => b.height > 444).reduce((s, b) => s + b.txids.length, 0);
    expect(text).toMatch(/^nodereg_tip_height 453$/m);
    expect(text).toMatch(/^nodereg_registrations\{status="active"\} 4$/m);
    expect(text).toMatch(/^nodereg_registrations\{status="expired"\} 1$/m);
    expect(text).toMatch(/^nodereg_registrations\{status="lapsed"\} 1$/m);
    expect(text).toMatch(/^nodereg_blocks_processed_total 460$/m);
    expect(text).toMatch(new RegExp(`^nodereg_transactions_processed_total ${txs}$`, 'm'));
    expect(text).toMatch(/^nodereg_reorgs_total 1$/m);
    expect(text).toMatch(/^nodereg_rpc_errors_total 0$/m);
    expect(text).toMatch(/^nodereg_zmq_garbage_total 0$/m);
    expect(text).toMatch(/^nodereg_zmq_gaps_total 0$/m);
    expect(text).toMatch(/^nodereg_http_request_duration_seconds_bucket\{le="0\.01",route="\/v1\/status",status="200"\} \d+$/m);
    expect(text).toMatch(/^nodereg_http_request_duration_seconds_count\{route="\/v1\/nodes\/:stake\/history",status="200"\} 5$/m);
    expect(text).toMatch(/^# TYPE nodereg_zmq_gaps_total counter$/m);
    expect(text).toMatch(/^# TYPE nodereg_zmq_garbage_total counter$/m);
    expect(text).toMatch(/^nodereg_node_tip_height 453$/m);
    expect(text).toMatch(/^nodereg_sync_lag_blocks 0$/m);
    expect(text).toMatch(/^nodereg_seconds_since_last_block \d+(\.\d+)?$/m);
    expect(text).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    expect(checkExposition(text).problems).toEqual([]);

    const ready = await getJson<Record<string, unknown>>(base, '/health/ready');
    expect([ready.status, ready.body]).toEqual([200, { ready: true, sync: 'synced', tip: 453, nodeTip: 453, lag: 0, reason: 'synced' }]);
    expect((await getJson(base, '/health/live')).status).toBe(200);
    // --access-log: fastify's logger wrote a JSON line for the requests above.
    expect(log).toMatch(/"msg":"request completed"/);
    expect(log).toMatch(/"url":"\/health\/ready"[^\n]*"statusCode":200/);
  });

  it('stops cleanly on SIGTERM while an event stream is open', async () => {
    const open = client(live.lastId);
    await sleep(100);
    const exited = new Promise<number | null>((r) => daemon.once('exit', (code) => r(code)));
    daemon.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log).toMatch(/"msg":"stopped","height":453/);
    expect(open.events).toEqual([]);
  });
});

describe('event retention', () => {
  const regtest = BUILTIN_NETWORKS.regtest!;
  let idx: Awaited<ReturnType<typeof tempIndex>>;
  let server: ApiServer;
  let base: URL;

  beforeAll(async () => {
    idx = await tempIndex(regtest);
    server = await buildServer({ db: idx.db, params: regtest, eventRetention: 5, firstEventId: 1 });
    base = new URL(await server.listen('127.0.0.1', 0));
    for (let h = 1; h <= 12; h++) server.events.publish('block', { height: h, hash: String(h).padStart(64, '0'), txCount: 1 });
  });
  afterAll(async () => {
    await server.close();
    await idx.close();
  });

  const replay = async (lastId: number, n: number): Promise<SseEvent[]> => {
    const cl = new SseClient(base, lastId);
    try {
      const deadline = Date.now() + 5000;
      while (cl.status !== 200 || cl.events.length < n) {
        if (Date.now() > deadline) throw new Error(`no ${n} events within 5 s; got ${JSON.stringify(cl.events)}`);
        await sleep(20);
      }
      await sleep(100);
      return cl.events;
    } finally {
      cl.close();
    }
  };

  it('replays from any id still retained, down to the oldest retained event', async () => {
    expect((await replay(9, 3)).map((e) => e.id)).toEqual([10, 11, 12]);
    expect((await replay(7, 5)).map((e) => e.id)).toEqual([8, 9, 10, 11, 12]);
    expect(await replay(12, 0)).toEqual([]);
  });

  it('sends a reset for an id older than the retention', async () => {
    expect(await replay(6, 1)).toEqual([{ id: 12, type: 'reset', data: { reason: 'event 6 is not retained (have 8..12); reload /v1/export' } }]);
  });

  it('delivers live events to a connected client with the next id', async () => {
    const cl = new SseClient(base);
    try {
      await sleep(100);
      server.events.publish('reorg', { depth: 1, forkHeight: 11, oldTip: { height: 12, hash: 'x' } });
      expect(await cl.waitFor((e) => e.type === 'reorg', 'reorg', 5000)).toEqual({ id: 13, type: 'reorg', data: { depth: 1, forkHeight: 11, oldTip: { height: 12, hash: 'x' } } });
    } finally {
      cl.close();
    }
  });
});
