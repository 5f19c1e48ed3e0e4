import { readFileSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { readiness, READY_LAG } from '../indexer/http/health.js';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import { recount } from '../indexer/engine/recount.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';
import { checkExposition, expositionProblems } from './helpers/exposition.js';

const regtest = BUILTIN_NETWORKS.regtest!;
const DEMO_BLOCKS = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const expectedText = readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8');

type Index = Awaited<ReturnType<typeof tempIndex>>;
let demoIdx: Index;
let emptyIdx: Index;
let demo: ApiServer;
let empty: ApiServer;
let demoBase: URL;
let emptyBase: URL;
const accessLines: string[] = [];

beforeAll(async () => {
  [demoIdx, emptyIdx] = await Promise.all([tempIndex(regtest), tempIndex(regtest)]);
  await recount({ blocksDir: DEMO_BLOCKS, params: regtest, db: demoIdx.db });
  const sink = new Writable({ write(chunk: Buffer, _enc, done) { accessLines.push(...chunk.toString('utf8').split('\n').filter(Boolean)); done(); } });
  demo = await buildServer({ db: demoIdx.db, params: regtest, accessLog: sink, firstEventId: 1 });
  empty = await buildServer({ db: emptyIdx.db, params: regtest });
  demoBase = new URL(await demo.listen('127.0.0.1', 0));
  emptyBase = new URL(await empty.listen('127.0.0.1', 0));
}, 60_000);

afterAll(async () => {
  await demo.close();
  await empty.close();
  await demoIdx.close();
  await emptyIdx.close();
});

interface Answer { status: number; headers: IncomingHttpHeaders; body: Buffer }

function send(base: URL, path: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: base.hostname, port: base.port, path, method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/metrics', () => {
  it('passes promtool (or the exposition rules it applies) and carries the process metrics', async () => {
    await send(demoBase, '/v1/status');
    const res = await send(demoBase, '/metrics');
    const text = res.body.toString('utf8');
    const check = checkExposition(text);
    console.log(`/metrics checked by ${check.checker === 'promtool' ? 'promtool check metrics' : 'the built-in exposition check (promtool is not installed)'}`);
    expect(check.problems).toEqual([]);
    expect(expositionProblems(text)).toEqual([]);
    for (const family of ['process_cpu_seconds_total counter', 'process_resident_memory_bytes gauge', 'process_start_time_seconds gauge', 'nodejs_heap_size_used_bytes gauge', 'nodereg_tip_height gauge']) {
      expect(text).toContain(`# TYPE ${family}\n`);
    }
    expect(text).not.toMatch(/^# TYPE \S+_total (?!counter)/m);
    expect(text).toMatch(/^process_resident_memory_bytes [1-9]\d*$/m);
    // A static index follows no node: no node tip, lag or block age.
    expect(text).not.toMatch(/nodereg_node_tip_height|nodereg_sync_lag_blocks|nodereg_seconds_since_last_block/);
  });

  it('the exposition check rejects what promtool rejects (misnamed counters and gauges, bad values), and more of the format\'s rules', () => {
    const promtoolRejects: Array<[string, RegExp]> = [
      ['# HELP a_total x\n# TYPE a_total gauge\na_total 1\n', /a_total non-counter metrics should not have "_total" suffix/],
      ['# HELP b x\n# TYPE b counter\nb 1\n', /b counter metrics should have "_total" suffix/],
      ['# HELP d x\n# TYPE d gauge\nd one\n', /d invalid value one/],
    ];
    for (const [text, problem] of promtoolRejects) {
      expect(expositionProblems(text).join('\n')).toMatch(problem);
      // Whichever checker the machine has must refuse it too.
      expect(checkExposition(text).problems.length).toBeGreaterThan(0);
    }
    // promtool 2.42 lets these pass; the format forbids them, and so does the built-in check.
    const formatForbids: Array<[string, RegExp]> = [
      ['# HELP c x\nc 1\n', /c sample without a TYPE line/],
      ['# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 3\n', /not cumulative/],
      ['# HELP h x\n# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /without a \+Inf bucket/],
      ['# HELP e x\n# TYPE e gauge\ne{a="1"} 1\ne{a="1"} 2\n', /duplicate series/],
    ];
    for (const [text, problem] of formatForbids) expect(expositionProblems(text).join('\n')).toMatch(problem);
    expect(expositionProblems('# HELP ok_total x\n# TYPE ok_total counter\nok_total 1\n')).toEqual([]);
  });
});

describe('health probes', () => {
  it('live is 200 while the process is up; ready is 200 for a static index with a tip and 503 for an empty one', async () => {
    const live = await send(emptyBase, '/health/live');
    expect([live.status, JSON.parse(live.body.toString())]).toEqual([200, { live: true }]);
    const ready = await send(demoBase, '/health/ready');
    expect([ready.status, JSON.parse(ready.body.toString())]).toEqual([200, { ready: true, sync: 'not-following', tip: 450, nodeTip: null, lag: null, reason: 'serving a static index' }]);
    const notReady = await send(emptyBase, '/health/ready');
    expect([notReady.status, JSON.parse(notReady.body.toString())]).toEqual([503, { ready: false, sync: 'not-following', tip: null, nodeTip: null, lag: null, reason: 'the index is empty' }]);
    expect((await send(demoBase, '/health/ready', { method: 'HEAD' })).status).toBe(200);
  });

  it(`ready is 200 within ${READY_LAG} blocks of the node, 503 beyond with the lag, and 503 while the node does not answer`, () => {
    expect(readiness('synced', 450, 450)).toMatchObject({ ready: true, lag: 0 });
    expect(readiness('catching-up', 448, 450)).toMatchObject({ ready: true, lag: 2 });
    expect(readiness('catching-up', 447, 450)).toEqual({ ready: false, sync: 'catching-up', tip: 447, nodeTip: 450, lag: 3, reason: '3 blocks behind the node (ready within 2)' });
    expect(readiness('catching-up', 0, null)).toMatchObject({ ready: false, lag: null, reason: 'the node has not answered yet' });
    expect(readiness('node-unreachable', 450, 450)).toMatchObject({ ready: false, reason: 'the node does not answer' });
    expect(readiness('catching-up', null, 450)).toMatchObject({ ready: false, reason: 'the index is empty' });
  });
});

describe('access log', () => {
  it('writes one JSON line per answered request through fastify\'s logger, and nothing without --access-log', async () => {
    const before = accessLines.length;
    await send(demoBase, '/v1/root?height=300');
    await send(demoBase, '/v1/nodes?bogus=1');
    const lines = accessLines.slice(before).map((l) => JSON.parse(l) as { msg: string; req: { method: string; url: string }; res: { statusCode: number }; responseTime: number });
    expect(lines.map((l) => [l.msg, l.req.method, l.req.url, l.res.statusCode])).toEqual([
      ['request completed', 'GET', '/v1/root?height=300', 200],
      ['request completed', 'GET', '/v1/nodes?bogus=1', 400],
    ]);
    expect(typeof lines[0]!.responseTime).toBe('number');

    // A server without it logs nothing per request (its logger is off; stderr stays quiet).
    const written: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string | Uint8Array) => { written.push(String(chunk)); return true; }) as typeof process.stderr.write;
    try {
      expect((await send(emptyBase, '/health/live')).status).toBe(200);
    } finally {
      process.stderr.write = write;
    }
    expect(written.join('')).not.toMatch(/request completed|"reqId"/);
  });
});

describe('/v1/export caching and compression', () => {
  it('tags the export with an ETag, answers a matching If-None-Match with an empty 304, and gzips on request', async () => {
    const plain = await send(demoBase, '/v1/export');
    expect(plain.status).toBe(200);
    expect(plain.body.toString('utf8')).toBe(JSON.stringify(JSON.parse(expectedText)));
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toMatch(/accept-encoding/i);
    const etag = plain.headers.etag!;
    expect(etag).toMatch(/^W\/"[0-9a-f]{16}-450-[0-9a-f]{64}"$/);
    expect(etag).toContain(JSON.parse(expectedText).tip);

    const cached = await send(demoBase, '/v1/export', { headers: { 'if-none-match': etag } });
    expect([cached.status, cached.body.length, cached.headers.etag]).toEqual([304, 0, etag]);
    expect((await send(demoBase, '/v1/export', { headers: { 'if-none-match': `"other", ${etag.slice(2)}` } })).status).toBe(304);
    expect((await send(demoBase, '/v1/export', { headers: { 'if-none-match': '"other"' } })).status).toBe(200);

    const old = await send(demoBase, '/v1/export?height=300');
    expect(old.headers.etag).toMatch(/^W\/"[0-9a-f]{16}-300-/);
    expect(old.headers.etag).not.toBe(etag);
    expect((await send(demoBase, '/v1/export?height=300', { headers: { 'if-none-match': etag } })).status).toBe(200);

    const zipped = await send(demoBase, '/v1/export', { headers: { 'accept-encoding': 'br;q=1, gzip;q=0.5' } });
    expect([zipped.status, zipped.headers['content-encoding'], zipped.headers.etag]).toEqual([200, 'gzip', etag]);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
    expect(zipped.body.length).toBeLessThan(plain.body.length / 2);
    expect((await send(demoBase, '/v1/export', { headers: { 'accept-encoding': 'gzip;q=0' } })).headers['content-encoding']).toBeUndefined();
  });
});

describe('/v1/events edge cases', () => {
  it('HEAD answers the stream\'s headers and closes instead of streaming', async () => {
    demo.events.publish('block', { height: 1, hash: '00'.repeat(32), txCount: 1 });
    const head = await send(demoBase, '/v1/events', { method: 'HEAD' });
    expect([head.status, head.headers['content-type'], head.headers['cache-control'], head.body.length]).toEqual([200, 'text/event-stream', 'no-cache', 0]);
    expect(demo.events.clientCount).toBe(0);
  });

  it('a Last-Event-ID that is not an event id gets a reset, as docs/api.md promises', async () => {
    for (const bad of ['abc', '-1', '1.5', '12345678901234567', '0x10']) {
      const text = await new Promise<string>((resolve, reject) => {
        const sock = connect(Number(demoBase.port), demoBase.hostname, () => sock.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nLast-Event-ID: ${bad}\r\n\r\n`));
        let got = '';
        sock.on('data', (d) => {
          got += d.toString();
          if (got.includes('event: reset')) {
            sock.destroy();
            resolve(got);
          }
        });
        sock.on('error', reject);
        sock.on('close', () => resolve(got));
      });
      expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
      expect(text).toContain(`event: reset\ndata: {"reason":"Last-Event-ID \\"${bad}\\" is not an event id; reload /v1/export"}\n\n`);
    }
  });
});
