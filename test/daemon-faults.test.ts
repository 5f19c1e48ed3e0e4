/**
 * Fault injection for `nodereg index`. A real node cannot be made to fail on
 * cue, so every test here puts a FAKE RPC server in front of a real bcoin
 * regtest node: a small HTTP proxy that forwards the daemon's JSON-RPC
 * requests, except those a script picks, which it answers with an HTTP 500
 * page, lets hang past `--rpc-timeout 1`, cuts off mid-JSON, or whose
 * `getblock` hex it corrupts. The daemon must log each fault, retry, never
 * exit, and end at the node's tip with an index equal to a recount.
 *
 * Only the tests about hangs run with the 1 s RPC timeout. On a loaded
 * machine a healthy answer can take longer than that too; the client then
 * abandons it and retries, which would add a retry (or swallow an injected
 * fault) that the test did not plan. The other tests wait as long as it
 * takes, so what they count is exactly what the proxy injected.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { ChainBuilder, MinedBlock } from '../fixtures/generator/chain.js';
import { prng } from '../fixtures/generator/random.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { Block } from 'bitcoinjs-lib';
import { scanBlock } from '../indexer/chain/scanner.js';
import { bcoinSnapshot, type BcoinNode, type BcoinSnapshot } from './helpers/bcoin.js';
import { recountOf, reorgBranch, submitAll } from './helpers/chains.js';
import { noderegIn, ROOT } from './helpers/cli.js';
import { Daemon, exportOf, rpcArgs, stopsSyncedAt, subscribed } from './helpers/daemon.js';
import { FakeBitcoindPublisher } from './helpers/zmqpub.js';

// ---------------------------------------------------------------- the fake RPC server

/** What the fake server does instead of forwarding an answer faithfully. */
type Fault =
  | 'http500' // an HTML error page, as a reverse proxy or an overloaded node sends
  | 'hang' // no answer at all, until the client gives up
  | 'hangBody' // headers and half a body, then nothing
  | 'truncatedJson' // the node's answer cut in the middle
  | 'notJsonRpc' // valid JSON that is not a JSON-RPC response
  | 'reset' // the connection closed without an answer
  | 'blockTruncated' // getblock: the hex loses its last 10 bytes
  | 'blockTrailing' // getblock: a byte too many
  | 'blockHeaderFlipped' // getblock: a header byte changed, so the block hashes differently
  | 'blockNotHex' // getblock: a result that is not hex
  | 'blockInputAltered' // getblock: an input's outpoint changed; the header (and so the hash) untouched
  | 'blockMutated'; // getblock: the last transaction repeated (odd count), so hash and merkle root still match

interface Request {
  readonly method: string;
  readonly params: unknown[];
  readonly batch: boolean;
  /** 1 for the first request of this method, 2 for the second… */
  readonly nth: number;
  /** Which HTTP request of the run carries it (1, 2, …): the calls of one batch share it. */
  readonly request: number;
}

type Script = (r: Request) => Fault | null;

const BLOCK_FAULTS: ReadonlySet<Fault> = new Set(['blockTruncated', 'blockTrailing', 'blockHeaderFlipped', 'blockNotHex', 'blockInputAltered', 'blockMutated']);

class FaultyRpcProxy {
  /** Faults injected so far, by kind. */
  readonly injected = new Map<Fault, number>();
  requests = 0;
  /** Forwarded requests whose client closed the connection before the whole answer was written. */
  abandoned = 0;
  private readonly seen = new Map<string, number>();
  private readonly hanging = new Set<ServerResponse>();
  private held: { method: string; arrived: () => void; release: Promise<void> } | null = null;

  private constructor(private readonly server: Server, readonly url: string, private readonly target: BcoinNode, private readonly script: Script) {}

  static async start(target: BcoinNode, script: Script): Promise<FaultyRpcProxy> {
    let proxy: FaultyRpcProxy | undefined;
    const server = createServer((req, res) => void proxy!.handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    proxy = new FaultyRpcProxy(server, `http://127.0.0.1:${port}/`, target, script);
    return proxy;
  }

  count(f: Fault): number {
    return this.injected.get(f) ?? 0;
  }

  get total(): number {
    return [...this.injected.values()].reduce((a, b) => a + b, 0);
  }

  /**
   * Answers the next `method` request with what the node says at once, but
   * only delivers it when `release` is called: a stale answer on its way.
   */
  holdNext(method: string): { arrived: Promise<void>; release: () => void } {
    let arrived!: () => void;
    let release!: () => void;
    const arrivedP = new Promise<void>((r) => (arrived = r));
    const releaseP = new Promise<void>((r) => (release = r));
    this.held = { method, arrived, release: releaseP };
    return { arrived: arrivedP, release };
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const parsed = JSON.parse(body) as { method: string; params?: unknown[] } | Array<{ method: string; params?: unknown[] }>;
    const first = Array.isArray(parsed) ? parsed[0]! : parsed;
    // getblock calls are counted one by one, also when the client batches them,
    // so that "the nth getblock" means the same whatever the batching; other
    // batches (getblockhash) count as one request.
    const items = Array.isArray(parsed) && first.method === 'getblock' ? parsed : [first];
    let fault: Fault | null = null;
    const blockFaults = new Map<number, Fault>();
    for (const [i, item] of items.entries()) {
      const nth = (this.seen.get(item.method) ?? 0) + 1;
      this.seen.set(item.method, nth);
      const f = this.script({ method: item.method, params: item.params ?? [], batch: Array.isArray(parsed), nth, request: this.requests });
      if (f === null) continue;
      if (BLOCK_FAULTS.has(f)) {
        if (item.method === 'getblock') blockFaults.set(i, f);
        fault ??= f;
      } else if (fault === null || BLOCK_FAULTS.has(fault)) {
        fault = f;
      }
    }
    if (fault !== null && !BLOCK_FAULTS.has(fault)) this.injected.set(fault, this.count(fault) + 1);
    for (const f of blockFaults.values()) this.injected.set(f, this.count(f) + 1);

    switch (fault) {
      case 'http500':
        res.writeHead(500, { 'Content-Type': 'text/html' });
        res.end('<html><head><title>500 Internal Server Error</title></head><body><center><h1>500 Internal Server Error</h1></center><hr><center>nginx</center></body></html>\n');
        return;
      case 'hang':
        this.hang(res);
        return;
      case 'hangBody':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.write('{"result":"');
        this.hang(res);
        return;
      case 'notJsonRpc':
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end('{"status":"ok"}\n');
        return;
      case 'reset':
        req.socket.destroy();
        return;
      default:
        break;
    }

    res.on('close', () => {
      if (!res.writableFinished) this.abandoned++;
    });
    const answer = await this.target.relay(body, req.headers.authorization ?? '');
    let text = answer.text;
    if (fault === 'truncatedJson') text = text.slice(0, Math.floor(text.length / 2));
    if (blockFaults.size > 0 && fault !== 'truncatedJson') {
      if (Array.isArray(parsed)) {
        const answers = JSON.parse(text) as Array<{ result: string }>;
        for (const [i, f] of blockFaults) answers[i] = JSON.parse(corruptBlockAnswer(JSON.stringify(answers[i]), f)) as { result: string };
        text = JSON.stringify(answers);
      } else {
        text = corruptBlockAnswer(text, blockFaults.get(0)!);
      }
    }
    const held = this.held;
    if (held && held.method === first.method) {
      this.held = null;
      held.arrived();
      await held.release;
    }
    res.writeHead(answer.status, { 'Content-Type': 'application/json' });
    res.end(text);
  }

  private hang(res: ServerResponse): void {
    this.hanging.add(res);
    res.on('close', () => this.hanging.delete(res));
  }
}

function corruptBlockAnswer(text: string, fault: Fault): string {
  const json = JSON.parse(text) as { result: string };
  const raw = Buffer.from(json.result, 'hex');
  switch (fault) {
    case 'blockTruncated':
      json.result = raw.subarray(0, raw.length - 10).toString('hex');
      break;
    case 'blockTrailing':
      json.result = Buffer.concat([raw, Buffer.of(0)]).toString('hex');
      break;
    case 'blockHeaderFlipped':
      raw[4] ^= 0x01; // inside the previous block hash
      json.result = raw.toString('hex');
      break;
    case 'blockNotHex':
      json.result = `<${json.result.slice(0, 40)}>`;
      break;
    case 'blockInputAltered': {
      // The last transaction's first outpoint now names a coin that never existed.
      const block = scanBlock(raw);
      const tx = block.txs.at(-1)!;
      if (tx.coinbase) throw new Error('blockInputAltered needs a block with a spending transaction');
      raw[tx.inputs[0]!.prevTxid.byteOffset - raw.byteOffset] ^= 0xff;
      json.result = raw.toString('hex');
      break;
    }
    case 'blockMutated': {
      // CVE-2012-2459: with an odd count, a repeated last transaction leaves the merkle root as it was.
      const block = Block.fromBuffer(raw);
      const txs = block.transactions!;
      if (txs.length < 3 || txs.length % 2 === 0) throw new Error('blockMutated needs a block with an odd number of transactions, at least 3');
      block.transactions = [...txs, txs[txs.length - 1]!];
      json.result = block.toHex();
      break;
    }
    default:
      break;
  }
  return JSON.stringify(json);
}

// ---------------------------------------------------------------- fixtures

/**
 * How long a test may wait for the daemon to reach a block, and how long a
 * test may take. Nothing here is sized by time; these only catch a hang.
 */
const WAIT_MS = 120_000;
const TEST_MS = 300_000;

const reference = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { tip: string };
const chain: ChainBuilder = demo();
const blocks = chain.bestChain();
const tip = blocks.at(-1)!;
const heightOf = new Map(blocks.map((b) => [b.hash, b.height]));

/** A second copy of the demo whose best chain a longer branch replaces, forking 10 blocks below the tip. */
function reorgedDemo(): { main: MinedBlock[]; side: ChainBuilder } {
  const c = demo();
  const main = c.bestChain();
  return { main, side: reorgBranch(c) };
}
const reorged = reorgedDemo();
let reorgedReference: unknown;

let shared: BcoinNode;
/** Blocks 1..300 on disk once: the shared node and the cases with a node of their own start from a copy. */
let at300: BcoinSnapshot;
let dir: string;
let proxy: FaultyRpcProxy | undefined;
let daemon: Daemon | undefined;
const extraNodes: BcoinNode[] = [];
const publishers: FakeBitcoindPublisher[] = [];

beforeAll(async () => {
  expect(await recountOf(chain)).toEqual(reference);
  reorgedReference = await recountOf(reorged.side);
  expect(reorgedReference).not.toEqual(reference);
  at300 = await bcoinSnapshot((n) => submitAll(n, blocks.slice(1, 301)));
  shared = await at300.start();
  await submitAll(shared, blocks.slice(301));
}, TEST_MS);
afterAll(async () => {
  await shared?.stop();
  at300?.remove();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-dfault-'));
});
afterEach(async () => {
  await daemon?.kill();
  await proxy?.close();
  for (const p of publishers.splice(0)) p.close();
  for (const n of extraNodes.splice(0)) await n.stop();
  daemon = undefined;
  proxy = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** An RPC timeout no healthy answer reaches, however loaded the machine. */
const PATIENT = 120;

/** Starts the daemon against the fake RPC server; hang tests pass an `rpcTimeout` of 1 s. */
/** A failed sync pass is tried again after 20 ms, not the default 500 ms doubling (`--sync-retry-ms`). */
const QUICK_SYNC_RETRY = ['--sync-retry-ms', '20'];

function daemonVia(p: FaultyRpcProxy, node: BcoinNode, db: string, extra: string[] = [], rpcTimeout = PATIENT): Daemon {
  daemon = new Daemon([
    ...rpcArgs(node, p.url), '--rpc-timeout', String(rpcTimeout),
    '--db', db, ...(extra.includes('--poll-interval') ? [] : ['--poll-interval', '100']), ...extra,
  ], { waitMs: WAIT_MS });
  return daemon;
}

/** The daemon stayed up through every fault, stops cleanly, and its index equals the recount. */
async function survivedAndIndexed(d: Daemon, db: string, end: MinedBlock = tip, expected: unknown = reference): Promise<void> {
  await stopsSyncedAt(d, db, end, expected);
  // The readers run in-process (see noderegIn): the process under test is the daemon.
  const root = await noderegIn(['root', '--db', db, '--json']);
  expect(root.status).toBe(0);
  expect((JSON.parse(root.stdout) as { tip: string }).tip).toBe(end.hash);
}

describe('nodereg index behind a fake RPC server that injects faults', () => {
  it('retries HTTP 500 pages from the fake RPC server, within the client\'s retry budget before first contact and at every call after it', async () => {
    proxy = await FaultyRpcProxy.start(shared, (r) => {
      // The first getblockchaininfo fails five times: the client's five retries
      // cover it. A sixth would end the run (see daemon-hostile-node).
      if (r.method === 'getblockchaininfo' && r.nth <= 5) return 'http500';
      if (r.method === 'getblockhash' && r.batch && r.nth === 2) return 'http500';
      if (r.method === 'getblock' && r.nth === 150) return 'http500';
      return null;
    });
    const db = join(dir, 'db');
    // Retries are counted, not timed: the first comes after 10 ms, not the default 250 ms (which add up to about 8 s for five).
    const d = daemonVia(proxy, shared, db, ['--rpc-backoff-ms', '10']);
    await survivedAndIndexed(d, db);
    expect(proxy.count('http500')).toBe(5 + 1 + 1);
    const retried = d.errors('rpc call failed; retrying');
    // Five retries of the first call, then one for each of the other two faults.
    expect(retried.length).toBe(5 + 1 + 1);
    expect(retried.every((e) => /answered \S+( \(batch of \d+\))? with HTTP 500 \(500 Internal Server Error 500 Internal Server Error nginx\)/.test(e))).toBe(true);
    expect(d.errors('sync failed; will retry')).toEqual([]);
    expect(d.has('connected to node')).toBe(true);
  }, TEST_MS);

  it('abandons calls that the fake RPC server leaves hanging past --rpc-timeout 1, and retries them', async () => {
    let stuckMidBody: number | null = null;
    const stuckBlocks = new Set<string>();
    let silent = false;
    proxy = await FaultyRpcProxy.start(shared, (r) => {
      if (r.method === 'getblockchaininfo' && r.nth === 1) return 'hang';
      if (r.method === 'getblockhash' && r.batch && r.nth === 3) return 'hangBody';
      // Two getblock requests, one stuck mid-body, one silent: the request that carries the
      // 200th getblock, and the next request that asks for other blocks (however the client
      // batched them). Not the stuck request's own retry, which can come first when nothing
      // else is in flight: it asks for the same blocks, and hanging it too would make one
      // call time out twice instead of two calls once each.
      if (r.method === 'getblock' && r.nth >= 200 && stuckMidBody === null) stuckMidBody = r.request;
      if (r.method === 'getblock' && r.request === stuckMidBody) {
        stuckBlocks.add(String(r.params[0]));
        return 'hangBody';
      }
      if (r.method === 'getblock' && stuckMidBody !== null && r.request > stuckMidBody && !silent && !stuckBlocks.has(String(r.params[0]))) {
        silent = true;
        return 'hang';
      }
      return null;
    });
    const db = join(dir, 'db');
    const d = daemonVia(proxy, shared, db, [], 1);
    await survivedAndIndexed(d, db);
    expect([proxy.count('hang'), proxy.count('hangBody')]).toEqual([2, 2]);
    const timeouts = d.errors('rpc call failed; retrying').filter((e) => /did not answer \S+( \(batch of \d+\))? within 1 s/.test(e));
    // Each of the four hung calls timed out once. A healthy answer slower than 1 s (a loaded
    // machine) also times out, but only one the client really gave up on.
    expect(timeouts.filter((e) => /did not answer getblockchaininfo /.test(e)).length).toBeGreaterThanOrEqual(1);
    expect(timeouts.filter((e) => /did not answer getblockhash /.test(e)).length).toBeGreaterThanOrEqual(1);
    expect(timeouts.filter((e) => /did not answer getblock /.test(e)).length).toBeGreaterThanOrEqual(2);
    expect(timeouts.length).toBeLessThanOrEqual(4 + proxy.abandoned);
  }, TEST_MS);

  it('retries answers from the fake RPC server that are cut off mid-JSON, JSON but not JSON-RPC, or a getblock result that is not hex', async () => {
    // Three getblock requests are cut off, picked by request whatever the client's batching: from the
    // 10th getblock on, each request whose first block no request cut off before asked for. So they
    // are three different requests, and none is the retry of one cut off (a retry asks for the same
    // blocks, and goes through). Once all three are cut off, the 300th getblock or a later one (in
    // a request not cut off) answers a result that is not hex.
    let request = 0;
    let cutting = false;
    let cuts = 0;
    let notHex = false;
    const cut = new Set<string>();
    proxy = await FaultyRpcProxy.start(shared, (r) => {
      if (r.method === 'getblock') {
        const hash = String(r.params[0]);
        if (r.request !== request) {
          // The first getblock of a request decides for the whole request.
          request = r.request;
          cutting = cuts < 3 && r.nth >= 10 && !cut.has(hash);
          if (cutting) cuts++;
        }
        if (cutting) {
          cut.add(hash);
          return 'truncatedJson';
        }
        if (cuts === 3 && !notHex && r.nth >= 300) {
          notHex = true;
          return 'blockNotHex';
        }
        return null;
      }
      if (r.method === 'getblockhash' && r.batch && r.nth === 1) return 'truncatedJson';
      if (r.method === 'getbestblockhash' && r.nth === 1) return 'truncatedJson';
      if (r.method === 'getblockchaininfo' && r.nth === 1) return 'notJsonRpc';
      return null;
    });
    const db = join(dir, 'db');
    const d = daemonVia(proxy, shared, db, QUICK_SYNC_RETRY);
    await survivedAndIndexed(d, db);
    expect([proxy.count('truncatedJson'), proxy.count('notJsonRpc'), proxy.count('blockNotHex')]).toEqual([5, 1, 1]);
    expect(d.errors('rpc call failed; retrying').filter((e) => /with a body that is not JSON/.test(e)).length).toBe(5);
    // JSON that is not JSON-RPC is retried by the client, as a page that is not JSON is;
    // a result of the wrong shape is not, and the follower retries the whole sync.
    expect(d.errors('rpc call failed; retrying').filter((e) => /answered getblockchaininfo \(HTTP 200\) with JSON that is not a JSON-RPC response/.test(e)).length).toBe(1);
    expect(d.errors('sync failed; will retry')).toEqual([expect.stringMatching(/answered getblock without hex/)]);
  }, TEST_MS);

  it('refetches blocks whose hex the fake RPC server corrupted (truncated, a byte too many, a changed header), after the base delay each time since the catch-up progressed in between', async () => {
    const corrupt: Array<[number, Fault]> = [[150, 'blockTruncated'], [300, 'blockTrailing'], [449, 'blockHeaderFlipped']];
    // Each corruption is armed once the block of the one before has been served again
    // (clean, to the sync after the failure): catch-up may read far ahead, and a copy
    // fetched ahead by a failing sync is thrown away, so a corruption armed from the
    // start could land in a copy that no sync ever connects.
    let next = 0;
    let awaitingRefetch: number | null = null;
    proxy = await FaultyRpcProxy.start(shared, (r) => {
      if (r.method !== 'getblock') return null;
      const h = heightOf.get(String(r.params[0]))!;
      if (h === awaitingRefetch) awaitingRefetch = null;
      else if (awaitingRefetch === null && next < corrupt.length && h === corrupt[next]![0]) {
        awaitingRefetch = h;
        return corrupt[next++]![1];
      }
      return null;
    });
    const db = join(dir, 'db');
    const d = daemonVia(proxy, shared, db, ['--sync-retry-ms', '40']);
    await survivedAndIndexed(d, db);
    // Exactly three failures are guaranteed because the client never abandons an answer here
    // (a timeout would drop a corrupted answer unread, and its refetch is clean), and because
    // each corruption is served only after the previous corrupted block was fetched again.
    expect(proxy.total).toBe(3);
    const failures = d.lines.filter((l) => l.msg === 'sync failed; will retry');
    expect(failures.map((l) => l.error)).toEqual([
      expect.stringMatching(/^truncated .* at byte offset \d+$/),
      expect.stringMatching(/^1 trailing bytes after the last transaction at byte offset \d+$/),
      expect.stringMatching(new RegExp(`^the node returned block [0-9a-f]{64} for hash ${blocks[449]!.hash}`)),
    ]);
    // Each failure came 150 blocks after the last one: not a node failing again and again.
    expect(failures.map((l) => l.retryInMs)).toEqual([40, 40, 40]);
  }, TEST_MS);

  it('never lets a block from the fake RPC server whose transactions do not match its header, or repeat some under the same root, into the index, and leaves the database usable', async () => {
    // A block with a spending transaction after another one: altering the last one's outpoint
    // keeps the block parseable and its hash right, but its merkle root no longer matches.
    const victim = blocks.find((b) => b.txids.length >= 3)!;
    // A mutated copy keeps hash and root; its repeated transaction would spend coins already spent.
    const odd = blocks.find((b) => b.txids.length >= 3 && b.txids.length % 2 === 1)!;
    let altered = false;
    let mutated = false;
    proxy = await FaultyRpcProxy.start(shared, (r) => {
      if (r.method !== 'getblock') return null;
      if (!altered && r.params[0] === victim.hash) {
        altered = true;
        return 'blockInputAltered';
      }
      if (!mutated && r.params[0] === odd.hash) {
        mutated = true;
        return 'blockMutated';
      }
      return null;
    });
    const db = join(dir, 'db');
    const d = daemonVia(proxy, shared, db, QUICK_SYNC_RETRY);
    const outcome = await d.waitSynced(tip).then(
      () => 'synced',
      (err: Error) => (d.alive ? `not synced: ${err.message.split('\n')[0]}` : `exited with code ${d.child.exitCode}: ${d.lines.filter((l) => l.level === 'raw').map((l) => l.msg).join(' ')}`),
    );
    await d.stop();
    // Whatever the daemon did, the database must still be the chain's: a clean run from it ends at the recount.
    const clean = new Daemon([...rpcArgs(shared), '--db', db, '--until-synced']);
    daemon = clean;
    const cleanExit = await clean.exited;
    const indexEqualsRecount = cleanExit.code === 0 ? isDeepStrictEqual(await exportOf(db), reference) : clean.tail(3);
    expect({ victim: victim.height, altered, mutated, outcome, cleanExit, indexEqualsRecount })
      .toEqual({ victim: victim.height, altered: true, mutated: true, outcome: 'synced', cleanExit: { code: 0, signal: null }, indexEqualsRecount: true });
  }, TEST_MS);

  it('survives a seeded random mix of every transient fault from the fake RPC server while the chain grows and reorganises', async () => {
    const node = await at300.start();
    extraNodes.push(node);
    const { main, side } = reorged;
    // The same demo: the node's 300 blocks are main's first 300 (submitting the rest checks it).
    expect(await node.rpc('getblockhash', [300])).toBe(main[300]!.hash);
    const rand = prng(0xfa017);
    // Faults the client retries by itself, and a few that fail a whole sync (a block that
    // does not parse, JSON that is not JSON-RPC): few, since each doubles the follower's backoff.
    const quick: Fault[] = ['http500', 'http500', 'hang', 'hangBody', 'truncatedJson', 'reset'];
    const slow: Fault[] = ['notJsonRpc', 'blockTruncated', 'blockTrailing', 'blockHeaderFlipped', 'blockNotHex'];
    let slowLeft = 2;
    proxy = await FaultyRpcProxy.start(node, (r) => {
      if (rand() >= 0.05) return null;
      if (r.method === 'getblock' && slowLeft > 0 && rand() < 0.4) {
        slowLeft--;
        return slow[Math.floor(rand() * slow.length)]!;
      }
      const f = quick[Math.floor(rand() * quick.length)]!;
      // A hang costs a whole second: keep hangs rarer than the rest.
      return (f === 'hang' || f === 'hangBody') && rand() < 0.75 ? 'http500' : f;
    });
    const db = join(dir, 'db');
    const d = daemonVia(proxy, node, db, QUICK_SYNC_RETRY, 1);
    await d.waitSynced(main[300]!);
    await submitAll(node, main.slice(301));
    await d.waitSynced(main.at(-1)!);
    const fresh = side.chainBlocks().filter((b) => b.height > main.length - 1 - 10);
    await submitAll(node, fresh);
    await d.waitFor('reorg done', { depth: 10 });
    await survivedAndIndexed(d, db, side.tip, reorgedReference);
    const injected = Object.fromEntries(proxy.injected);
    console.log(`random faults: ${proxy.total} of ${proxy.requests} requests ${JSON.stringify(injected)}`);
    expect(proxy.total).toBeGreaterThanOrEqual(15);
    expect(new Set(proxy.injected.keys()).size).toBeGreaterThanOrEqual(5);
    expect(d.lines.filter((l) => l.level === 'error' || l.level === 'raw')).toEqual([]);
  }, TEST_MS);

  it('does not lose a ZMQ notification that arrives while a stale getbestblockhash answer from the fake RPC server is on its way', async () => {
    const node = await at300.start();
    extraNodes.push(node);
    await submitAll(node, blocks.slice(301, 441));
    const pub = await FakeBitcoindPublisher.bind();
    publishers.push(pub);
    proxy = await FaultyRpcProxy.start(node, () => null);
    const db = join(dir, 'db');
    const d = daemonVia(proxy, node, db, ['--zmq', pub.endpoint, '--poll-interval', '600000', '--log-level', 'debug']);
    await d.waitSynced(blocks[440]!);
    await subscribed(pub, d, blocks[440]!);

    // Block 441 wakes the daemon; the node's answer to its closing getbestblockhash (441) is held back…
    const stale = proxy.holdNext('getbestblockhash');
    await submitAll(node, [blocks[441]!]);
    await pub.publishSequence(blocks[441]!.hash, 'C');
    await stale.arrived;
    // …while block 442 is connected and announced, and the announcement reaches the daemon.
    await submitAll(node, [blocks[442]!]);
    await pub.publishSequence(blocks[442]!.hash, 'C');
    await d.waitFor('zmq block notification', { hash: blocks[442]!.hash });
    stale.release();
    // The stale answer says the index is at the tip; only the notification knows better
    // (the next poll is ten minutes away, far beyond the wait).
    await d.waitSynced(blocks[442]!);
    expect(await d.stop()).toEqual({ code: 0, signal: null });
  }, TEST_MS);
});
