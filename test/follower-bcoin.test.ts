import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { bcoinSnapshot, startBcoin, type BcoinNode, type BcoinSnapshot } from './helpers/bcoin.js';
import { recountOf, submitAll } from './helpers/chains.js';
import { CLI, nodereg, noderegIn, ROOT } from './helpers/cli.js';

const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { tip: string };

let dir: string;
let node: BcoinNode;
/** The whole demo chain on disk once: the cases that start from it each get a node on a copy. */
let wholeDemo: BcoinSnapshot;

beforeAll(async () => {
  wholeDemo = await bcoinSnapshot((n) => submitAll(n, demo().bestChain().slice(1)));
}, 300_000);
afterAll(() => wholeDemo?.remove());

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-follow-'));
});
afterEach(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const rpcArgs = (n: BcoinNode): string[] => ['--rpc', n.url, '--rpc-user', 'x', '--rpc-password', n.apiKey];
const indexUntilSynced = (n: BcoinNode, db: string, extra: string[] = []) =>
  nodereg(['index', '--network', 'regtest', ...rpcArgs(n), '--db', db, '--until-synced', '--log-level', 'warn', ...extra]);
/** The index's export, read by the CLI in-process (see noderegIn); `index` itself is always the spawned binary. */
const exportOf = async (db: string): Promise<unknown> => JSON.parse((await noderegIn(['export', '--db', db])).stdout) as unknown;

describe('nodereg index against a real bcoin node', () => {
  it('catches up with submitted fixture blocks and equals the recount of the same chain', async () => {
    node = await wholeDemo.start();
    const c = demo();
    expect(await node.rpc('getbestblockhash')).toBe(c.tip.hash);
    const db = join(dir, 'db');
    const res = indexUntilSynced(node, db, ['--utxo-hash']);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(await exportOf(db)).toEqual(expected);
    expect(await exportOf(db)).toEqual(await recountOf(c));
    const utxo = (await noderegIn(['utxo-hash', '--db', db])).stdout.trim();
    const rec = await recountOf(c, ['--utxo-hash']) as { utxoMuhash: string };
    expect(utxo).toBe(rec.utxoMuhash);
  });

  it('logs its catch-up progress from the first block on, always below the node\'s tip, and ends synced at the tip', async () => {
    node = await wholeDemo.start();
    const c = demo();
    const db = join(dir, 'db');
    const res = nodereg(['index', '--network', 'regtest', ...rpcArgs(node), '--db', db, '--until-synced', '--log-level', 'info', '--log-json']);
    expect(res.status).toBe(0);
    const lines = res.stderr.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { msg: string; height?: number; nodeHeight?: number; hash?: string });
    const progress = lines.filter((l) => l.msg === 'catching up');
    // The first block (height 0) is reported at once; later reports come from a timer, once a second.
    expect(progress[0]).toMatchObject({ height: 0, nodeHeight: c.tip.height });
    expect(progress.every((l) => l.nodeHeight === c.tip.height && l.height! < c.tip.height)).toBe(true);
    expect(progress.map((l) => l.height)).toEqual([...progress.map((l) => l.height!)].sort((a, b) => a - b));
    expect(lines.filter((l) => l.msg === 'synced with node')).toEqual([expect.objectContaining({ height: c.tip.height, hash: c.tip.hash })]);
  });

  it('follows newly mined blocks and a real reorg from a longer competing branch, ending equal to a recount of the final chain', async () => {
    node = await wholeDemo.start();
    const c = demo();
    expect(await node.rpc('getbestblockhash')).toBe(c.tip.hash);
    const db = join(dir, 'db');
    expect(indexUntilSynced(node, db).status).toBe(0);

    // A longer branch forking 6 blocks below the tip, where hank registers.
    const side = c.fork(c.height - 6);
    const hank = side.account('hank', 'p2tr');
    side.wallet.pay(hank, [carrier(newNode(hank, side.nextTime()))]);
    side.mine();
    side.mineEmpty(8);
    await submitAll(node, side.chainBlocks().filter((b) => b.height > c.height - 6));
    expect(await node.rpc('getbestblockhash')).toBe(side.tip.hash);

    const res = indexUntilSynced(node, db, ['--log-level', 'warn']);
    expect(res.status).toBe(0);
    expect(res.stderr).toMatch(/reorg.*depth=6/);
    const after = await exportOf(db) as { tip: string; nodes: Array<{ address: string; status: string }> };
    expect(after.tip).toBe(side.tip.hash);
    expect(after).toEqual(await recountOf(side));
    expect(after).not.toEqual(expected);
  });

  it('reconnects when the node restarts underneath a running daemon, and stops cleanly on SIGTERM', async () => {
    const dataDir = join(dir, 'bcoin');
    node = await startBcoin({ dataDir });
    const { port, apiKey } = node;
    const c = demo();
    const blocks = c.bestChain().slice(1);
    await submitAll(node, blocks.slice(0, 300));
    const db = join(dir, 'db');
    const daemon = spawn(process.execPath, [CLI, 'index', '--network', 'regtest', ...rpcArgs(node), '--db', db, '--poll-interval', '100', '--log-json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    daemon.stderr.on('data', (d: Buffer) => { log += d.toString(); });
    const exited = new Promise<number | null>((resolve) => daemon.on('exit', (code) => resolve(code)));
    const waitFor = async (re: RegExp, ms = 30_000): Promise<void> => {
      const end = Date.now() + ms;
      while (!re.test(log)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${re} in:\n${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await waitFor(/"msg":"synced with node","height":300/);
      await node.stop();
      await waitFor(/sync failed; will retry|rpc call failed; retrying/);
      node = await startBcoin({ dataDir, port, apiKey });
      await submitAll(node, blocks.slice(300));
      await waitFor(new RegExp(`"msg":"synced with node","height":${blocks.length}`));
      daemon.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(log).toMatch(/"msg":"stopped"/);
    } finally {
      daemon.kill('SIGKILL');
    }
    expect(await exportOf(db)).toEqual(expected);
  });

  it('reports a wrong URL, wrong credentials and another network\'s node in one line each', async () => {
    node = await startBcoin();
    const db = join(dir, 'db');
    // Nothing answers there: the five retries run out after 10 ms, 20 ms… rather than the default 250 ms, 500 ms… (about 8 s).
    const wrongUrl = nodereg(['index', '--network', 'regtest', '--rpc', 'http://127.0.0.1:1', '--rpc-user', 'x', '--rpc-password', 'y', '--db', db, '--until-synced', '--rpc-backoff-ms', '10']);
    expect(wrongUrl.status).toBe(1);
    expect(wrongUrl.stderr).toMatch(/cannot reach the node at http:\/\/127\.0\.0\.1:1/);
    const badAuth = nodereg(['index', '--network', 'regtest', '--rpc', node.url, '--rpc-user', 'x', '--rpc-password', 'wrong', '--db', db, '--until-synced']);
    expect(badAuth.status).toBe(1);
    expect(badAuth.stderr).toMatch(/credentials/);
    expect(badAuth.stderr).not.toMatch(/wrong/);
    const otherNet = nodereg(['index', '--network', 'mainnet', ...rpcArgs(node), '--db', join(dir, 'db2'), '--until-synced']);
    expect(otherNet.status).toBe(1);
    expect(otherNet.stderr).toMatch(/genesis|another network/);
    for (const r of [wrongUrl, badAuth, otherNet]) expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('--prune-undo', () => {
  it('keeps undo data only for the last N blocks, follows a shallower reorg, and stops clearly on a deeper one', async () => {
    node = await wholeDemo.start();
    const c = demo();
    expect(await node.rpc('getbestblockhash')).toBe(c.tip.hash);
    const db = join(dir, 'db');
    expect(indexUntilSynced(node, db, ['--prune-undo', '6']).status).toBe(0);
    const { Level } = await import('level');
    const countUndo = async (): Promise<number[]> => {
      const lv = new Level<Buffer, Buffer>(db, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      const heights: number[] = [];
      for await (const k of lv.keys({ gte: Buffer.of(0x55), lt: Buffer.of(0x56) })) heights.push(k.readUInt32BE(1));
      await lv.close();
      return heights;
    };
    expect(await countUndo()).toEqual([445, 446, 447, 448, 449, 450]);

    const shallow = c.fork(c.height - 3);
    shallow.mineEmpty(5);
    await submitAll(node, shallow.chainBlocks().filter((b) => b.height > c.height - 3));
    const ok = indexUntilSynced(node, db, ['--prune-undo', '6']);
    expect(ok.status).toBe(0);
    expect(await exportOf(db)).toEqual(await recountOf(shallow));

    const deep = c.fork(c.height - 12);
    deep.mineEmpty(20);
    await submitAll(node, deep.chainBlocks().filter((b) => b.height > c.height - 12));
    const fail = indexUntilSynced(node, db, ['--prune-undo', '6']);
    expect(fail.status).toBe(1);
    expect(fail.stderr).toMatch(/nodereg: cannot undo block \d+ for a reorg of depth 14: .*--prune-undo was too small, or the index was loaded from a snapshot/);
    expect(fail.stderr).not.toMatch(/\n\s+at /);
  });
});
