/**
 * The ZMQ path of `nodereg index` with real parts: a real bcoin regtest node
 * (which has no ZMQ of its own) holds the chain, and a real zeromq publisher
 * in this process announces, in bitcoind's wire format, the blocks the test
 * submits to it. The daemon polls only every 10 minutes, so it learns of new
 * blocks through ZMQ alone (a gap, a restart or a reconnect wakes it too):
 * a lost or misread notification shows up as a daemon stuck below the tip.
 * DESIGN.md §3: "ZMQ is only a wake-up call; RPC is the truth."
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import type { ChainBuilder, MinedBlock } from '../fixtures/generator/chain.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { recountOf, submitAll } from './helpers/chains.js';
import { CLI, noderegAsync, ROOT } from './helpers/cli.js';
import { FakeBitcoindPublisher, sleep } from './helpers/zmqpub.js';

interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

/** A spawned `nodereg index --log-json`, its log parsed line by line. */
class Daemon {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';
  private raw = '';

  constructor(args: string[]) {
    this.child = spawn(process.execPath, [CLI, 'index', ...args, '--log-json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.take(d));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  private take(chunk: string): void {
    this.raw += chunk;
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) {
      try {
        this.lines.push(JSON.parse(p) as LogLine);
      } catch {
        this.lines.push({ level: 'raw', msg: p });
      }
    }
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  has(msg: string, fields: Record<string, unknown> = {}): boolean {
    return this.lines.some((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v));
  }

  count(msg: string, fields: Record<string, unknown> = {}): number {
    return this.lines.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v)).length;
  }

  /** The last height the daemon reported as synced with the node, or null. */
  syncedHeight(): number | null {
    const s = this.lines.filter((l) => l.msg === 'synced with node').at(-1);
    return s ? (s.height as number) : null;
  }

  tail(n = 40): string {
    return this.raw.split('\n').filter((l) => !l.includes('"connected block"')).slice(-n).join('\n');
  }

  async waitFor(msg: string, fields: Record<string, unknown> = {}, ms = 15_000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.has(msg, fields)) {
      if (!this.alive) throw new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) before logging ${msg} ${JSON.stringify(fields)}:\n${this.tail()}`);
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${msg} ${JSON.stringify(fields)}:\n${this.tail()}`);
      await sleep(10);
    }
  }

  waitSynced(b: MinedBlock, ms?: number): Promise<void> {
    return this.waitFor('synced with node', { height: b.height, hash: b.hash }, ms);
  }

  async stop(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

const reference = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { height: number; tip: string };
const chain: ChainBuilder = demo();
const blocks = chain.bestChain();
const tip = blocks.at(-1)!;
/** Height the node holds when each daemon starts; the rest arrives while it runs. */
const START = 300;

/**
 * bcoin's regtest seed is 127.0.0.1:48444 and `--listen=false` does not stop
 * outbound connections: without this, any other bcoin on the machine that
 * listens there feeds its blocks to the test's node ("rejected: duplicate").
 */
const ISOLATED = { args: ['--only=127.0.0.1:1', '--seeds=127.0.0.1:1'] };

let dir: string;
let node: BcoinNode | undefined;
let pub: FakeBitcoindPublisher | undefined;
let daemon: Daemon | undefined;

beforeAll(() => {
  // The live index must end equal to a recount of the same blocks.
  expect(recountOf(chain)).toEqual(reference);
  expect(reference.tip).toBe(tip.hash);
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-dzmq-'));
});
afterEach(async () => {
  if (daemon?.alive) daemon.child.kill('SIGKILL');
  await daemon?.exited;
  pub?.close();
  await node?.stop();
  daemon = undefined;
  pub = undefined;
  node = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const rpcArgs = (n: BcoinNode): string[] => ['--network', 'regtest', '--rpc', n.url, '--rpc-user', 'x', '--rpc-password', n.apiKey];

/** A bcoin node holding blocks 1..START, a publisher, and a daemon synced at START and provably subscribed. */
async function setUp(): Promise<{ node: BcoinNode; pub: FakeBitcoindPublisher; daemon: Daemon; db: string }> {
  node = await startBcoin(ISOLATED);
  await submitAll(node, blocks.slice(1, START + 1));
  pub = await FakeBitcoindPublisher.bind();
  const db = join(dir, 'db');
  daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', pub.endpoint, '--poll-interval', '600000', '--log-level', 'debug']);
  await daemon.waitSynced(blocks[START]!);
  await subscribed(pub, daemon, blocks[START]!);
  return { node, pub, daemon, db };
}

/**
 * ZMQ's slow joiner: whatever is published before the subscription reaches
 * the publisher is dropped. Announces the block the daemon already has until
 * the daemon has seen one announcement (harmless: it resyncs and finds
 * nothing new), so the test's own notifications cannot be lost that way.
 */
async function subscribed(p: FakeBitcoindPublisher, d: Daemon, at: MinedBlock): Promise<void> {
  const end = Date.now() + 5000;
  while (!d.has('zmq block notification')) {
    if (Date.now() > end) throw new Error(`the daemon never received a ZMQ message:\n${d.tail()}`);
    await p.publishSequence(at.hash, 'C');
    await sleep(25);
  }
  await settle();
}

/**
 * Lets notifications already on their way be handled, so that a wake-up the
 * test caused earlier cannot pick up blocks it submits next without one.
 */
const settle = (): Promise<void> => sleep(150);

/** Submits one block to bcoin, then announces it as bitcoind would: `sequence` hash + 'C'. */
async function connectAndNotify(p: FakeBitcoindPublisher, b: MinedBlock): Promise<void> {
  await submitAll(node!, [b]);
  await p.publishSequence(b.hash, 'C');
}

/** Nothing but polling could move the daemon now: proves it stays put without a notification. */
async function staysAt(d: Daemon, height: number, ms = 600): Promise<void> {
  await sleep(ms);
  expect(d.syncedHeight()).toBe(height);
}

async function exportOf(db: string): Promise<unknown> {
  const res = await noderegAsync(['export', '--db', db]);
  if (res.status !== 0) throw new Error(`export failed: ${res.stderr}`);
  return JSON.parse(res.stdout) as unknown;
}

/** The case's common ending: index at the node's tip, stopped cleanly, export equal to the recount. */
async function endsAtTheTip(d: Daemon, db: string, expected: unknown = reference, end: MinedBlock = tip): Promise<void> {
  expect(await node!.rpc('getbestblockhash')).toBe(end.hash);
  await d.waitSynced(end);
  await d.stop();
  expect(await d.exited).toEqual({ code: 0, signal: null });
  expect(d.has('stopped', { height: end.height })).toBe(true);
  expect(await exportOf(db)).toEqual(expected);
}

const lostWakes = (d: Daemon): string[] =>
  d.lines.filter((l) => l.msg === 'zmq notifications may have been lost; resyncing').map((l) => String(l.reason));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

describe('nodereg index woken by ZMQ notifications of a real bcoin node\'s blocks', () => {
  it('follows block-by-block notifications in order to the tip, never suspecting a loss', async () => {
    const { pub, daemon, db } = await setUp();
    for (const b of blocks.slice(START + 1)) {
      await connectAndNotify(pub, b);
      // Every 30 blocks, let it catch up: only the notifications can have told it.
      if (b.height % 30 === 0) await daemon.waitSynced(b);
    }
    await endsAtTheTip(daemon, db);
    expect(lostWakes(daemon)).toEqual([]);
    expect(daemon.count('zmq block notification')).toBeGreaterThanOrEqual(blocks.length - 1 - START);
  });

  it('resyncs after dropped notifications once a message with a jumped sequence number arrives', async () => {
    const { pub, daemon, db } = await setUp();
    const dropped = blocks.slice(START + 1, START + 40);
    // setUp settled: no wake-up is pending.
    await submitAll(node!, dropped);
    pub.skip('sequence', dropped.length);
    await staysAt(daemon, START);

    const next = blocks[START + 40]!;
    const seq = pub.peekSeq('sequence');
    await connectAndNotify(pub, next);
    await daemon.waitSynced(next);
    expect(daemon.has('zmq sequence gap', { expected: seq - dropped.length, got: seq })).toBe(true);
    expect(lostWakes(daemon)).toEqual(['gap']);

    // A second, one-message gap near the end.
    for (const b of blocks.slice(START + 41, -2)) await connectAndNotify(pub, b);
    await daemon.waitSynced(blocks.at(-3)!);
    await settle();
    await submitAll(node!, [blocks.at(-2)!]);
    pub.skip('sequence', 1);
    await connectAndNotify(pub, tip);
    await endsAtTheTip(daemon, db);
    expect(lostWakes(daemon)).toEqual(['gap', 'gap']);
  });

  it('resyncs when the sequence number starts again at 0, as after a node restart', async () => {
    const { pub, daemon, db } = await setUp();
    for (const b of blocks.slice(START + 1, START + 20)) await connectAndNotify(pub, b);
    await daemon.waitSynced(blocks[START + 19]!);
    await settle();
    const last = pub.peekSeq('sequence') - 1;
    // Blocks the node connected while "restarting": nobody announced them.
    await submitAll(node!, blocks.slice(START + 20, START + 60));
    await staysAt(daemon, START + 19);
    pub.reset('sequence');
    await connectAndNotify(pub, blocks[START + 60]!);
    await daemon.waitSynced(blocks[START + 60]!);
    expect(daemon.has('zmq publisher restarted', { topic: 'sequence', last })).toBe(true);
    expect(lostWakes(daemon)).toEqual(['restart']);

    for (const b of blocks.slice(START + 61)) await connectAndNotify(pub, b);
    await endsAtTheTip(daemon, db);
    expect(lostWakes(daemon)).toEqual(['restart']);
  });

  it('logs garbage frames interleaved with the notifications (wrong part count, 3-byte sequence, 31-byte hash, bad label) and keeps following', async () => {
    const { pub, daemon, db } = await setUp();
    const notice = (b: MinedBlock, label = 'C'): Buffer => Buffer.concat([Buffer.from(b.hash, 'hex'), Buffer.from(label, 'latin1')]);
    const garbage: Array<{ reason: string; send: (b: MinedBlock) => Promise<void> }> = [
      { reason: 'part-count', send: (b) => pub.publishRaw(['sequence', notice(b)]) },
      { reason: 'part-count', send: (b) => pub.publishRaw(['sequence', notice(b), Buffer.alloc(4), Buffer.alloc(0)]) },
      { reason: 'seq-size', send: (b) => pub.publishRaw(['sequence', notice(b), Buffer.alloc(3)]) },
      // The envelope of the next two is valid, so they take a sequence number, as bitcoind's would.
      { reason: 'body-size', send: (b) => pub.publishRaw(['sequence', notice(b).subarray(1), pub.takeSeq('sequence')]) },
      { reason: 'bad-label', send: (b) => pub.publishRaw(['sequence', notice(b, 'X'), pub.takeSeq('sequence')]) },
    ];
    const sent: string[] = [];
    for (const b of blocks.slice(START + 1)) {
      const check = b.height % 25 === 0;
      if (check) {
        await daemon.waitSynced(blocks[b.height - 1]!);
        await settle();
      }
      await submitAll(node!, [b]);
      // Garbage first, then the real notification: the garbage alone must not wake the daemon.
      const g = garbage[sent.length % garbage.length]!;
      await g.send(b);
      sent.push(g.reason);
      if (check) await staysAt(daemon, b.height - 1, 200);
      await pub.publishSequence(b.hash, 'C');
      if (check) await daemon.waitSynced(b);
    }
    await endsAtTheTip(daemon, db);
    const logged = daemon.lines.filter((l) => l.msg === 'zmq garbage message');
    expect(logged.map((l) => String(l.reason))).toEqual(sent);
    expect(logged.every((l) => l.level === 'warn')).toBe(true);
    expect(lostWakes(daemon)).toEqual([]);
  });

  it('catches up when the publisher goes away and comes back on the same endpoint, counting from 0 again', async () => {
    const { pub: first, daemon, db } = await setUp();
    for (const b of blocks.slice(START + 1, START + 10)) await connectAndNotify(first, b);
    await daemon.waitSynced(blocks[START + 9]!);
    await settle();
    const endpoint = first.endpoint;
    first.close();
    pub = undefined;
    await daemon.waitFor('zmq publisher disconnected');

    // The node goes on without a publisher: nobody tells the daemon.
    await submitAll(node!, blocks.slice(START + 10, START + 50));
    await staysAt(daemon, START + 9);

    pub = await rebind(endpoint);
    // The reconnection alone is a wake-up: what was published meanwhile is lost.
    await daemon.waitFor('zmq reconnected');
    await daemon.waitSynced(blocks[START + 49]!);
    expect(lostWakes(daemon)).toEqual(['reconnect']);

    // The new publisher counts from 0: a restart to the listener, and a resync.
    for (const b of blocks.slice(START + 50)) await connectAndNotify(pub, b);
    await endsAtTheTip(daemon, db);
    expect(lostWakes(daemon)).toEqual(['reconnect', 'restart']);
  });

  it('follows a reorg announced as bitcoind does, with D for each disconnected block and C for each connected one', async () => {
    const side = chain.fork(chain.height - 10);
    const ivan = side.account('ivan', 'p2wpkh');
    side.wallet.pay(side.miner, [payTo(ivan, 50n * 100_000_000n)]);
    side.mine();
    side.wallet.pay(ivan, [carrier(newNode(ivan, side.nextTime()))]);
    side.mine();
    side.mineEmpty(10);
    const expected = recountOf(side);
    expect(expected).not.toEqual(reference);

    const { pub, daemon, db } = await setUp();
    for (const b of blocks.slice(START + 1)) await connectAndNotify(pub, b);
    await daemon.waitSynced(tip);

    const fresh = side.chainBlocks().filter((b) => b.height > chain.height - 10);
    await submitAll(node!, fresh);
    for (const b of blocks.slice(chain.height - 9).reverse()) await pub.publishSequence(b.hash, 'D');
    for (const b of fresh) await pub.publishSequence(b.hash, 'C');
    await daemon.waitFor('reorg done', { depth: 10, forkHeight: chain.height - 10 });
    await endsAtTheTip(daemon, db, expected, side.tip);
    expect(lostWakes(daemon)).toEqual([]);
  });

  it('reaches the tip by polling alone when ZMQ stays silent (no publisher at all)', async () => {
    node = await startBcoin(ISOLATED);
    await submitAll(node, blocks.slice(1, START + 1));
    const db = join(dir, 'db');
    daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', `tcp://127.0.0.1:${await freePort()}`, '--poll-interval', '200']);
    await daemon.waitSynced(blocks[START]!);
    for (let h = START + 1; h < blocks.length; h += 50) {
      await submitAll(node, blocks.slice(h, h + 50));
      await daemon.waitSynced(blocks[Math.min(h + 49, blocks.length - 1)]!);
    }
    await endsAtTheTip(daemon, db);
    expect(daemon.has('zmq connected')).toBe(false);
    expect(lostWakes(daemon)).toEqual([]);
  });
});

/** Binds a new publisher to a closed one's endpoint, retrying while the old socket lets go of the port. */
async function rebind(endpoint: string): Promise<FakeBitcoindPublisher> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await FakeBitcoindPublisher.bind(endpoint);
    } catch (err) {
      if (attempt > 50) throw err;
      await sleep(50);
    }
  }
}
