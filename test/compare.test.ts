import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { buildServer } from '../indexer/http/server.js';
import type { ApiServer } from '../indexer/http/server.js';
import { openIndexStore, type DB } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { K } from '../indexer/store/layout.js';
import { decodeHeightState, encodeHeightState } from '../indexer/store/codec.js';
import { nodereg, noderegIn } from './helpers/cli.js';

/*
 * `nodereg compare` between indexes of generated chains, the peers served
 * in this process by the read API: copies of one chain agree, and chains
 * that fork at a known height are reported at exactly that height, with the
 * registrations each side has there.
 */

const COIN = 100_000_000n;
const params = BUILTIN_NETWORKS.regtest!;

/** Main registers bob in the first block after FORK, the side branch carol. */
function chains(): { main: ChainBuilder; side: ChainBuilder; fork: number; bob: string; carol: string } {
  const c = new ChainBuilder({ seed: 'nodereg-compare', params });
  c.mineEmpty(103);
  const [alice, bob, carol] = (['alice', 'bob', 'carol'] as const).map((n) => c.account(n, 'p2wpkh'));
  c.wallet.pay(c.miner, [payTo(alice!, 45n * COIN), payTo(bob!, 45n * COIN), payTo(carol!, 45n * COIN)]);
  c.mine();
  c.wallet.pay(alice!, [carrier(newNode(alice!, c.nextTime()))]);
  c.mine();
  c.mineEmpty(2);
  const fork = c.height;
  const side = c.fork(fork);
  c.wallet.pay(bob!, [carrier(newNode(bob!, c.nextTime()))]);
  c.mine();
  c.mineEmpty(3);
  side.wallet.pay(carol!, [carrier(newNode(carol!, side.nextTime()))]);
  side.mine();
  side.mineEmpty(2);
  return { main: c, side, fork, bob: Buffer.from(bob!.script).toString('hex'), carol: Buffer.from(carol!.script).toString('hex') };
}

let dir: string;
let setup: ReturnType<typeof chains>;
const open: Array<{ db: DB; server: ApiServer }> = [];

/** An index of one branch, built by a recount of only its blocks. */
function indexOf(branch: ChainBuilder, name: string): string {
  const blocks = join(dir, `${name}-blocks`);
  writeBlocksDir(blocks, branch.chainBlocks().map((b) => b.raw), { magic: params.magic });
  const db = join(dir, name);
  const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', blocks, '--db', db]);
  if (res.status !== 0) throw new Error(res.stderr);
  return db;
}

async function serve(path: string): Promise<string> {
  const { db } = await openIndexStore(path, null, { create: false });
  const server = await buildServer({ db, params });
  open.push({ db, server });
  return server.listen('127.0.0.1', 0);
}

let mainDb: string;
let mainPeer: string;
let sidePeer: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-compare-'));
  setup = chains();
  mainDb = indexOf(setup.main, 'main');
  cpSync(mainDb, join(dir, 'main-copy'), { recursive: true });
  mainPeer = await serve(join(dir, 'main-copy'));
  sidePeer = await serve(indexOf(setup.side, 'side'));
}, 120_000);
afterAll(async () => {
  for (const { db, server } of open) {
    await server.close();
    await db.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

interface Divergence {
  result: string;
  height: number;
  kind: string;
  commonTip: number;
  differs: string[];
  parties: Array<{ label: string; tip: string; root: string; proofRoot: string }>;
  differences: Array<{ stakeScript: string; nodes: Array<{ status: string; firstHeight: number } | null> }>;
}

// compare runs in-process (see noderegIn); the indexes are built by the spawned binary.
describe('nodereg compare', () => {
  it('finds two indexes of the same chain in agreement at their tip (exit 0)', async () => {
    const res = await noderegIn(['compare', '--db', mainDb, '--peer', mainPeer]);
    expect(res.stderr).toBe('');
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^agree: all 2 parties hold the same block, registry root and proof root at height ${setup.main.height}\\n`));
  }, 60_000);

  it('reports the height at which two chains fork, each party\'s root there and the registrations that differ (exit 3)', async () => {
    const res = await noderegIn(['compare', '--db', mainDb, '--peer', mainPeer, '--peer', sidePeer, '--json']);
    expect(res.status).toBe(3);
    const out = JSON.parse(res.stdout) as Divergence;
    const first = setup.fork + 1;
    expect(out).toMatchObject({ result: 'divergence', height: first, kind: 'chain', differs: ['block', 'root', 'proofRoot'], commonTip: setup.side.height });
    expect(out.parties.map((p) => p.tip)).toEqual([setup.main.blockAt(first).hash, setup.main.blockAt(first).hash, setup.side.blockAt(first).hash]);
    expect(out.parties[0]!.root).toBe(out.parties[1]!.root);
    expect(out.parties[2]!.root).not.toBe(out.parties[0]!.root);
    const diff = Object.fromEntries(out.differences.map((d) => [d.stakeScript, d.nodes.map((n) => n && { status: n.status, firstHeight: n.firstHeight })]));
    expect(diff).toEqual({
      [setup.bob]: [{ status: 'active', firstHeight: first }, { status: 'active', firstHeight: first }, null],
      [setup.carol]: [null, null, { status: 'active', firstHeight: first }],
    });
    const text = await noderegIn(['compare', '--db', mainDb, '--peer', sidePeer]);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(new RegExp(`^DIVERGENCE at height ${first}: the first height at which the parties disagree \\(all agree at ${setup.fork}\\)\\n`));
    expect(text.stdout).toMatch(/their blocks differ here: the parties follow different chains from this height\n {2}2 registration\(s\) differ/);
  }, 60_000);

  it('tells a wrong registry root on the same chain from a fork: same block, and exports that list the same registrations', async () => {
    // A copy whose stored root at the tip is the one of the fork height: as an indexer with a bug would have it.
    const bad = join(dir, 'bad');
    cpSync(mainDb, bad, { recursive: true });
    const { db } = await openIndexStore(bad, null, { create: false });
    await db.put(K.heightState(setup.main.height), (await db.get(K.heightState(setup.fork)))!);
    await db.close();
    const res = await noderegIn(['compare', '--db', bad, '--peer', mainPeer, '--json']);
    expect(res.status).toBe(3);
    expect(JSON.parse(res.stdout)).toMatchObject({ result: 'divergence', height: setup.main.height, kind: 'registry', differs: ['root', 'proofRoot'], differences: [] });
  }, 60_000);

  it('finds a proof root that alone is wrong, at the first height it is stored wrong, and says that only the proof root differs', async () => {
    // A copy whose proof roots from the fork height on are flipped in one bit, with the blocks and registry roots left right.
    const bad = join(dir, 'bad-proof');
    cpSync(mainDb, bad, { recursive: true });
    const { db } = await openIndexStore(bad, null, { create: false });
    for (let h = setup.fork; h <= setup.main.height; h++) {
      const s = decodeHeightState((await db.get(K.heightState(h)))!);
      const proofRoot = Buffer.from(s.proofRoot);
      proofRoot[0]! ^= 1;
      await db.put(K.heightState(h), encodeHeightState({ ...s, proofRoot }));
    }
    await db.close();
    const res = await noderegIn(['compare', '--db', bad, '--peer', mainPeer, '--json']);
    expect(res.status).toBe(3);
    const out = JSON.parse(res.stdout) as Divergence;
    expect(out).toMatchObject({ result: 'divergence', height: setup.fork, kind: 'proof', differs: ['proofRoot'], differences: [] });
    expect(out.parties[0]!.root).toBe(out.parties[1]!.root);
    expect(out.parties[0]!.proofRoot).not.toBe(out.parties[1]!.proofRoot);
    const text = await noderegIn(['compare', '--db', bad, '--peer', mainPeer]);
    expect(text.status).toBe(3);
    expect(text.stdout).toMatch(/\n {2}differs: proof root\n {2}same block and registry root, different proof roots/);
  }, 60_000);

  it('says clearly when a peer cannot be reached (exit 1)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const res = await noderegIn(['compare', '--db', mainDb, '--peer', sidePeer, '--peer', `http://127.0.0.1:${port}`]);
    expect(res.status).toBe(1);
    expect(res.stderr).toBe(`nodereg: cannot reach the read API at http://127.0.0.1:${port} (ECONNREFUSED): is "nodereg index --serve" running, and is --peer right?\n`);
  }, 60_000);
});
