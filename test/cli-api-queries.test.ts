import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, nodereg, noderegAsync, noderegIn, ROOT } from './helpers/cli.js';

/*
 * The query commands against a running daemon (`nodereg serve`) with --api
 * print exactly what they print with --db on the same index.
 */

const BLOCKS = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');

let dir: string;
let served: string;
let copy: string;
let server: ChildProcess;
let api: string;

/** Starts `nodereg serve` on a free port and resolves to its URL, read from its log line. */
function serve(db: string): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'serve', '--db', db, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /serving the read API address=(http:\/\/\S+)/.exec(err);
      if (m) resolve({ child, url: m[1]! });
    });
    child.on('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-apiq-'));
  served = join(dir, 'db');
  copy = join(dir, 'copy');
  const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', served]);
  expect(res.status).toBe(0);
  cpSync(served, copy, { recursive: true });
  ({ child: server, url: api } = await serve(served));
}, 180_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const gone = new Promise((r) => server.once('exit', r));
    server.kill('SIGTERM');
    await gone;
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Exported { height: number; nodes: Array<{ address: string; tipTxid: string; status: string }> }

// The query commands run in-process (what they print is tested); the index held by the daemon and the recount that builds it spawn the binary.
describe('query commands with --api print what they print with --db', () => {
  it('for every query command, text and JSON, at the tip and at past heights', async () => {
    const exported = JSON.parse((await noderegIn(['export', '--db', copy])).stdout) as Exported;
    expect(exported.nodes.length).toBeGreaterThan(0);
    const first = exported.nodes[0]!;
    const ended = exported.nodes.find((n) => n.status !== 'active');
    expect(ended).toBeDefined();
    const cases: string[][] = [
      ['export'], ['export', '--height', '120'],
      ['nodes'], ['nodes', '--json'], ['nodes', '--status', 'all'], ['nodes', '--status', 'lapsed', '--json'], ['nodes', '--status', 'all', '--at', '150', '--json'],
      ['node', first.address], ['node', first.address, '--json'], ['node', ended!.address, '--json'],
      ['explain', first.tipTxid], ['explain', first.tipTxid, '--json'],
      ['root'], ['root', '--json'], ['root', '--height', '100', '--json'],
      ['nodes', '--expiring-within', '200', '--json'],
      ['payouts', '--from', '100', '--to', '450', '--amount', '123456789', '--weight', 'age', '--json'], ['payouts', '--from', '430', '--to', '450', '--amount', '99999', '--min-payout', '20000'],
    ];
    for (const args of cases) {
      const viaDb = await noderegIn([...args, '--db', copy]);
      const viaApi = await noderegIn([...args, '--api', api]);
      expect({ args, status: viaApi.status, stdout: viaApi.stdout, stderr: viaApi.stderr }).toEqual({ args, status: 0, stdout: viaDb.stdout, stderr: '' });
      expect(viaDb.status).toBe(0);
    }
  }, 300_000);

  it('fails the same way: an unknown txid or stake exits 1, a height above the tip and a missing utxo hash are one-line errors', async () => {
    for (const args of [
      ['explain', '00'.repeat(32)], ['explain', '00'.repeat(32), '--json'],
      ['node', 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080'],
      ['export', '--height', '99999'], ['utxo-hash'],
    ]) {
      const viaDb = await noderegIn([...args, '--db', copy]);
      const viaApi = await noderegIn([...args, '--api', api]);
      expect({ args, status: viaApi.status, stdout: viaApi.stdout }).toEqual({ args, status: 1, stdout: viaDb.stdout });
      expect(viaDb.status).toBe(1);
      expect(viaApi.stderr.split('\n').filter(Boolean)).toHaveLength(args.includes('--json') ? 0 : 1);
    }
    const above = await noderegIn(['export', '--height', '99999', '--api', api]);
    expect(above.stderr).toMatch(/^nodereg: the read API at http:\/\/127\.0\.0\.1:\d+ answered GET \/v1\/export\?height=99999 with HTTP 400: querystring\/height 99999 is above the index tip \d+\n$/);
    expect((await noderegIn(['utxo-hash', '--api', api])).stderr).toMatch(/built without --utxo-hash/);
  }, 120_000);

  it('the index held by the daemon is refused with --db, and the error suggests --api', async () => {
    const res = await noderegAsync(['nodes', '--db', served]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^nodereg: the index at \S+ is in use by another process \(its LOCK is held\); stop that process, or ask it instead: replace --db with --api http:\/\/<its --serve\/--listen address>\n$/);
  });

  it('needs exactly one of --db and --api, and an API that answers', async () => {
    const neither = await noderegIn(['nodes']);
    expect(neither.status).toBe(2);
    expect(neither.stderr).toMatch(/give --db <dir>, or --api <url> of a running daemon/);
    expect((await noderegIn(['nodes', '--db', copy, '--api', api])).stderr).toMatch(/mutually exclusive/);
    const closed = await noderegIn(['root', '--api', 'http://127.0.0.1:1']);
    expect(closed.status).toBe(1);
    expect(closed.stderr).toMatch(/^nodereg: cannot reach the read API at http:\/\/127\.0\.0\.1:1 \(.*\): is "nodereg index --serve" running/);
    expect((await noderegIn(['root', '--api', 'ftp://x'])).status).toBe(2);
  });
});
