/**
 * `nodereg serve --postgres` against `nodereg serve --db` on the same index:
 * every route of the OpenAPI document (a route without cases here fails the
 * suite), each with good and bad parameters, pages followed to their end,
 * 404s and errors: the same status, type and body bytes. Then /v1/events of
 * the mirror server following blocks the mirror gains (LISTEN/NOTIFY).
 * A real throwaway PostgreSQL cluster; the chain is the demo's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { connectPostgres } from '../indexer/mirror/connect.js';
import { prepareMirror } from '../indexer/mirror/sync.js';
import { changesBetween } from '../indexer/read/changes.js';
import { exportAt } from '../indexer/read/queries.js';
import { decodeCoin } from '../indexer/store/codec.js';
import { K, P } from '../indexer/store/layout.js';
import { openIndexStore, type DB } from '../indexer/store/store.js';
import { reorgBranch } from './helpers/chains.js';
import { CLI, noderegAsync, noderegIn } from './helpers/cli.js';
import { startPostgres, type PgCluster } from './helpers/postgres.js';

let cluster: PgCluster;
let dir: string;
let url: string;

const chain = demo();
const best = chain.bestChain();
// Built before the suite (it forks `chain`): a 12-block branch from 10 below the demo's tip.
const branch = reorgBranch(chain);

interface Server {
  child: ChildProcess;
  base: string;
  stderr: () => string;
}

/** Starts `nodereg serve` with `args` on a free port; resolves once it listens. */
function serve(args: string[]): Promise<Server> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', ...args, '--listen', '127.0.0.1:0', '--log-json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /"msg":"serving the read API".*?"address":"http:\/\/([^"]+)"/.exec(err);
      if (m) resolve({ child, base: m[1]!, stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
  });
}

async function stop(s: Server | undefined): Promise<void> {
  if (!s || s.child.exitCode !== null) return;
  const exited = new Promise((r) => s.child.once('exit', r));
  s.child.kill('SIGTERM');
  await exited;
}

async function indexOf(name: string, blocks: readonly Uint8Array[]): Promise<string> {
  const blocksDir = join(dir, `${name}-blocks`);
  writeBlocksDir(blocksDir, blocks, { magic: chain.params.magic });
  const db = join(dir, name);
  const r = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', blocksDir, '--db', db]);
  if (r.status !== 0) throw new Error(`recount failed: ${r.stderr}`);
  return db;
}

async function mirror(db: string): Promise<void> {
  const r = await noderegIn(['mirror', '--db', db, '--postgres', url, '--json']);
  if (r.status !== 0) throw new Error(`mirror failed: ${r.stderr}`);
}

interface Answer { status: number; type: string | null; etag: string | null; body: string }

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`http://${base}${path}`, { headers: { 'accept-encoding': 'identity', ...headers } });
  return { status: res.status, type: res.headers.get('content-type'), etag: res.headers.get('etag'), body: await res.text() };
}

/** One SSE stream's frames, parsed, as they arrive. */
function stream(base: string): { frames: Array<{ event: string; data: Record<string, unknown> }>; close: () => void } {
  const frames: Array<{ event: string; data: Record<string, unknown> }> = [];
  const ac = new AbortController();
  void (async () => {
    const res = await fetch(`http://${base}/v1/events`, { signal: ac.signal });
    const reader = res.body!.getReader();
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      text += Buffer.from(value).toString();
      let cut: number;
      while ((cut = text.indexOf('\n\n')) >= 0) {
        const block = text.slice(0, cut);
        text = text.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event && data) frames.push({ event, data: JSON.parse(data) as Record<string, unknown> });
      }
    }
  })().catch(() => undefined);
  return { frames, close: () => ac.abort() };
}

/** The script (hex) of every unspent output of the index. */
async function coinScripts(db: DB): Promise<string[]> {
  const out: string[] = [];
  for await (const v of db.values(K.all(P.coin))) out.push(decodeCoin(v).script.toString('hex'));
  return out;
}

function mostCommon(xs: string[]): string {
  const n = new Map<string, number>();
  for (const x of xs) n.set(x, (n.get(x) ?? 0) + 1);
  return [...n].sort((a, b) => b[1] - a[1])[0]![0];
}

let main: string;
let pgServer: Server | undefined;
let dbServer: Server | undefined;

/**
 * Follows a listing's `nextCursor` to its end on both servers, each page
 * asked of both and required identical and 200; returns the page count.
 */
async function followCursors(route: string, query: string): Promise<number> {
  let cursor: string | null = null;
  let pages = 0;
  do {
    const path: string = `${route}?${query}${cursor ? `&cursor=${cursor}` : ''}`;
    const want: Answer = await get(dbServer!.base, path);
    const got: Answer = await get(pgServer!.base, path);
    expect({ path, ...got }).toEqual({ path, ...want });
    expect(want.status).toBe(200);
    cursor = (JSON.parse(want.body) as { nextCursor: string | null }).nextCursor;
    pages++;
  } while (cursor !== null && pages < 1000);
  expect([query, cursor]).toEqual([query, null]);
  return pages;
}
/** Every registry event as the index holds it, `height kind script`, sorted. */
let expectedEvents: string[];
let sample: {
  stake: string; lapsed: string; never: string; txAccepted: string; txRejected: string; tip: number;
  /** A stake some rejected attempt named, the most common reason, and how many rejections there are. */
  rejectedStake: string; reason: string; rejections: number;
  /** The script (hex) with the most unspent outputs. */
  funded: string;
};

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-pgserve-'));
  cluster = await startPostgres();
  url = cluster.url();
  main = await indexOf('main', best.map((b) => b.raw));
  const { db, params } = await openIndexStore(main, null, { create: false });
  try {
    const e = await exportAt(db, params);
    const changes = await changesBetween(db, -1, e.height);
    expectedEvents = changes.flatMap((c) => c.events.map((x) => `${x.event.height} ${x.event.kind} ${x.script.toString('hex')}`)).sort();
    const active = e.nodes.find((n) => n.status === 'active' && n.renewals > 0) ?? e.nodes.find((n) => n.status === 'active')!;
    const ended = e.nodes.find((n) => n.status !== 'active')!;
    sample = {
      stake: active.address ?? active.stakeScript, lapsed: ended.address ?? ended.stakeScript,
      // A P2TR stake script no announcement ever used.
      never: '5120' + '11'.repeat(32),
      txAccepted: active.tipTxid, txRejected: e.rejected[0]!.txid, tip: e.height,
      rejectedStake: '', reason: mostCommon(e.rejected.map((r) => r.reason)), rejections: e.rejected.length,
      funded: mostCommon(await coinScripts(db)),
    };
    const named = changes.flatMap((c) => c.rejections).find((r) => r.stakeScript !== null);
    if (!named) throw new Error('the demo chain has no rejection that names a stake');
    sample.rejectedStake = named.stakeScript!;
  } finally {
    await db.close();
  }
  // An empty mirror (what a writer makes before its first block), for the server to start on.
  const c = await connectPostgres(url);
  await prepareMirror(c, params);
  await c.end();
}, 120_000);

afterAll(async () => {
  await stop(pgServer);
  await stop(dbServer);
  cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('nodereg serve --postgres', () => {
  it('follows the blocks the mirror gains in /v1/events, through LISTEN/NOTIFY', async () => {
    pgServer = await serve(['--postgres', url]);
    const s = stream(pgServer.base);
    // The stream is attached once its first (retry) chunk went out; a bound only against a server that never answers.
    for (let i = 0; i < 500 && (await get(pgServer.base, '/metrics')).body.match(/^nodereg_event_streams 1$/m) === null; i++) await sleep(10);
    await mirror(main);
    const want = sample.tip + 1;
    for (let i = 0; i < 3000 && s.frames.filter((f) => f.event === 'block').length < want; i++) await sleep(10);
    s.close();
    const blocks = s.frames.filter((f) => f.event === 'block').map((f) => f.data.height);
    expect(blocks).toEqual(Array.from({ length: want }, (_, i) => i));
    const got = s.frames.filter((f) => ['registered', 'renewed', 'expired', 'lapsed'].includes(f.event))
      .map((f) => `${String(f.data.height)} ${f.event} ${String(f.data.stakeScript)}`).sort();
    expect(got).toEqual(expectedEvents);
    expect(expectedEvents.length).toBeGreaterThan(0);
  }, 60_000);

  it('answers every route of the API as serve --db does, byte for byte', async () => {
    dbServer = await serve(['--db', main]);
    const spec = JSON.parse((await get(dbServer.base, '/v1/openapi.json')).body) as { paths: Record<string, unknown> };
    expect(await get(pgServer!.base, '/v1/openapi.json')).toEqual(await get(dbServer.base, '/v1/openapi.json'));
    const t = sample.tip;
    const mid = t - 60;
    // Requests for each route of the OpenAPI document; the check below fails for a route left out.
    const cases: Record<string, string[]> = {
      '/v1/status': ['/v1/status', '/v1/status?x=1'],
      '/v1/nodes': [
        '/v1/nodes', '/v1/nodes?status=expired', '/v1/nodes?status=lapsed', `/v1/nodes?status=all&at=${mid}`, '/v1/nodes?expiringWithin=50',
        '/v1/nodes?limit=1', `/v1/nodes?at=${mid}`, `/v1/nodes?at=${mid}&limit=1&cursor=${Buffer.from(`${mid - 30}:0`).toString('base64url')}`,
        '/v1/nodes?status=bogus', '/v1/nodes?limit=0', '/v1/nodes?limit=abc', `/v1/nodes?at=${t + 1}`, '/v1/nodes?cursor=bm9wZQ', '/v1/nodes?at=-1',
      ],
      '/v1/nodes/{stake}': [`/v1/nodes/${sample.stake}`, `/v1/nodes/${sample.lapsed}`, `/v1/nodes/${sample.never}`, '/v1/nodes/not-an-address', '/v1/nodes/00'],
      '/v1/nodes/{stake}/history': [`/v1/nodes/${sample.stake}/history`, `/v1/nodes/${sample.lapsed}/history`, `/v1/nodes/${sample.never}/history`, '/v1/nodes/zz/history'],
      '/v1/tx/{txid}': [`/v1/tx/${sample.txAccepted}`, `/v1/tx/${sample.txRejected}`, `/v1/tx/${sample.txRejected.toUpperCase()}`, `/v1/tx/${'0'.repeat(64)}`, '/v1/tx/abc'],
      '/v1/root': ['/v1/root', `/v1/root?height=${mid}`, '/v1/root?height=0', `/v1/root?height=${t + 1}`, '/v1/root?height=x'],
      '/v1/proof/{stake}': [`/v1/proof/${sample.stake}`, `/v1/proof/${sample.lapsed}?height=${mid}`, `/v1/proof/${sample.never}`, `/v1/proof/${sample.stake}?height=${t + 5}`, '/v1/proof/bad'],
      '/v1/diff': [`/v1/diff?from=${mid}&to=${t}`, `/v1/diff?from=0&to=${mid}`, `/v1/diff?from=${t}&to=${mid}`, '/v1/diff?from=1', `/v1/diff?from=0&to=${t + 1}`],
      '/v1/export': ['/v1/export', `/v1/export?height=${mid}`, '/v1/export?height=0', `/v1/export?height=${t + 1}`, '/v1/export?at=3'],
      '/v1/payouts': [
        `/v1/payouts?from=${mid}&to=${t}`, `/v1/payouts?from=${mid}&to=${t}&minAge=20`, `/v1/payouts?from=0&to=${t}&amount=100000000`,
        `/v1/payouts?from=${mid}&to=${t}&amount=5000000&weight=age&minPayout=1000`, `/v1/payouts?from=${t}&to=${mid}&amount=1`,
        `/v1/payouts?from=0&to=${t}&amount=0`, `/v1/payouts?from=0&to=${t}&weight=age`, `/v1/payouts?from=0&to=${t}&amount=1&minAge=3`, '/v1/payouts?from=0',
      ],
      '/v1/history/active': ['/v1/history/active', `/v1/history/active?from=${mid}&to=${t}&points=7`, `/v1/history/active?from=${t}&to=${mid}`, '/v1/history/active?points=-1'],
      '/v1/events': ['/v1/events?lastEventId=x', '/v1/events?foo=1'],
      '/v1/scripts/{stake}/utxos': [
        `/v1/scripts/${sample.stake}/utxos`, `/v1/scripts/${sample.lapsed}/utxos`, `/v1/scripts/${sample.never}/utxos`, `/v1/scripts/${sample.funded}/utxos`,
        `/v1/scripts/${sample.stake}/utxos?x=1`, '/v1/scripts/zz/utxos',
      ],
      '/v1/search': [
        '/v1/search?q=a', '/v1/search?q=5120', '/v1/search?q=BCRT1', '/v1/search?q=bcrt1&limit=2', `/v1/search?q=${sample.stake.slice(-12).toUpperCase()}`, '/v1/search?q=0&limit=2', `/v1/search?q=${sample.never}`,
        '/v1/search?q=%20%20', '/v1/search', '/v1/search?q=a&limit=0', `/v1/search?q=${'a'.repeat(121)}`,
      ],
      '/v1/nodes/{stake}/balances': [
        `/v1/nodes/${sample.stake}/balances`, `/v1/nodes/${sample.stake}/balances?limit=2`, `/v1/nodes/${sample.lapsed}/balances`,
        `/v1/nodes/${sample.never}/balances`, `/v1/nodes/${sample.stake}/balances?limit=0`, '/v1/nodes/zz/balances',
      ],
      '/v1/nodes/{stake}/rejected': [
        `/v1/nodes/${sample.rejectedStake}/rejected`, `/v1/nodes/${sample.stake}/rejected`, `/v1/nodes/${sample.never}/rejected`,
        `/v1/nodes/${sample.stake}/rejected?x=1`, '/v1/nodes/zz/rejected',
      ],
      '/v1/rejected': [
        '/v1/rejected', '/v1/rejected?limit=1', `/v1/rejected?reason=${sample.reason}`, `/v1/rejected?reason=${sample.reason}&limit=1`,
        '/v1/rejected?reason=NOPE', '/v1/rejected?cursor=bm9wZQ', `/v1/rejected?cursor=${Buffer.from('4294967295:4294967295:4294967295').toString('base64url')}`,
        `/v1/rejected?cursor=${Buffer.from('4294967296:0:0').toString('base64url')}`, '/v1/rejected?limit=1001',
      ],
    };
    expect(Object.keys(spec.paths).filter((p) => !(p in cases))).toEqual([]);
    const extra = ['/health/live', '/health/ready', '/', '/dashboard.js', '/nope', '/v1/nodes/x/y/z'];
    let compared = 0;
    const differing: unknown[] = [];
    for (const path of [...Object.values(cases).flat(), ...extra]) {
      const [want, got] = [await get(dbServer.base, path), await get(pgServer!.base, path)];
      if (JSON.stringify(want) !== JSON.stringify(got)) differing.push({ path, want: { ...want, body: want.body.slice(0, 300) }, got: { ...got, body: got.body.slice(0, 300) } });
      compared++;
    }
    expect(differing).toEqual([]);
    // The cases reach both kinds of answer: successes and refusals.
    const statuses = new Set<number>();
    for (const path of Object.values(cases).flat()) statuses.add((await get(pgServer!.base, path)).status);
    expect([...statuses].sort()).toEqual([200, 400, 404]);
    expect(compared).toBeGreaterThan(60);

    // The explorer views' cases reach answers with rows in them.
    const body = async (path: string): Promise<Record<string, unknown[]>> => JSON.parse((await get(pgServer!.base, path)).body) as Record<string, unknown[]>;
    expect(await body('/v1/search?q=bcrt1&limit=2')).toMatchObject({ nodes: [expect.anything(), expect.anything()], more: true });
    expect((await body(`/v1/nodes/${sample.stake}/balances?limit=2`)).points!.length).toBe(2);
    expect((await body(`/v1/nodes/${sample.rejectedStake}/rejected`)).rejected!.length).toBeGreaterThan(0);
    expect((await body(`/v1/rejected?reason=${sample.reason}`)).rejected!.length).toBeGreaterThan(0);
    expect((await body(`/v1/scripts/${sample.funded}/utxos`)).utxos!.length).toBeGreaterThan(1);
    // An ETag from one server is current on the other.
    const tag = (await get(dbServer.base, '/v1/export')).etag!;
    expect((await get(pgServer!.base, '/v1/export', { 'if-none-match': tag })).status).toBe(304);
  }, 60_000);

  it('follows the rejected list\'s cursors to the end identically, of every reason and of one', async () => {
    for (const q of ['limit=1', 'limit=3', `reason=${sample.reason}&limit=1`]) {
      const pages = await followCursors('/v1/rejected', q);
      if (q === 'limit=1') expect(pages).toBe(sample.rejections);
    }
  });

  it('follows every page cursor to the end identically, at the tip and at a past height', async () => {
    for (const q of ['status=all&limit=1', `status=all&limit=2&at=${sample.tip - 60}`, 'status=expired&limit=1', 'limit=2', 'limit=1', `limit=1&at=${sample.tip - 60}`]) {
      const pages = await followCursors('/v1/nodes', q);
      if (q === 'status=all&limit=1') expect(pages).toBeGreaterThan(2);
      if (q === 'limit=1') expect(pages).toBeGreaterThan(1);
    }
  });

  it('answers 503 while PostgreSQL is down and serves again once it is back, without a restart', async () => {
    const before = await get(pgServer!.base, '/v1/status');
    cluster.halt();
    try {
      const down = await get(pgServer!.base, `/v1/nodes/${sample.stake}`);
      expect([down.status, JSON.parse(down.body)]).toEqual([503, { error: 'postgres_unavailable', message: expect.stringMatching(/^PostgreSQL does not answer .*; retry in a moment$/) }]);
    } finally {
      cluster.start();
    }
    expect(await get(pgServer!.base, '/v1/status')).toEqual(before);
    expect(await get(pgServer!.base, `/v1/nodes/${sample.stake}`)).toEqual(await get(dbServer!.base, `/v1/nodes/${sample.stake}`));
  });

  it('tells of the mirror\'s rewind as a reorg in /v1/events, then of the new branch\'s blocks', async () => {
    const reorged = await indexOf('reorged', [chain.genesis.raw, ...chain.blocks().map((b) => b.raw)]);
    const s = stream(pgServer!.base);
    for (let i = 0; i < 500 && (await get(pgServer!.base, '/metrics')).body.match(/^nodereg_event_streams 1$/m) === null; i++) await sleep(10);
    await mirror(reorged);
    const newTip = branch.bestChain().at(-1)!;
    for (let i = 0; i < 3000 && !s.frames.some((f) => f.event === 'block' && f.data.height === newTip.height); i++) await sleep(10);
    s.close();
    const t = sample.tip;
    expect(s.frames.filter((f) => f.event === 'reorg' || f.event === 'block')).toEqual([
      { event: 'reorg', data: { depth: 10, forkHeight: t - 10, oldTip: { height: t, hash: best[t]!.hash } } },
      ...branch.bestChain().slice(t - 9).map((b) => ({ event: 'block', data: { height: b.height, hash: b.hash, txCount: null } })),
    ]);
    expect(s.frames.filter((f) => f.event === 'registered').map((f) => f.data.height)).toEqual([t - 8]);
  }, 60_000);

  it('says in one line that PostgreSQL is not there, or holds no mirror', async () => {
    const nowhere = `postgresql://postgres@localhost/nodereg?host=${encodeURIComponent(join(dir, 'no-server'))}`;
    const down = await noderegAsync(['serve', '--postgres', nowhere, '--listen', '127.0.0.1:0']);
    expect([down.status, down.stderr]).toEqual([1, expect.stringMatching(/^nodereg: cannot reach PostgreSQL at .*ENOENT; start it, or fix --postgres .*\n$/)]);
    const empty = await noderegAsync(['serve', '--postgres', await cluster.createDatabase('empty'), '--listen', '127.0.0.1:0']);
    expect([empty.status, empty.stderr]).toEqual([1, expect.stringMatching(/^nodereg: this database holds no nodereg mirror; build one with `nodereg mirror/)]);
    const both = await noderegIn(['serve', '--postgres', url, '--db', main]);
    expect([both.status, both.stderr]).toEqual([2, expect.stringMatching(/give one of --db \(an index directory\) or --postgres/)]);
  });
});
