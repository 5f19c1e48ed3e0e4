import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode, renewal } from '../fixtures/generator/announce.js';
import { storageOrder, writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { fixtureLayout } from '../fixtures/generator/output.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import type { ExportJson } from '../indexer/read/queries.js';
import { countByStatus, summarize } from '../indexer/read/listing.js';
import { recount } from '../indexer/engine/recount.js';
import { registrationsAt } from '../indexer/read/queries.js';
import { isLive } from '../script/interpreter.js';
import { REASON_TEXT, type ReasonCode } from '../script/reasons.js';
import { BUILTIN_NETWORKS, paramsToJson, type NetworkParams } from '../script/params.js';
import { fixturePath } from './helpers/blocksdir.js';
import { noderegAsync, noderegIn, ROOT } from './helpers/cli.js';
import { connectRaw, tempIndex } from './helpers/db.js';
import { refHash, refLeaves } from './helpers/reftree.js';
import { chainOf, rawChainOf, TEST_PARAMS } from './helpers/synthetic.js';

const regtest = BUILTIN_NETWORKS.regtest!;
const DEMO_BLOCKS = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const CORE = fixturePath('core-regtest');
const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as ExportJson;
const coreNode = JSON.parse(readFileSync(join(CORE, 'node.json'), 'utf8')) as { heights: Record<string, { hash: string; utxoMuhash: string }> };

const CAROL = 'mxYdWYFhFqno9w1eWkkcCqJTJrtDMN9LXx';
const ALICE = 'bcrt1qw08gd26j454qfj0986nae4pemvk8uu8d454g2g';
const DAVE = '2NE1HNBLoroM1MmHdQDpSRBUUnP2ovE2mzL';
const MAINNET_ADDRESS = 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4';
const EMPTY_ROOT = 'c85525462fdcf30a2c18d6f4b92923000974355c2477f59594d2c205a1d25add';
const STACK = /(?:\\n|\n)\s+at\s|\.(?:js|ts):\d+:\d+/;

type Index = Awaited<ReturnType<typeof tempIndex>>;
/** A server under test and the base URL it listens on (port 0: any free port). */
interface Served { server: ApiServer; base: URL; db?: Index['db'] }
const opened: Array<{ idx: Index; server: ApiServer }> = [];
const agent = new Agent({ keepAlive: true });
let dir: string;
let demo: Served;
let core: Served;
let rereg: Served;
let cliExport: { status: number | null; stdout: string; stderr: string };
let cliExport300: { status: number | null; stdout: string; stderr: string };
let cliRecount: { status: number | null; stdout: string; stderr: string };
let cliNode: { status: number | null; stdout: string; stderr: string };

async function listening(server: ApiServer): Promise<Served> {
  return { server, base: new URL(await server.listen('127.0.0.1', 0)) };
}

async function serve(blocksDir: string, params: NetworkParams, opts: { utxoHash?: boolean } = {}): Promise<Served> {
  const idx = await tempIndex(params, { utxoHash: opts.utxoHash });
  await recount({ blocksDir, params, db: idx.db });
  const server = await buildServer({ db: idx.db, params });
  opened.push({ idx, server });
  return { ...(await listening(server)), db: idx.db };
}

/**
 * A short-expiry chain where a script registers twice: alice registers at
 * 103, expires at 113 and registers again at 115 (renewed at 116); bob
 * registers at 103 and lapses at 107. Tip 118.
 */
function reregChain(): ChainBuilder {
  const params: NetworkParams = { ...regtest, name: 'regtest-e10', expiryBlocks: 10 };
  const c = new ChainBuilder({ seed: 'api-rereg', params, firstBlockTime: 1_700_000_000 });
  const alice = c.account('alice', 'p2wpkh');
  const bob = c.account('bob', 'p2tr');
  c.mineEmpty(101);
  c.wallet.pay(c.miner, [payTo(alice, 45n * 100_000_000n), payTo(bob, 45n * 100_000_000n)]);
  c.mine();
  c.wallet.pay(alice, [carrier(newNode(alice, c.nextTime()))]);
  c.wallet.pay(bob, [carrier(newNode(bob, c.nextTime()))]);
  c.mine();
  c.mineEmpty(3);
  c.wallet.pay(bob, [payTo(c.miner, 40n * 100_000_000n)]);
  c.mine();
  c.mineEmpty(7);
  const again = c.wallet.pay(alice, [carrier(newNode(alice, c.nextTime()))]);
  c.mine();
  c.wallet.pay(alice, [carrier(renewal(alice, c.nextTime(), again))]);
  c.mine();
  c.mineEmpty(2);
  return c;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-api-'));
  const cliDb = join(dir, 'cli-db');
  const cli = (async () => {
    cliRecount = await noderegAsync(['recount', '--network', 'regtest', '--blocks-dir', DEMO_BLOCKS, '--db', cliDb, '--json']);
    // One at a time: a LevelDB index is locked by the process that has it open.
    // The queries in-process (see noderegIn), the recount spawned.
    cliExport = await noderegIn(['export', '--db', cliDb]);
    cliExport300 = await noderegIn(['export', '--db', cliDb, '--height', '300']);
    cliNode = await noderegIn(['node', ALICE, '--db', cliDb, '--json']);
  })();
  const c = reregChain();
  writeBlocksDir(join(dir, 'rereg'), storageOrder(c), fixtureLayout(c));
  [demo, core, rereg] = await Promise.all([
    serve(DEMO_BLOCKS, regtest),
    serve(join(CORE, 'blocks'), regtest, { utxoHash: true }),
    serve(join(dir, 'rereg'), c.params),
  ]);
  await cli;
});

afterAll(async () => {
  for (const { idx, server } of opened) {
    await server.close();
    await idx.close();
  }
  agent.destroy();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders;
  body: string;
  json<T = unknown>(): T;
}

/**
 * One request over a real socket. (fastify's inject() cannot run under
 * Jest's ESM mode: light-my-request requires cookie@2, an ES module.)
 */
function send(base: URL, url: string, method: string, headers: Record<string, string> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host: base.hostname, port: base.port, path: url, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ statusCode: res.statusCode!, headers: res.headers, body, json: <T>() => JSON.parse(body) as T });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Every response of this file goes through here: none may carry a stack trace. */
async function call(s: Served, url: string, opts: { method?: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'OPTIONS'; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await send(s.base, url, opts.method ?? 'GET', opts.headers);
  expect(res.body).not.toMatch(STACK);
  return res;
}

async function ok<T = unknown>(s: Served, url: string): Promise<T> {
  const res = await call(s, url);
  expect({ url, status: res.statusCode, type: res.headers['content-type'] }).toEqual({ url, status: 200, type: 'application/json; charset=utf-8' });
  return res.json<T>();
}

async function fails(s: Served, url: string, status: number, error: string, message: RegExp): Promise<void> {
  const res = await call(s, url);
  expect({ url, status: res.statusCode, type: res.headers['content-type'] }).toEqual({ url, status, type: 'application/json; charset=utf-8' });
  const body = res.json<{ error: string; message: string }>();
  expect(Object.keys(body).sort()).toEqual(['error', 'message']);
  expect(body).toEqual({ error, message: expect.stringMatching(message) });
}

/** Demo block h's header time: 600 s apart from block 1 (1700000000) on. */
const demoTime = (h: number): number => 1_700_000_000 + (h - 1) * 600;
/** What a node answer adds to an export node at height h of the demo: age and the forecasts of docs/spec.md §2.11. */
const withAge = (h: number) => (n: ExportJson['nodes'][number]) => {
  const active = n.status === 'active';
  return {
    ...n, age: h - n.firstHeight, blocksUntilExpiry: active ? n.expiryHeight - h : null, expiresAt: active ? demoTime(h) + (n.expiryHeight - h) * 600 : null,
    renewBy: active ? n.expiryHeight - 1 : null, stakeMargin: (BigInt(n.balance) - regtest.minStake).toString(),
  };
};
const byAddress = (a: string): ExportJson['nodes'][number] => expected.nodes.find((n) => n.address === a)!;

describe('GET /v1/status and /v1/root', () => {
  it('status reports the network, params hash, params, tip, counts by status and schema version of a static index', async () => {
    expect(await ok(demo, '/v1/status')).toEqual({
      network: 'regtest', paramsHash: '16eba027faa28db9aa9468dbb6f2d042784760d5871f23227b80a7613643765f', schemaVersion: 2,
      params: paramsToJson(BUILTIN_NETWORKS.regtest!),
      tip: { height: 450, hash: expected.tip }, nodeTip: null, sync: 'not-following', lastNodeContact: null,
      counts: { active: 3, expired: 1, lapsed: 1 }, utxoMuhash: null,
    });
  });

  it('status and root of the Core-written chain carry the node\'s own block hashes and UTXO MuHash', async () => {
    expect(await ok(core, '/v1/status')).toMatchObject({
      tip: { height: 116, hash: coreNode.heights['116']!.hash }, counts: { active: 1, expired: 0, lapsed: 0 }, utxoMuhash: coreNode.heights['116']!.utxoMuhash,
    });
    for (const h of [0, 57, 113, 116]) {
      const root = await ok<{ root: string; proofRoot: string }>(core, `/v1/root?height=${h}`);
      expect(root).toEqual({
        height: h, tip: coreNode.heights[String(h)]!.hash, root: h < 113 ? EMPTY_ROOT : root.root, proofRoot: h < 113 ? '00'.repeat(32) : root.proofRoot,
        utxoMuhash: coreNode.heights[String(h)]!.utxoMuhash,
      });
    }
  });

  it('root defaults to the tip and equals the export\'s root at every height asked', async () => {
    expect(await ok(demo, '/v1/root')).toEqual({ height: 450, tip: expected.tip, root: expected.root, proofRoot: refHash(refLeaves(expected.nodes)).toString('hex'), utxoMuhash: null });
    expect(await ok(demo, '/v1/root?height=0')).toMatchObject({ height: 0, root: EMPTY_ROOT, tip: regtest.genesisHash });
    for (const h of [102, 245, 246, 300, 442]) {
      const ex = await ok<ExportJson>(demo, `/v1/export?height=${h}`);
      expect(await ok(demo, `/v1/root?height=${h}`)).toEqual({ height: h, tip: ex.tip, root: ex.root, proofRoot: refHash(refLeaves(ex.nodes)).toString('hex'), utxoMuhash: null });
    }
    expect((await ok<{ root: string }>(demo, '/v1/root?height=245')).root).toBe('dec39e382de3427b45a426758aac37784e097e5f2b002661d5bc0c3d5553d6a5');
  });
});

describe('GET /v1/export', () => {
  it('equals the committed expected.json, `nodereg export` and the recount JSON of the same chain', async () => {
    const api = await ok<ExportJson>(demo, '/v1/export');
    expect(api).toEqual(expected);
    expect([cliRecount.status, cliExport.status, cliExport300.status, cliExport.stderr]).toEqual([0, 0, 0, '']);
    expect(api).toEqual(JSON.parse(cliExport.stdout));
    expect(api).toEqual(JSON.parse(cliRecount.stdout));
    expect((await call(demo, '/v1/export')).body).toBe(JSON.stringify(expected));
  });

  it('as of a past height equals `nodereg export --height`', async () => {
    expect(await ok(demo, '/v1/export?height=300')).toEqual(JSON.parse(cliExport300.stdout));
    expect(await ok(demo, '/v1/export?height=300')).toMatchObject({ height: 300, nodes: [{ address: CAROL, status: 'expired', endedHeight: 246 }] });
  });
});

describe('GET /v1/nodes', () => {
  it('lists active registrations in FIRST_SEEN order by default', async () => {
    expect(await ok(demo, '/v1/nodes')).toEqual({
      height: 450, nextCursor: null, nodes: expected.nodes.filter((n) => n.status === 'active').map(withAge(450)),
    });
  });

  it('filters by each status', async () => {
    for (const status of ['active', 'expired', 'lapsed'] as const) {
      expect(await ok(demo, `/v1/nodes?status=${status}`)).toEqual({ height: 450, nextCursor: null, nodes: expected.nodes.filter((n) => n.status === status).map(withAge(450)) });
    }
    expect((await ok<{ nodes: unknown[] }>(demo, '/v1/nodes?status=all')).nodes).toEqual(expected.nodes.map(withAge(450)));
  });

  it('pages through the whole registry with the cursor, every node once and in order', async () => {
    const seen: unknown[] = [];
    const cursors: Array<string | null> = [];
    let url = '/v1/nodes?status=all&limit=2';
    for (;;) {
      const page = await ok<{ nodes: unknown[]; nextCursor: string | null }>(demo, url);
      seen.push(...page.nodes);
      cursors.push(page.nextCursor);
      if (page.nextCursor === null) break;
      url = `/v1/nodes?status=all&limit=2&cursor=${page.nextCursor}`;
    }
    expect(seen).toEqual(expected.nodes.map(withAge(450)));
    expect(cursors.map((c) => c && Buffer.from(c, 'base64url').toString())).toEqual(['432:1', '433:1', null]);
    const active = await ok<{ nodes: Array<{ address: string }>; nextCursor: string }>(demo, '/v1/nodes?limit=1');
    expect(active.nodes.map((n) => n.address)).toEqual([ALICE]);
    const rest = await ok<{ nodes: Array<{ address: string }>; nextCursor: string | null }>(demo, `/v1/nodes?limit=1000&cursor=${active.nextCursor}`);
    expect(rest).toMatchObject({ nextCursor: null, nodes: [{ status: 'active', firstHeight: 432 }, { status: 'active', firstHeight: 435 }] });
  });

  it('answers as of a past height with `at`, equal to the export at that height', async () => {
    expect(await ok(demo, '/v1/nodes?at=100&status=all')).toEqual({ height: 100, nodes: [], nextCursor: null });
    expect(await ok(demo, '/v1/nodes?at=245')).toEqual({
      height: 245, nextCursor: null,
      nodes: [withAge(245)({ ...byAddress(CAROL), status: 'active', endedHeight: null, balance: '4499999000' })],
    });
    for (const h of [246, 440, 442]) {
      const ex = await ok<ExportJson>(demo, `/v1/export?height=${h}`);
      expect(await ok(demo, `/v1/nodes?at=${h}&status=all`)).toEqual({ height: h, nodes: ex.nodes.map(withAge(h)), nextCursor: null });
    }
    const page = await ok<{ nextCursor: string }>(demo, '/v1/nodes?at=442&status=all&limit=3');
    expect(await ok(demo, `/v1/nodes?at=442&status=all&cursor=${page.nextCursor}`)).toMatchObject({ nodes: [{ firstHeight: 433, status: 'lapsed' }, { firstHeight: 435 }], nextCursor: null });
  });

  it('lists each script once, by its current registration', async () => {
    expect((await ok<{ nodes: Array<{ firstHeight: number; status: string }> }>(rereg, '/v1/nodes?status=all')).nodes.map((n) => [n.firstHeight, n.status]))
      .toEqual([[103, 'lapsed'], [115, 'active']]);
    expect((await ok<{ nodes: Array<{ firstHeight: number; status: string; endedHeight: number }> }>(rereg, '/v1/nodes?status=all&at=114')).nodes.map((n) => [n.firstHeight, n.status, n.endedHeight]))
      .toEqual([[103, 'expired', 113], [103, 'lapsed', 107]]);
  });
});

describe('GET /v1/nodes/{stake} and its history', () => {
  it('shows the current registration, balance, age, renewals, blocks until expiry and history, by address or script hex', async () => {
    const alice = {
      height: 450, stakeScript: byAddress(ALICE).stakeScript, balance: '4599996000', registration: withAge(450)(byAddress(ALICE)),
      history: [
        { event: 'registered', height: 432, txid: '4fcd425b4bc59cc7815ed2e5352aa59434d3825e08390170c3ed7757fb271616', registration: '432:1', timestamp: 1700258600, expiryHeight: 576 },
        { event: 'renewed', height: 435, txid: '2d4577ef5cfad92c03e8255e58030ac3c420fc484a3d6301f44eaad3d024be51', registration: '432:1', timestamp: 1700260400, expiryHeight: 579 },
        { event: 'renewed', height: 443, txid: '0c9610abc989330788dca1d6f515eb737e15b175c8e6488872e2dc1dd6e3bf34', registration: '432:1', timestamp: 1700265200, expiryHeight: 587 },
      ],
    };
    expect(await ok(demo, `/v1/nodes/${ALICE}`)).toEqual(alice);
    expect(await ok(demo, `/v1/nodes/${byAddress(ALICE).stakeScript}`)).toEqual(alice);
    expect(await ok(demo, `/v1/nodes/${byAddress(ALICE).stakeScript.toUpperCase()}`)).toEqual(alice);
    expect(await ok(demo, `/v1/nodes/${CAROL}`)).toEqual({
      height: 450, stakeScript: byAddress(CAROL).stakeScript, balance: '4499998000', registration: withAge(450)(byAddress(CAROL)),
      history: [
        { event: 'registered', height: 102, txid: byAddress(CAROL).firstTxid, registration: '102:1', timestamp: 1700060600, expiryHeight: 246 },
        { event: 'expired', height: 246, txid: null, registration: '102:1', timestamp: 1700060600, expiryHeight: 246 },
      ],
    });
  });

  it('answers a stake in the same shape as `nodereg node --json`', async () => {
    expect([cliNode.status, cliNode.stderr]).toEqual([0, '']);
    expect(await ok(demo, `/v1/nodes/${ALICE}`)).toEqual(JSON.parse(cliNode.stdout));
  });

  it('history lists every event of the script', async () => {
    expect(await ok(demo, `/v1/nodes/${DAVE}/history`)).toEqual({
      height: 450, stakeScript: 'a914e3b7a32c1a1240df7bdb4558f70ef7c06ebdc1d887', history: [
        { event: 'registered', height: 433, txid: 'd2df64580f72c4332efe7fb45a4094eb3c3943a2be74453aadbfff590147da4d', registration: '433:1', timestamp: 1700259200, expiryHeight: 577 },
        { event: 'renewed', height: 439, txid: 'e6e9d7a124aab254f80bdb65723c280a71176abbcffe600062e19c209ad1c606', registration: '433:1', timestamp: 1700270000, expiryHeight: 583 },
        { event: 'lapsed', height: 442, txid: null, registration: '433:1', timestamp: 1700270000, expiryHeight: 583 },
      ],
    });
    expect((await ok<{ history: Array<{ event: string; height: number }> }>(demo, `/v1/nodes/${CAROL}/history`)).history.map((e) => [e.event, e.height]))
      .toEqual([['registered', 102], ['expired', 246]]);
  });

  it('history keeps an earlier registration of a script that registered again, and the node shows the new one', async () => {
    const { nodes } = await ok<{ nodes: Array<{ address: string; firstHeight: number }> }>(rereg, '/v1/nodes');
    const alice = nodes[0]!.address;
    const history = await ok<{ history: Array<{ event: string; height: number; registration: string; expiryHeight: number; txid: string | null }> }>(rereg, `/v1/nodes/${alice}/history`);
    expect(history.history.map((e) => [e.event, e.height, e.registration, e.expiryHeight])).toEqual([
      ['registered', 103, '103:1', 113], ['expired', 113, '103:1', 113], ['registered', 115, '115:1', 125], ['renewed', 116, '115:1', 126],
    ]);
    expect(await ok(rereg, `/v1/nodes/${alice}`)).toMatchObject({
      height: 118,
      registration: { address: alice, status: 'active', firstHeight: 115, firstTxid: history.history[2]!.txid, tipHeight: 116, tipTxid: history.history[3]!.txid, renewals: 1, expiryHeight: 126, endedHeight: null, age: 3, blocksUntilExpiry: 8 },
    });
  });

  it('lists the unspent outputs of a script', async () => {
    expect(await ok(demo, `/v1/scripts/${ALICE}/utxos`)).toEqual({
      height: 450, utxos: [
        { txid: '6ca244374eb5a4e7f7a4bd5d636c15f2e347e1d6ef4742d4ccde4f1079808026', vout: 0, value: '100000000', height: 447, coinbase: false },
        { txid: '0c9610abc989330788dca1d6f515eb737e15b175c8e6488872e2dc1dd6e3bf34', vout: 1, value: '4499996000', height: 443, coinbase: false },
      ],
    });
  });

  it('is a 404 for a valid stake that was never registered', async () => {
    const miner = '76a914' + '00'.repeat(20) + '88ac';
    await fails(demo, `/v1/nodes/${miner}`, 404, 'not_found', /never been registered/);
    await fails(demo, `/v1/nodes/${miner}/history`, 404, 'not_found', /never been registered/);
    expect(await ok(demo, `/v1/scripts/${miner}/utxos`)).toEqual({ height: 450, utxos: [] });
  });
});

describe('GET /v1/tx/{txid}', () => {
  it('gives each announcement\'s outcome: accepted, or the reason code', async () => {
    expect(await ok(demo, '/v1/tx/0801416be893cf079a6bb7fa0b5220002d832e996553eea4fc320bbb9165aadd')).toEqual({
      txid: '0801416be893cf079a6bb7fa0b5220002d832e996553eea4fc320bbb9165aadd', announcements: [{ vout: 0, height: 102, kind: 'newnode', accepted: true, reason: null }],
    });
    expect(await ok(demo, '/v1/tx/2D4577EF5CFAD92C03E8255E58030AC3C420FC484A3D6301F44EAAD3D024BE51')).toEqual({
      txid: '2d4577ef5cfad92c03e8255e58030ac3c420fc484a3d6301f44eaad3d024be51', announcements: [{ vout: 0, height: 435, kind: 'renewal', accepted: true, reason: null }],
    });
    expect(await ok(demo, '/v1/tx/c9941c0c71d9b84a06a0366c3397974abbf7d2dde4a9d82397bb44364d2d2b16')).toEqual({
      txid: 'c9941c0c71d9b84a06a0366c3397974abbf7d2dde4a9d82397bb44364d2d2b16', announcements: [
        { vout: 0, height: 436, kind: 'renewal', accepted: false, reason: 'MULTIPLE_ANNOUNCEMENTS' },
        { vout: 1, height: 436, kind: 'renewal', accepted: false, reason: 'MULTIPLE_ANNOUNCEMENTS' },
      ],
    });
    const flawed = await ok<{ announcements: Array<{ reason: string; accepted: boolean }> }>(demo, '/v1/tx/1e0ccc7409cca6c26dbd609f93600f779d932321524a9e4e0504f97613e09adb');
    expect(flawed.announcements.map((a) => [a.accepted, a.reason])).toEqual([[false, 'MALFORMED_CARRIER'], [false, 'NON_MINIMAL_PUSH'], [false, 'UNKNOWN_OPCODE'], [false, 'STACK_MISMATCH']]);
    expect(await ok(core, '/v1/tx/fbeedf45edb117806839ae53614f8c3574ec04421e474abc52996791c5eb72c3')).toMatchObject({ announcements: [{ accepted: false, reason: 'TIMESTAMP_IN_FUTURE', height: 115 }] });
  });

  it('is a 404 for a transaction without announcements', async () => {
    await fails(demo, `/v1/tx/${'00'.repeat(32)}`, 404, 'not_found', /no announcement of transaction 0{64}/);
  });
});

describe('GET /v1/payouts', () => {
  const payees = async (s: Served, q: string): Promise<Array<[string, number, number]>> =>
    (await ok<{ nodes: Array<{ address: string; age: number; renewals: number }> }>(s, `/v1/payouts?${q}`)).nodes.map((n) => [n.address, n.age, n.renewals]);
  const BOB = expected.nodes[2]!.address!;
  const ERIN = expected.nodes[4]!.address!;

  it('returns the nodes live at the end of every block of [from, to], with stake script, address, age at `to` and renewals', async () => {
    expect(await ok(demo, '/v1/payouts?from=440&to=445')).toEqual({
      from: 440, to: 445, nodes: [ALICE, BOB, ERIN].map((a) => {
        const n = byAddress(a);
        return { stakeScript: n.stakeScript, address: a, firstHeight: n.firstHeight, age: 445 - n.firstHeight, renewals: a === ALICE ? 2 : 1 };
      }),
    });
  });

  it('leaves out a node that lapsed or expired inside the range, and one registered after `from`', async () => {
    expect((await payees(demo, 'from=436&to=441')).map((p) => p[0])).toEqual([ALICE, BOB, DAVE, ERIN]);
    expect((await payees(demo, 'from=436&to=442')).map((p) => p[0])).toEqual([ALICE, BOB, ERIN]);
    expect((await payees(demo, 'from=434&to=436')).map((p) => p[0])).toEqual([ALICE, BOB, DAVE]);
    expect(await payees(demo, 'from=102&to=245')).toEqual([[CAROL, 143, 0]]);
    expect(await payees(demo, 'from=102&to=246')).toEqual([]);
    expect(await payees(demo, 'from=101&to=245')).toEqual([]);
    expect(await payees(demo, 'from=450&to=450')).toEqual([[ALICE, 18, 2], [BOB, 18, 2], [ERIN, 15, 1]]);
  });

  it('keeps only nodes whose age at `from` reaches minAge', async () => {
    expect((await payees(demo, 'from=440&to=445&minAge=5')).map((p) => p[0])).toEqual([ALICE, BOB, ERIN]);
    expect((await payees(demo, 'from=440&to=445&minAge=6')).map((p) => p[0])).toEqual([ALICE, BOB]);
    expect((await payees(demo, 'from=440&to=445&minAge=8')).map((p) => p[0])).toEqual([ALICE, BOB]);
    expect(await payees(demo, 'from=440&to=445&minAge=9')).toEqual([]);
  });

  it('needs one registration throughout: a script that re-registered inside the range is left out', async () => {
    const alice = (await ok<{ nodes: Array<{ address: string }> }>(rereg, '/v1/nodes')).nodes[0]!.address;
    expect((await payees(rereg, 'from=104&to=106')).length).toBe(2);
    expect(await payees(rereg, 'from=104&to=107')).toEqual([[alice, 4, 0]]);
    expect(await payees(rereg, 'from=111&to=116')).toEqual([]);
    expect(await payees(rereg, 'from=115&to=118')).toEqual([[alice, 3, 1]]);
    expect(await payees(rereg, 'from=117&to=118&minAge=2')).toEqual([[alice, 3, 1]]);
    expect(await payees(rereg, 'from=117&to=118&minAge=3')).toEqual([]);
  });
});

describe('GET /v1/payouts with amount: the payout table of docs/spec.md §2.10', () => {
  interface Table { from: number; to: number; amount: string; weight: string; payouts: Array<{ stakeScript: string; address: string; weight: number; amount: string }>; payoutsHash: string }
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  const row = (address: string, weight: number, amount: string): { stakeScript: string; address: string; weight: number; amount: string } =>
    ({ stakeScript: byAddress(address).stakeScript, address, weight, amount });
  const hashOf = (rows: Table['payouts']): string => sha(`[${rows.map((r) => `{"stakeScript":"${r.stakeScript}","weight":${r.weight},"amount":"${r.amount}"}`).join(',')}]`);
  const BOB = expected.nodes[2]!.address!;
  const ERIN = expected.nodes[4]!.address!;

  it('weighs each node by its live heights, floors the shares and gives the remainder to the first in FIRST_SEEN order', async () => {
    // 440..445: dave lapsed at the end of 442, so he was live at 440 and 441 only; W = 6 + 6 + 2 + 6 = 20.
    const rows = [row(ALICE, 6, '300001'), row(BOB, 6, '300001'), row(DAVE, 2, '100001'), row(ERIN, 6, '300000')];
    expect(await ok(demo, '/v1/payouts?from=440&to=445&amount=1000003')).toEqual({ from: 440, to: 445, amount: '1000003', weight: 'uptime', payouts: rows, payoutsHash: hashOf(rows) });
  });

  it('drops dust and shares again over the rest, and pays nobody when every share is dust', async () => {
    // 1000 over 20: dave's 100 is below 200; over the other 18, 333 each and 1 left for alice.
    const rows = [row(ALICE, 6, '334'), row(BOB, 6, '333'), row(ERIN, 6, '333')];
    expect(await ok(demo, '/v1/payouts?from=440&to=445&amount=1000&minPayout=200')).toMatchObject({ payouts: rows, payoutsHash: hashOf(rows) });
    expect(await ok(demo, '/v1/payouts?from=440&to=445&amount=1000&minPayout=1001')).toMatchObject({ payouts: [], payoutsHash: sha('[]') });
    expect(await ok(demo, '/v1/payouts?from=1&to=100&amount=1000')).toMatchObject({ payouts: [], payoutsHash: sha('[]') });
  });

  it('keeps amounts exact far beyond 2^53', async () => {
    const big = (10n ** 30n + 7n).toString();
    const t = await ok<Table>(demo, `/v1/payouts?from=440&to=445&amount=${big}&weight=age`);
    expect(t.payouts.reduce((s, r) => s + BigInt(r.amount), 0n)).toBe(10n ** 30n + 7n);
    expect(t.payouts.map((r) => r.amount)).toEqual(['300000000000000000000000000003', '300000000000000000000000000002', '100000000000000000000000000000', '300000000000000000000000000002']);
  });

  it('refuses a bad amount, weight or minPayout, and mixing in the membership listing\'s minAge', async () => {
    for (const amount of ['0', '-5', '1.5', 'abc', '1e9', '']) await fails(demo, `/v1/payouts?from=440&to=445&amount=${amount}`, 400, 'bad_request', /^querystring\/amount must/);
    await fails(demo, '/v1/payouts?from=440&to=445&amount=1000&weight=height', 400, 'bad_request', /^querystring\/weight must be equal to one of the allowed values/);
    await fails(demo, '/v1/payouts?from=440&to=445&amount=1000&minPayout=-1', 400, 'bad_request', /^querystring\/minPayout must match pattern/);
    await fails(demo, '/v1/payouts?from=440&to=445&amount=1000&minAge=3', 400, 'bad_request', /^querystring\/minAge does not apply with amount/);
    await fails(demo, '/v1/payouts?from=440&to=445&weight=age', 400, 'bad_request', /^querystring\/weight needs amount/);
    await fails(demo, '/v1/payouts?from=440&to=445&minPayout=5', 400, 'bad_request', /^querystring\/minPayout needs amount/);
    await fails(demo, '/v1/payouts?from=445&to=440&amount=1000', 400, 'bad_request', /^from \(445\) must not be above to \(440\)$/);
    await fails(demo, '/v1/payouts?from=445&to=451&amount=1000', 400, 'bad_request', /^querystring\/to 451 is above the index tip 450$/);
  });
});

describe('renewal forecasts on node answers (docs/spec.md §2.11)', () => {
  interface Listed { address: string; status: string; expiryHeight: number; balance: string; blocksUntilExpiry: number | null; expiresAt: number | null; renewBy: number | null; stakeMargin: string }
  // Demo blocks are 600 s apart from block 1 (1700000000) on; block 1 jumps 12 years past genesis, which the median ignores.
  const timeOf = demoTime;
  const margin = (balance: string): string => (BigInt(balance) - regtest.minStake).toString();

  it('dates the expiry by the median block interval, names the last block to renew in, and gives the margin above minStake', async () => {
    const node = await ok<{ registration: Listed }>(demo, `/v1/nodes/${ALICE}`);
    expect(node.registration).toMatchObject({ expiryHeight: 587, blocksUntilExpiry: 137, renewBy: 586, expiresAt: timeOf(450) + 137 * 600, stakeMargin: margin(node.registration.balance) });
    const all = await ok<{ nodes: Listed[] }>(demo, '/v1/nodes?status=all');
    expect(all.nodes.find((n) => n.address === ALICE)).toEqual(node.registration);
    for (const n of all.nodes.filter((m) => m.status !== 'active')) {
      expect(n).toMatchObject({ blocksUntilExpiry: null, expiresAt: null, renewBy: null, stakeMargin: margin(n.balance) });
    }
    expect(all.nodes.find((n) => n.address === DAVE)!.stakeMargin).toMatch(/^-\d+$/);
  });

  it('renewBy is the last height at which the interpreter still finds the registration live', () => {
    const view = { tipTxid: Buffer.alloc(32), timestamp: 1, expiryHeight: 587, ended: false };
    expect([isLive(view, 586), isLive(view, 587)]).toEqual([true, false]);
  });

  it('expiringWithin keeps the active nodes expiring within N blocks, at the tip and at a past height', async () => {
    const within = async (q: string): Promise<string[]> => (await ok<{ nodes: Listed[] }>(demo, `/v1/nodes?${q}`)).nodes.map((n) => n.address);
    const ERIN = expected.nodes[4]!.address!;
    expect(await within('expiringWithin=136')).toEqual([]);
    expect(await within('expiringWithin=137')).toEqual([ALICE]);
    expect(await within('expiringWithin=139&status=all')).toEqual([ALICE, ERIN]);
    const past = await ok<{ nodes: Listed[] }>(demo, '/v1/nodes?at=110&expiringWithin=136');
    expect(past.nodes).toEqual([expect.objectContaining({ address: CAROL, blocksUntilExpiry: 136, renewBy: 245, expiresAt: timeOf(110) + 136 * 600 })]);
    await fails(demo, '/v1/nodes?expiringWithin=-1', 400, 'bad_request', /^querystring\/expiringWithin must be >= 0$/);
  });
});

describe('GET /v1/history/active', () => {
  it('counts the registrations active at the end of each sampled block', async () => {
    const steps = [[102, 0], [103, 2], [106, 2], [107, 1], [112, 1], [113, 0], [114, 0], [115, 1], [118, 1]];
    const { points } = await ok<{ points: Array<{ height: number; active: number }> }>(rereg, '/v1/history/active?from=101&to=118');
    expect(points).toHaveLength(18);
    for (const [h, n] of steps) expect(points.find((p) => p.height === h)).toEqual({ height: h, active: n });
    expect(await ok(demo, '/v1/history/active?points=4')).toEqual({ from: 0, to: 450, points: [{ height: 0, active: 0 }, { height: 150, active: 1 }, { height: 300, active: 0 }, { height: 450, active: 3 }] });
    expect(await ok(demo, '/v1/history/active?from=440&to=443&points=2')).toEqual({ from: 440, to: 443, points: [{ height: 440, active: 4 }, { height: 443, active: 3 }] });
  });

  it('counts and steps from the event keys equal the registry rebuilt at every height, on random chains', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), async (seed) => {
      const { raw, params } = rawChainOf(chainOf(40, seed));
      const idx = await tempIndex(params);
      try {
        for (let h = 0; h < raw.length; h++) {
          await connectRaw(idx, raw[h]!, h);
          await idx.view.spill(idx.state);
        }
        const { counts, steps } = await summarize(idx.db);
        expect(counts).toEqual(await countByStatus(idx.db));
        let active = 0;
        for (let h = 0; h < raw.length; h++) {
          active = steps.find((s) => s.height === h)?.active ?? active;
          const live = (await registrationsAt(idx.db, h)).filter((r) => r.status === 'active').length;
          expect({ seed, h, active }).toEqual({ seed, h, active: live });
        }
      } finally {
        await idx.close();
      }
    }), { numRuns: 15 });
  });

  it('agrees with the active count of /v1/nodes?at= at every height of the demo', async () => {
    const { points } = await ok<{ points: Array<{ height: number; active: number }> }>(demo, '/v1/history/active?from=240&to=450&points=1000');
    expect(points).toHaveLength(211);
    for (const p of points.filter((q) => q.height % 10 === 0 || (q.height >= 440 && q.height <= 447) || q.height === 246)) {
      const listed = await ok<{ nodes: unknown[] }>(demo, `/v1/nodes?at=${p.height}&limit=1000`);
      expect({ h: p.height, active: listed.nodes.length }).toEqual({ h: p.height, active: p.active });
    }
  });
});

describe('the explorer routes: search, balances over time, rejected announcements', () => {
  type Listed = ExportJson['nodes'][number];
  it('searches every registration by part of its address or script, any case, up to limit', async () => {
    const alice = byAddress(ALICE);
    expect((await ok<{ nodes: Listed[]; more: boolean }>(demo, '/v1/search?q=QW08GD26')).nodes.map((n) => n.address)).toEqual([ALICE]);
    const byScript = await ok<{ nodes: Listed[]; more: boolean }>(demo, `/v1/search?q=${alice.stakeScript.slice(6, 30)}`);
    expect(byScript).toEqual({ height: 450, nodes: [expect.objectContaining({ ...alice, age: 450 - alice.firstHeight })], more: false });
    const bech32 = expected.nodes.filter((n) => n.address!.startsWith('bcrt1'));
    expect(bech32.length).toBeGreaterThan(2);
    const two = await ok<{ nodes: Listed[]; more: boolean }>(demo, '/v1/search?q=bcrt1&limit=2');
    expect([two.nodes.map((n) => n.address), two.more]).toEqual([bech32.slice(0, 2).map((n) => n.address), true]);
    const all = await ok<{ nodes: Listed[]; more: boolean }>(demo, '/v1/search?q=bcrt1');
    expect([all.nodes.map((n) => n.address), all.more]).toEqual([bech32.map((n) => n.address), false]);
    expect(await ok(demo, '/v1/search?q=nothing-like-it')).toEqual({ height: 450, nodes: [], more: false });
    await fails(demo, '/v1/search?q=', 400, 'bad_request', /q must NOT have fewer than 1 characters/);
    await fails(demo, '/v1/search?q=%20%20', 400, 'bad_request', /q must not be only spaces/);
    await fails(demo, '/v1/search', 400, 'bad_request', /must have required property 'q'/);
  });

  it('gives a stake\'s balance at the end of each block that changed it, oldest first, the latest ones under limit', async () => {
    const { points, truncated, stakeScript } = await ok<{ points: Array<{ height: number; balance: string }>; truncated: boolean; stakeScript: string }>(demo, `/v1/nodes/${ALICE}/balances`);
    expect([stakeScript, truncated]).toEqual([byAddress(ALICE).stakeScript, false]);
    expect(points.length).toBeGreaterThan(1);
    for (let i = 1; i < points.length; i++) expect(points[i]!.height).toBeGreaterThan(points[i - 1]!.height);
    expect(points.at(-1)!.balance).toBe(byAddress(ALICE).balance);
    for (const p of points) {
      const at = (await ok<ExportJson>(demo, `/v1/export?height=${p.height}`)).nodes.find((n) => n.address === ALICE);
      expect({ h: p.height, balance: at?.balance }).toEqual({ h: p.height, balance: p.balance });
    }
    expect(await ok(demo, `/v1/nodes/${ALICE}/balances?limit=1`)).toEqual({ height: 450, stakeScript, points: points.slice(-1), truncated: true });
    await fails(demo, `/v1/nodes/${MAINNET_ADDRESS}/balances`, 400, 'bad_address', /another network/);
  });

  it('pages the rejected attempts newest first, each with its reason text, filtered by reason', async () => {
    type Rejected = { txid: string; height: number; vout: number; kind: string | null; reason: string; reasonText: string };
    const newestFirst = [...expected.rejected].reverse();
    const seen: Rejected[] = [];
    let cursor: string | null = null;
    do {
      const page: { rejected: Rejected[]; nextCursor: string | null } = await ok(demo, `/v1/rejected?limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.rejected.length).toBeLessThanOrEqual(7);
      seen.push(...page.rejected);
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map(({ txid, height, vout, reason }) => ({ txid, height, vout, reason }))).toEqual(newestFirst);
    for (const r of seen) expect(r.reasonText).toBe(REASON_TEXT[r.reason as ReasonCode]);
    const tx = seen.find((r) => r.reason === 'NOT_TIP')!;
    expect(tx.kind).toBe('renewal');
    expect(seen.find((r) => r.reason === 'MALFORMED_CARRIER')!.kind).toBeNull();
    const multiple = await ok<{ rejected: Rejected[] }>(demo, '/v1/rejected?reason=MULTIPLE_ANNOUNCEMENTS');
    expect(multiple.rejected).toEqual(seen.filter((r) => r.reason === 'MULTIPLE_ANNOUNCEMENTS'));
    expect(multiple.rejected).toHaveLength(2);
    await fails(demo, '/v1/rejected?reason=NOPE', 400, 'bad_request', /reason must be equal to one of the allowed values/);

    // By stake: each decoded attempt is listed under the stake it names. The registered stakes' lists
    // hold every decoded attempt but the demo's three that name a stake which never registered.
    const byStake: Rejected[] = [];
    for (const n of expected.nodes) {
      const mine = await ok<{ recorded: boolean; stakeScript: string; rejected: Rejected[] }>(demo, `/v1/nodes/${n.address}/rejected`);
      expect([mine.recorded, mine.stakeScript]).toEqual([true, n.stakeScript]);
      for (let i = 1; i < mine.rejected.length; i++) expect(mine.rejected[i]!.height).toBeGreaterThanOrEqual(mine.rejected[i - 1]!.height);
      byStake.push(...mine.rejected);
    }
    const key = (r: Rejected): string => `${r.txid}:${r.vout}`;
    const decoded = seen.filter((r) => r.kind !== null);
    expect(new Set(byStake.map(key)).size).toBe(byStake.length);
    expect(decoded.filter((r) => !byStake.some((b) => key(b) === key(r))).map((r) => r.reason).sort()).toEqual(['COINBASE', 'TIMESTAMP_STALE', 'UNKNOWN_NODE']);
    expect(byStake.every((b) => decoded.some((r) => key(r) === key(b) && r.reason === b.reason))).toBe(true);
    expect((await ok<{ rejected: Rejected[] }>(demo, `/v1/nodes/${ALICE}/rejected`)).rejected.map((r) => r.reason)).toEqual(['ALREADY_REGISTERED']);
    await fails(demo, `/v1/nodes/${MAINNET_ADDRESS}/rejected`, 400, 'bad_address', /another network/);
    await fails(demo, '/v1/rejected?cursor=abc', 400, 'bad_request', /cursor "abc" is not one this server handed out/);
  });
});

describe('the API description and the dashboard', () => {
  it('serves an OpenAPI document generated from the route schemas, GET only', async () => {
    const doc = await ok<{ openapi: string; paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(demo, '/v1/openapi.json');
    expect(doc.openapi).toBe('3.0.3');
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/v1/diff', '/v1/events', '/v1/export', '/v1/history/active', '/v1/nodes', '/v1/nodes/{stake}', '/v1/nodes/{stake}/balances', '/v1/nodes/{stake}/history', '/v1/nodes/{stake}/rejected', '/v1/payouts', '/v1/proof/{stake}',
      '/v1/rejected', '/v1/root', '/v1/scripts/{stake}/utxos', '/v1/search', '/v1/status', '/v1/tx/{txid}',
    ]);
    for (const [path, ops] of Object.entries(doc.paths)) {
      expect({ path, methods: Object.keys(ops) }).toEqual({ path, methods: ['get'] });
      expect(Object.keys(ops.get!.responses)).toContain('200');
    }
  });

  it('gives every operation a unique operationId, names its response schemas, resolves every $ref, and declares the event stream', async () => {
    type Op = { operationId?: string; responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }> };
    const doc = await ok<{ paths: Record<string, Record<string, Op>>; components: { schemas: Record<string, unknown> }; servers: unknown[]; security: unknown[] }>(demo, '/v1/openapi.json');
    const ids = Object.values(doc.paths).flatMap((ops) => Object.values(ops).map((o) => o.operationId));
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.paths['/v1/status']!.get!.operationId).toBe('getStatus');

    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (k === '$ref' ? refs.push(x as string) : walk(x));
    };
    walk(doc);
    expect(refs.length).toBeGreaterThan(20);
    for (const r of new Set(refs)) {
      expect(r).toMatch(/^#\/components\/schemas\/[A-Z][A-Za-z]+$/);
      let at: unknown = doc;
      for (const part of r.slice(2).split('/')) at = (at as Record<string, unknown> | undefined)?.[part];
      expect({ ref: r, resolves: at !== undefined }).toEqual({ ref: r, resolves: true });
    }
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['Error', 'Status', 'Export', 'ExportNode', 'NodePage', 'Node', 'Payouts']));
    expect(doc.paths['/v1/export']!.get!.responses['200']!.content!['application/json']!.schema).toEqual({ $ref: '#/components/schemas/Export' });
    expect(Object.keys(doc.paths['/v1/events']!.get!.responses['200']!.content!)).toEqual(['text/event-stream']);
    expect([doc.servers, doc.security]).toEqual([[{ url: '/', description: 'this server' }], []]);
  });

  it('serves the dashboard page and its script with a strict content security policy', async () => {
    const page = await call(demo, '/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self';/);
    expect(page.body).toMatch(/<script src="\/dashboard\.js" defer><\/script>/);
    expect(page.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
    const js = await call(demo, '/dashboard.js');
    expect([js.statusCode, js.headers['content-type']]).toEqual([200, 'text/javascript; charset=utf-8']);
    expect(js.body).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
  });

  it('has every metric family of a static index on /metrics', async () => {
    const res = await call(demo, '/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toMatch(/^nodereg_tip_height 450$/m);
    expect(res.body).toMatch(/^nodereg_registrations\{status="active"\} 3$/m);
    expect(res.body).toMatch(/^nodereg_http_request_duration_seconds_bucket\{le="0.005",route="\/v1\/status",status="200"\} \d+$/m);
  });
});

describe('bad input', () => {
  it('a bad, wrong-network or non-stake address is a 400 on every stake route', async () => {
    for (const route of ['/v1/nodes/%s', '/v1/nodes/%s/history', '/v1/scripts/%s/utxos']) {
      const at = (s: string): string => route.replace('%s', s);
      await fails(demo, at('not-an-address'), 400, 'bad_address', /"not-an-address" is not a valid address/);
      await fails(demo, at(MAINNET_ADDRESS), 400, 'bad_address', /another network; regtest addresses start with "bcrt1"/);
      await fails(demo, at('6a' + '00'.repeat(30)), 400, 'bad_address', /is not a valid address|not a standard stake/);
    }
  });

  it('a txid that is not 64 hex digits is a 400', async () => {
    await fails(demo, `/v1/tx/${'zz'.repeat(32)}`, 400, 'bad_request', /params\/txid must match pattern/);
    await fails(demo, `/v1/tx/${'00'.repeat(31)}`, 400, 'bad_request', /params\/txid must match pattern/);
    await fails(demo, `/v1/tx/${'00'.repeat(33)}`, 400, 'bad_request', /params\/txid must match pattern/);
  });

  it('a negative, future, non-integer or non-decimal height is a 400 on every route that takes one', async () => {
    for (const base of ['/v1/root?height=', '/v1/export?height=', '/v1/nodes?at=', '/v1/payouts?from=0&to=', '/v1/history/active?to=']) {
      const name = /(\w+)=$/.exec(base)![1]!;
      await fails(demo, `${base}-1`, 400, 'bad_request', new RegExp(`^querystring/${name} must be >= 0$`));
      await fails(demo, `${base}451`, 400, 'bad_request', new RegExp(`^querystring/${name} 451 is above the index tip 450$`));
      await fails(demo, `${base}1.5`, 400, 'bad_request', /must be a whole number/);
      await fails(demo, `${base}abc`, 400, 'bad_request', /must be a whole number/);
      await fails(demo, `${base}0x10`, 400, 'bad_request', /must be a whole number/);
      await fails(demo, `${base}%20`, 400, 'bad_request', /must be a whole number/);
      await fails(demo, `${base}`, 400, 'bad_request', /must be a whole number/);
      await fails(demo, `${base}4294967296`, 400, 'bad_request', /must be <= 4294967295/);
      await fails(demo, `${base}1&${base.split('?')[1]!.split('&').pop()}2`, 400, 'bad_request', /must be integer/);
    }
    await fails(demo, '/v1/payouts?from=-1&to=3', 400, 'bad_request', /querystring\/from must be >= 0/);
    await fails(demo, '/v1/payouts?from=0&to=3&minAge=-1', 400, 'bad_request', /minAge must be >= 0/);
    await fails(demo, '/v1/payouts?from=0&to=3&minAge=2.5', 400, 'bad_request', /minAge must be a whole number/);
  });

  it('an unknown query parameter is a 400 on every route, naming the parameter and the ones the route takes', async () => {
    for (const url of [
      '/v1/status?x=1', '/v1/nodes?foo=1', `/v1/nodes/${ALICE}?x=1`, `/v1/nodes/${ALICE}/history?x=1`, `/v1/scripts/${ALICE}/utxos?x=1`,
      `/v1/tx/${'00'.repeat(32)}?x=1`, '/v1/root?h=1', '/v1/export?at=1', '/v1/payouts?from=1&to=2&min_age=1', '/v1/history/active?n=3',
      '/v1/events?since=1', '/metrics?x=1', '/v1/openapi.json?x=1', '/?x=1', '/dashboard.js?v=2', '/health/live?x=1', '/health/ready?x=1',
      '/common.js?v=1', '/node.js?v=1', `/node/${ALICE}?x=1`, '/v1/search?q=a&x=1', `/v1/nodes/${ALICE}/balances?x=1`, `/v1/nodes/${ALICE}/rejected?x=1`, '/v1/rejected?x=1',
    ]) {
      const name = /[?&]([a-z_]+)=[^&]*$/.exec(url)![1]!;
      await fails(demo, url, 400, 'bad_request', new RegExp(`^querystring/${name} is not a parameter of this route \\(it takes `));
    }
    await fails(demo, '/v1/nodes?stauts=active', 400, 'bad_request', /^querystring\/stauts is not a parameter of this route \(it takes status, at, limit, cursor, expiringWithin\)$/);
    await fails(demo, '/v1/status?x=1', 400, 'bad_request', /\(it takes none\)$/);
  });

  it('every 400 names the offending parameter', async () => {
    await fails(demo, '/v1/nodes/not-an-address', 400, 'bad_address', /^params\/stake: /);
    await fails(demo, `/v1/tx/${'zz'.repeat(32)}`, 400, 'bad_request', /^params\/txid /);
    await fails(demo, '/v1/nodes?limit=0', 400, 'bad_request', /^querystring\/limit /);
    await fails(demo, '/v1/payouts?from=1', 400, 'bad_request', /^querystring must have required property 'to'$/);
    await fails(demo, '/v1/payouts?from=9&to=460', 400, 'bad_request', /^querystring\/to 460 is above the index tip 450$/);
    await fails(demo, '/v1/history/active?from=460', 400, 'bad_request', /^querystring\/from 460 is above the index tip 450$/);
    await fails(demo, '/v1/nodes?cursor=zzz', 400, 'bad_request', /cursor "zzz"/);
  });

  it('limit 0, limit 1001, a bad status and a bad cursor are 400s', async () => {
    await fails(demo, '/v1/nodes?limit=0', 400, 'bad_request', /limit must be >= 1/);
    await fails(demo, '/v1/nodes?limit=1001', 400, 'bad_request', /limit must be <= 1000/);
    await fails(demo, '/v1/nodes?limit=ten', 400, 'bad_request', /limit must be a whole number/);
    await fails(demo, '/v1/nodes?status=alive', 400, 'bad_request', /status must be equal to one of the allowed values/);
    await fails(demo, '/v1/nodes?cursor=zzz', 400, 'bad_request', /cursor "zzz" is not one this server handed out/);
    await fails(demo, `/v1/nodes?cursor=${Buffer.from('1:2:3').toString('base64url')}`, 400, 'bad_request', /is not one this server handed out/);
    await fails(demo, '/v1/nodes?cursor=a%2Bb', 400, 'bad_request', /cursor must match pattern/);
    await fails(demo, `/v1/nodes?cursor=${'A'.repeat(65)}`, 400, 'bad_request', /cursor must NOT have more than 64 characters/);
  });

  it('from above to is a 400, and so are missing required parameters', async () => {
    await fails(demo, '/v1/payouts?from=5&to=4', 400, 'bad_request', /from \(5\) must not be above to \(4\)/);
    await fails(demo, '/v1/history/active?from=5&to=4', 400, 'bad_request', /from \(5\) must not be above to \(4\)/);
    await fails(demo, '/v1/payouts?from=1', 400, 'bad_request', /must have required property 'to'/);
    await fails(demo, '/v1/payouts', 400, 'bad_request', /must have required property/);
    await fails(demo, '/v1/history/active?points=1', 400, 'bad_request', /points must be >= 2/);
    await fails(demo, '/v1/history/active?points=1001', 400, 'bad_request', /points must be <= 1000/);
    await fails(demo, '/v1/events?lastEventId=-1', 400, 'bad_request', /lastEventId must be >= 0/);
  });

  it('an unknown route is a 404, and any method but GET is a 405: nothing mutates state', async () => {
    await fails(demo, '/v2/status', 404, 'not_found', /no route GET \/v2\/status; see \/v1\/openapi\.json/);
    await fails(demo, '/v1/nodes/a/b/c', 404, 'not_found', /no route/);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      for (const url of ['/v1/status', '/v1/nodes', `/v1/nodes/${ALICE}`, '/v1/export', '/nope']) {
        const res = await call(demo, url, { method });
        expect({ method, url, status: res.statusCode, allow: res.headers.allow, body: res.json() })
          .toEqual({ method, url, status: 405, allow: 'GET, HEAD', body: { error: 'method_not_allowed', message: 'the API is read-only: only GET is served' } });
      }
    }
    const head = await call(demo, '/v1/status', { method: 'HEAD' });
    expect([head.statusCode, head.body]).toEqual([200, '']);
  });

  it('an over-long URL is a 414, and an over-long path parameter too', async () => {
    const long = await call(demo, `/v1/nodes?cursor=${'a'.repeat(3000)}`);
    expect([long.statusCode, long.json()]).toEqual([414, { error: 'uri_too_long', message: 'URLs are limited to 2048 characters' }]);
    const param = await call(demo, `/v1/nodes/${'a'.repeat(250)}`);
    expect(param.statusCode).toBe(414);
    expect(param.json()).toEqual({ error: 'uri_too_long', message: expect.stringMatching(/exceeding the max param length/) });
  });

  it('turns away expensive reads beyond the limit with a 503 and Retry-After, while cheap routes keep answering', async () => {
    const tight = await listening(await buildServer({ db: demo.db!, params: regtest, maxHeavyRequests: 1 }));
    try {
      const answers = await Promise.all([
        ...Array.from({ length: 6 }, () => call(tight, '/v1/export')), call(tight, '/v1/payouts?from=440&to=445'), call(tight, '/v1/nodes?at=300'), call(tight, '/v1/status'),
      ]);
      const statuses = answers.map((a) => a.statusCode);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThanOrEqual(1);
      expect(statuses[8]).toBe(200);
      for (const a of answers.filter((x) => x.statusCode === 503)) {
        expect(a.headers['retry-after']).toBe('1');
        expect(a.json()).toEqual({ error: 'busy', message: '1 expensive requests (export, payouts, past heights) are already running; retry in a moment' });
      }
      expect((await call(tight, '/v1/export')).statusCode).toBe(200);
    } finally {
      await tight.server.close();
    }
  });

  it('an internal failure is a 500 with a generic message, and the stack goes to the log only', async () => {
    const idx = await tempIndex(regtest);
    const logged: string[] = [];
    const broken = await buildServer({ db: idx.db, params: regtest, log: (_lvl, _msg, fields) => logged.push(String(fields?.error)) });
    try {
      const s = await listening(broken);
      await idx.db.close();
      const res = await call(s, '/v1/export');
      expect([res.statusCode, res.json()]).toEqual([500, { error: 'internal', message: 'internal error; see the server log' }]);
      expect(logged.join('\n')).toMatch(/\n\s+at /);
    } finally {
      await broken.close();
      await idx.close();
    }
  });
});

describe('defaults and limits', () => {
  it('sends no CORS headers unless an origin is configured', async () => {
    const res = await call(demo, '/v1/status', { headers: { origin: 'https://explorer.example' } });
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    const pre = await call(demo, '/v1/status', { method: 'OPTIONS', headers: { origin: 'https://explorer.example', 'access-control-request-method': 'GET' } });
    expect([pre.statusCode, pre.headers.allow, pre.json()]).toEqual([405, 'GET, HEAD', { error: 'method_not_allowed', message: 'the API is read-only: only GET is served' }]);
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    const bare = await call(demo, '/v1/nodes', { method: 'OPTIONS' });
    expect([bare.statusCode, bare.headers.allow]).toEqual([405, 'GET, HEAD']);

    const idx = await tempIndex(regtest);
    const withCors = await buildServer({ db: idx.db, params: regtest, corsOrigin: 'https://explorer.example' });
    try {
      const open = await listening(withCors);
      const got = await call(open, '/v1/openapi.json', { headers: { origin: 'https://explorer.example' } });
      expect(got.headers['access-control-allow-origin']).toBe('https://explorer.example');
      const preflight = await call(open, '/v1/status', { method: 'OPTIONS', headers: { origin: 'https://explorer.example', 'access-control-request-method': 'GET' } });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-methods']).toBe('GET');
      // Only a preflight: a bare OPTIONS is a 405 with CORS on too.
      const bare = await call(open, '/v1/status', { method: 'OPTIONS', headers: { origin: 'https://explorer.example' } });
      expect([bare.statusCode, bare.headers.allow]).toEqual([405, 'GET, HEAD']);
    } finally {
      await withCors.close();
      await idx.close();
    }
  });

  it('`nodereg serve` binds to 127.0.0.1 unless told otherwise, and CORS is opt-in', async () => {
    const help = await noderegIn(['serve', '--help']);
    expect(help.stdout).toMatch(/--listen\s+host:port; bind 0\.0\.0\.0 explicitly to expose it\s+\[string\] \[default: "127\.0\.0\.1:8080"\]/);
    expect(help.stdout).toMatch(/--cors\s+allow these browser origins \(CORS is off by default\)/);
    expect(help.stdout).toMatch(/--explorer-url\s+the dashboard links each txid here/);
    const bad = await noderegIn(['serve', '--db', join(dir, 'never-made'), '--explorer-url', 'javascript:alert(1)//{txid}']);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/--explorer-url must be an http:\/\/ or https:\/\/ URL/)]);
  });

  it('on a real socket, huge headers get a 431 and a client too slow to send its headers is cut off', async () => {
    const base = demo.base;
    const big = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request({ host: base.hostname, port: base.port, path: '/v1/status', headers: { 'x-filler': 'a'.repeat(9000) } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(big).toEqual({ status: 431, body: JSON.stringify({ error: 'headers_too_large', message: 'request headers are limited to 8 KiB' }) });

    const started = Date.now();
    const answer = await new Promise<string>((resolve) => {
      const sock = connect(Number(base.port), base.hostname, () => sock.write('GET /v1/status HTTP/1.1\r\nHost: x\r\n'));
      let got = '';
      sock.on('data', (d) => { got += d.toString(); });
      sock.on('close', () => resolve(got));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(answer).toMatch(/\r\n\r\n\{"error":"request_timeout","message":"the request was not received in time"\}$/);
    // The 10 s headers timeout answered, not an early cut; a loaded machine may only be later.
    expect(Date.now() - started).toBeGreaterThanOrEqual(9_000);
  }, 60_000);
});
