import { createHmac, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { freePort, startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { demoBlocks, submitAll } from './helpers/chains.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';
import { Daemon, rpcArgs, type LogLine } from './helpers/daemon.js';
import { Receiver, type Received } from './helpers/receiver.js';

/*
 * `nodereg index --webhook` against a real bcoin node and a real HTTP
 * receiver: every registry event of the demo chain arrives once, signed; a
 * reorg (invalidateblock) takes events back; a receiver that is down across
 * a crash and a restart still gets every event, none twice.
 */

interface ExportNode { stakeScript: string; expiryHeight: number; endedHeight: number | null; status: string }
const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { height: number; nodes: ExportNode[] };
/** regtest's default window: a tenth of its 144 expiry blocks. */
const WINDOW = 15;
const FORK = 439;

let dir: string;
let node: BcoinNode;
let secretFile: string;
const secret = randomBytes(32).toString('hex');
/** The forward events of test 1 up to the fork, without ids: what any other index of this chain must send. */
let reference: Array<{ type: string; data: unknown }> = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-webhooks-'));
  secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  node = await startBcoin();
  await submitAll(node, (await demoBlocks()).slice(1));
});
afterAll(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const daemonArgs = (db: string, url: string, extra: string[] = []): string[] =>
  [...rpcArgs(node), '--db', db, '--poll-interval', '100', '--webhook', url, '--webhook-secret-file', secretFile, '--webhook-backoff-ms', '20', ...extra];

const REGISTRY = new Set(['registered', 'renewed', 'expired', 'lapsed']);
/** What the daemon logged as it relayed the engine's own events: an oracle that does not read the stored rows. */
function loggedEvents(lines: LogLine[]): string[] {
  return lines.flatMap((l) => {
    if (REGISTRY.has(l.msg)) return [`${l.msg} ${String(l.height)} ${String(l.stakeScript)} ${String(l.txid)}`];
    if (l.msg === 'rejected announcement') return [`rejected ${String(l.height)} ${String(l.txid)}:${String(l.vout)} ${String(l.reason)}`];
    return [];
  });
}
function sentEvents(got: Received[]): string[] {
  return got.filter((r) => REGISTRY.has(r.body.type) || r.body.type === 'rejected').map(({ body: { type, data: d } }) => (type === 'rejected'
    ? `rejected ${String(d.height)} ${String(d.txid)}:${String(d.vout)} ${String(d.reason)}`
    : `${type} ${String(d.height)} ${String(d.stakeScript)} ${String(d.txid)}`));
}
const sorted = (xs: string[]): string[] => [...xs].sort();
const strip = (r: Received): { type: string; data: unknown } => ({ type: r.body.type, data: r.body.data });

function expectOnceInOrder(got: Received[]): void {
  const ids = got.map((r) => r.body.id);
  expect(new Set(ids).size).toBe(ids.length);
  expect(got.map((r) => r.body.seq)).toEqual(got.map((_, i) => i + 1));
}

describe('webhooks from nodereg index', () => {
  it('sends each event of the demo chain once, signed, after a receiver\'s first failures; a reorg sends reorg and the reversals', async () => {
    const rx = new Receiver(await freePort());
    rx.failFirst = 3;
    await rx.open();
    const api = await freePort();
    const d = new Daemon(daemonArgs(join(dir, 'db1'), rx.url, ['--serve', `127.0.0.1:${api}`]));
    try {
      await d.waitFor('synced with node', { height: expected.height }, 120_000);
      const logged = loggedEvents(d.lines);
      // The one registration live when its expiry came within the window: the demo's expired node, at 246 − 15.
      const expiring = expected.nodes.filter((n) => n.expiryHeight - WINDOW <= expected.height && (n.endedHeight ?? Infinity) > n.expiryHeight - WINDOW);
      expect(expiring).toHaveLength(1);
      await rx.until((r) => r.accepted.length >= logged.length + expiring.length, 'every event');

      const ok = rx.accepted;
      expect(ok).toHaveLength(logged.length + expiring.length);
      expectOnceInOrder(ok);
      expect(sorted(sentEvents(ok))).toEqual(sorted(logged));
      expect(new Set(ok.map((r) => r.body.type))).toEqual(new Set(['registered', 'renewed', 'rejected', 'expiring', 'expired', 'lapsed']));
      const exp = ok.filter((r) => r.body.type === 'expiring');
      expect(exp.map((r) => [r.body.data.height, r.body.data.stakeScript])).toEqual(expiring.map((n) => [n.expiryHeight - WINDOW, n.stakeScript]));
      // The three refused attempts were the first event, sent again under the same id.
      expect(rx.got.slice(0, 4).map((r) => [r.status, r.body.id])).toEqual([[503, ok[0]!.body.id], [503, ok[0]!.body.id], [503, ok[0]!.body.id], [200, ok[0]!.body.id]]);
      for (const r of rx.got) {
        expect(r.headers['x-nodereg-signature']).toBe(`sha256=${createHmac('sha256', secret).update(r.raw).digest('hex')}`);
        expect(r.headers['x-nodereg-id']).toBe(r.body.id);
        expect(r.headers['x-nodereg-event']).toBe(r.body.type);
        expect(Number.isInteger(r.body.timestamp)).toBe(true);
      }
      // The receiver has the last event a moment before the daemon marks it delivered: scrape until it has.
      let metrics = '';
      const metric = (name: string): number => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics)?.[1]);
      for (let i = 0; i < 600 && metric('nodereg_webhook_queue_length') !== 0; i++) {
        metrics = await (await fetch(`http://127.0.0.1:${api}/metrics`)).text();
        await sleep(50);
      }
      expect([metric('nodereg_webhook_deliveries_total'), metric('nodereg_webhook_retries_total'), metric('nodereg_webhook_queue_length')]).toEqual([ok.length, 3, 0]);
      reference = ok.filter((r) => (r.body.data.height as number) <= FORK).map(strip);

      // A real reorg: the node drops blocks FORK+1.. and the daemon follows it down.
      const before = ok.length;
      const undone = ok.filter((r) => (r.body.data.height as number) > FORK);
      expect(undone.length).toBeGreaterThan(0);
      await node.rpc('invalidateblock', [await node.rpc<string>('getblockhash', [FORK + 1])]);
      await rx.until((r) => r.accepted.length >= before + 1 + undone.length, 'the reorg and its reversals');
      const after = rx.accepted.slice(before);
      expect(after).toHaveLength(1 + undone.length);
      expect(after[0]!.body.type).toBe('reorg');
      expect(after[0]!.body.data).toMatchObject({ forkHeight: FORK, depth: expected.height - FORK, oldTip: { height: expected.height } });
      expect(after.slice(1).map((r) => [r.body.type, r.body.data.reverses])).toEqual(undone.reverse().map((r) => [`un${r.body.type}`, r.body.id]));
      expectOnceInOrder(rx.accepted);
      expect(await d.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await d.kill();
      await rx.close();
    }
  });

  it('a receiver down across a SIGKILL and a SIGTERM restart gets every event once, as the first index sent them', async () => {
    expect(reference.length).toBeGreaterThan(0);
    const rx = new Receiver(await freePort());
    const db = join(dir, 'db2');
    const args = daemonArgs(db, rx.url, ['--webhook-retries', '1000']);
    // Killed in the middle of catching up, with the receiver down.
    const a = new Daemon([...args, '--log-level', 'debug']);
    try {
      expect(await a.until((x) => (x.connectedUpTo() ?? 0) >= 250, 120_000)).toBe(true);
    } finally {
      await a.kill();
    }
    const b = new Daemon(args);
    try {
      await b.waitFor('synced with node', { height: FORK }, 120_000);
      await b.waitFor('webhook delivery failed; will retry', {}, 120_000);
      expect(await b.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await b.kill();
    }
    expect(rx.got).toHaveLength(0);
    await rx.open();
    const c = new Daemon(args);
    try {
      await rx.until((r) => r.accepted.length >= reference.length, 'every event after the restarts');
      await c.waitFor('synced with node', { height: FORK }, 120_000);
      expect(await c.stop()).toEqual({ code: 0, signal: null });
    } finally {
      await c.kill();
      await rx.close();
    }
    expectOnceInOrder(rx.accepted);
    expect(rx.accepted.map(strip)).toEqual(reference);
    // The webhook rows share the database: the index's own check still passes.
    const check = nodereg(['check', '--db', db]);
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('refuses a bad URL, a repeated --webhook and a too open secret file in one line each, with exit 2, 2 and 1', async () => {
    const base = ['index', '--network', 'regtest', '--rpc', 'http://127.0.0.1:1', '--rpc-user', 'x', '--rpc-password', 'y', '--db', join(dir, 'db3')];
    const badUrl = await noderegIn([...base, '--webhook', 'ftp://tracker.example/hook']);
    expect(badUrl.status).toBe(2);
    expect(badUrl.stderr).toMatch(/--webhook must be an http\(s\) URL/);
    const twice = await noderegIn([...base, '--webhook', 'http://a.example/', '--webhook', 'http://b.example/']);
    expect(twice.status).toBe(2);
    expect(twice.stderr).toMatch(/--webhook was given 2 times; give it once/);
    const open = join(dir, 'open-secret');
    writeFileSync(open, 'shared\n');
    chmodSync(open, 0o644);
    const tooOpen = await noderegIn([...base, '--webhook', 'http://a.example/', '--webhook-secret-file', open]);
    expect(tooOpen.status).toBe(1);
    expect(tooOpen.stderr).toMatch(/webhook secret file .* is readable by other users .*chmod 600/);
    for (const r of [badUrl, twice, tooOpen]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
