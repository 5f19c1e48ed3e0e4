import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { demoBlocks, submitAll } from './helpers/chains.js';
import { ROOT } from './helpers/cli.js';
import { openIndexer, type RegistryChange, type Rejection } from '../indexer/index.js';
import type { ExportJson } from '../indexer/read/queries.js';
import { REASON_CODES } from '../script/reasons.js';

/** The n-th ```js block of docs/embedding.md, exactly as a reader would copy it. */
function docExample(n = 0): string {
  const md = readFileSync(join(ROOT, 'docs', 'embedding.md'), 'utf8');
  const m = [...md.matchAll(/```js\n([\s\S]*?)```/g)][n];
  if (!m) throw new Error(`docs/embedding.md has no js example number ${n + 1}`);
  return m[1]!;
}

const expectedExport = (): ExportJson => JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as ExportJson;
const HEX64 = /^[0-9a-f]{64}$/;

let node: BcoinNode;
let dir: string;
beforeAll(async () => {
  node = await startBcoin();
  dir = mkdtempSync(join(tmpdir(), 'nodereg-embed-'));
  await submitAll(node, (await demoBlocks()).slice(1));
});
afterAll(async () => {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('runs the example of docs/embedding.md against a real node and prints the registry it followed', async () => {
  // Inside the repository, so that `import … from 'nodereg'` resolves to this package by name.
  const file = join(ROOT, `.embed-example-${process.pid}.mjs`);
  writeFileSync(file, docExample());
  try {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [file], {
        env: { ...process.env, NODEREG_DB: join(dir, 'db'), NODE_RPC_URL: node.url, NODE_RPC_PASSWORD: node.apiKey, NODE_RPC_USER: 'x' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const expected = expectedExport();
    const lines = out.stdout.trim().split('\n');
    const registered = lines.filter((l) => l.startsWith('registered '));
    expect(registered.length).toBe(5);
    // Addresses and RPC-order txids, as the export shows them.
    for (const n of expected.nodes) expect(registered).toContain(`registered ${n.address} at height ${n.firstHeight} in ${n.firstTxid}`);
    expect(lines.filter((l) => l.startsWith('expired ')).length).toBe(1);
    expect(lines.filter((l) => l.startsWith('lapsed ')).length).toBe(1);
    expect(lines.filter((l) => l.startsWith('rejected ')).length).toBe(20);
    const active = expected.nodes.filter((n) => n.status === 'active').length;
    expect(out.stdout).toContain(`${active} active nodes at height 450, root ${expected.root}`);
  } finally {
    rmSync(file, { force: true });
  }
});

it('emits plain JSON events: RPC-order hex txids, the address, the registration as the export shows it, reason codes', async () => {
  const ix = await openIndexer({ db: join(dir, 'events-db'), network: 'regtest', rpc: { url: node.url, user: 'x', password: node.apiKey } });
  const changes: Array<[string, RegistryChange]> = [];
  const rejections: Rejection[] = [];
  for (const kind of ['registered', 'renewed', 'expired', 'lapsed'] as const) ix.on(kind, (c) => changes.push([kind, c]));
  ix.on('rejected', (r) => rejections.push(r));
  try {
    await ix.start({ untilSynced: true });
  } finally {
    await ix.stop();
  }
  const want = expectedExport();
  const isPlain = (v: unknown): boolean => !Buffer.isBuffer(v) && !(v instanceof Uint8Array) && (typeof v !== 'object' || v === null || Object.values(v).every(isPlain));
  for (const [kind, c] of changes) {
    expect(isPlain(c)).toBe(true);
    expect(JSON.parse(JSON.stringify(c))).toEqual(c);
    expect([c.blockHash, c.registration.firstTxid, c.registration.tipTxid].every((h) => HEX64.test(h))).toBe(true);
    expect(c.address).toBe(c.registration.address);
    expect(c.stakeScript).toBe(c.registration.stakeScript);
    if (kind === 'registered') expect(c.txid).toBe(c.registration.firstTxid);
    if (kind === 'renewed') expect(c.txid).toBe(c.registration.tipTxid);
    if (kind === 'expired' || kind === 'lapsed') expect(c.txid).toBeNull();
  }
  // The last event of each stake shows its registration as the export does, less the balance.
  const last = new Map(changes.map(([, c]) => [c.stakeScript, c.registration]));
  expect([...last.values()].sort((a, b) => a.firstHeight - b.firstHeight)).toEqual(want.nodes.map(({ balance: _b, ...n }) => n));
  expect(rejections.map((r) => ({ txid: r.txid, height: r.height, vout: r.vout, reason: r.reason }))).toEqual(want.rejected);
  expect(rejections.every((r) => REASON_CODES.includes(r.reason))).toBe(true);
}, 120_000);

it('runs the explorer example of docs/embedding.md: the read API mounted under /registry of the explorer\'s own fastify app', async () => {
  const file = join(ROOT, `.embed-explorer-${process.pid}.mjs`);
  writeFileSync(file, docExample(1));
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, NODEREG_DB: join(dir, 'explorer-db'), NODE_RPC_URL: node.url, NODE_RPC_PASSWORD: node.apiKey, NODE_RPC_USER: 'x', PORT: '0' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    let m: RegExpExecArray | null = null;
    for (let i = 0; i < 600 && !(m = /explorer on (http:\/\/127\.0\.0\.1:\d+), the registry at/.exec(stdout)); i++) {
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!m) throw new Error(`the explorer did not start:\n${stdout}\n${stderr}`);
    const base = m[1]!;
    const get = async (path: string, init?: RequestInit): Promise<{ status: number; body: unknown; headers: Headers }> => {
      const res = await fetch(base + path, init);
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
    };
    let status = await get('/registry/v1/status');
    for (let i = 0; i < 600 && (status.body as { sync: string }).sync !== 'synced'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await get('/registry/v1/status');
    }
    const want = expectedExport();
    expect(status.body).toMatchObject({ sync: 'synced', tip: { height: 450, hash: want.tip }, nodeTip: { height: 450, hash: want.tip } });
    expect((await get('/registry/v1/export')).body).toEqual(want);
    expect(await get('/registry/health/ready')).toMatchObject({ status: 200, body: { ready: true, lag: 0 } });
    expect((await get('/')).body).toEqual({ explorer: 'my explorer', registry: '/registry/v1/status' });
    const doc = (await get('/registry/v1/openapi.json')).body as { paths: Record<string, unknown> };
    expect(Object.keys(doc.paths)).toContain('/registry/v1/nodes/{stake}');
    expect(Object.keys(doc.paths).every((p) => p.startsWith('/registry/'))).toBe(true);
    // The API's rules hold under the prefix, and stay off the explorer's own routes.
    const post = await get('/registry/v1/status', { method: 'POST' });
    expect([post.status, post.headers.get('allow'), post.body]).toEqual([405, 'GET, HEAD', { error: 'method_not_allowed', message: 'the API is read-only: only GET is served' }]);
    expect(await get('/registry/v1/nope')).toMatchObject({ status: 404, body: { error: 'not_found', message: 'no route GET /registry/v1/nope; see /registry/v1/openapi.json' } });
    expect(await get('/registry/v1/nodes?stauts=all')).toMatchObject({ status: 400, body: { error: 'bad_request', message: expect.stringMatching(/^querystring\/stauts is not a parameter/) } });
    expect((await get('/?anything=1')).status).toBe(200);
    expect((await get('/nope')).body).toMatchObject({ statusCode: 404, error: 'Not Found' });
    expect((await get('/registry/')).status).toBe(404);
  } finally {
    child.kill('SIGTERM');
    const code = await exited;
    rmSync(file, { force: true });
    expect(stderr).toBe('');
    expect(code === 0 || code === null).toBe(true);
  }
}, 120_000);
