/**
 * The ZMQ path of `nodereg index` with real parts: a real bcoin regtest node
 * (which has no ZMQ of its own) holds the chain, and a real zeromq publisher
 * in this process announces, in bitcoind's wire format, the blocks the test
 * submits to it. The daemon polls only every 10 minutes, so it learns of new
 * blocks through ZMQ alone (a gap, a restart or a reconnect wakes it too):
 * a lost or misread notification shows up as a daemon stuck below the tip.
 * docs/spec.md §3: "ZMQ is only a wake-up call; RPC is the truth."
 */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainBuilder, MinedBlock } from '../fixtures/generator/chain.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { bcoinSnapshot, freePort, type BcoinNode, type BcoinSnapshot } from './helpers/bcoin.js';
import { recountOf, reorgBranch, submitAll } from './helpers/chains.js';
import { ROOT } from './helpers/cli.js';
import { Daemon, rpcArgs, settle, stopsSyncedAt, subscribed } from './helpers/daemon.js';
import { FakeBitcoindPublisher, sleep } from './helpers/zmqpub.js';

const reference = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { height: number; tip: string };
const chain: ChainBuilder = demo();
const blocks = chain.bestChain();
const tip = blocks.at(-1)!;
/** Height the node holds when each daemon starts; the rest arrives while it runs. */
const START = 300;
/** Only a hang bound: a loaded machine once took more than 15 s to sync 300 blocks here. */
const WAIT = { waitMs: 120_000 };

let dir: string;
let node: BcoinNode | undefined;
let pub: FakeBitcoindPublisher | undefined;
let daemon: Daemon | undefined;
/** Blocks 1..START on disk once: every case starts its own node on a copy. */
let atStart: BcoinSnapshot;
/**
 * An index of the same blocks, written once by a daemon run to the node's
 * tip: the cases that start synced at START start their daemon on a copy.
 * The catch-up is not what they test (the polling case still does one).
 */
let indexAtStart: string;

beforeAll(async () => {
  // The live index must end equal to a recount of the same blocks.
  expect(await recountOf(chain)).toEqual(reference);
  expect(reference.tip).toBe(tip.hash);
  atStart = await bcoinSnapshot((n) => submitAll(n, blocks.slice(1, START + 1)));
  indexAtStart = mkdtempSync(join(tmpdir(), 'nodereg-dzmq-index-'));
  const n = await atStart.start();
  try {
    const built = new Daemon([...rpcArgs(n), '--db', indexAtStart, '--until-synced'], WAIT);
    expect(await built.exited).toEqual({ code: 0, signal: null });
    expect(built.has('synced with node', { height: START, hash: blocks[START]!.hash })).toBe(true);
  } finally {
    await n.stop();
  }
}, 300_000);
afterAll(() => {
  atStart?.remove();
  if (indexAtStart) rmSync(indexAtStart, { recursive: true, force: true });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-dzmq-'));
});
afterEach(async () => {
  await daemon?.kill();
  pub?.close();
  await node?.stop();
  daemon = undefined;
  pub = undefined;
  node = undefined;
  rmSync(dir, { recursive: true, force: true });
});

/** A bcoin node holding blocks 1..START, a publisher, and a daemon (on a copy of the index at START) synced there and provably subscribed. */
async function setUp(): Promise<{ node: BcoinNode; pub: FakeBitcoindPublisher; daemon: Daemon; db: string }> {
  node = await atStart.start();
  expect(await node.rpc('getblockcount')).toBe(START);
  pub = await FakeBitcoindPublisher.bind();
  const db = join(dir, 'db');
  cpSync(indexAtStart, db, { recursive: true });
  daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', pub.endpoint, '--poll-interval', '600000', '--log-level', 'debug'], WAIT);
  await daemon.waitSynced(blocks[START]!);
  await subscribed(pub, daemon, blocks[START]!);
  return { node, pub, daemon, db };
}

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

/** The case's common ending: index at the node's tip, stopped cleanly, export equal to the recount. */
async function endsAtTheTip(d: Daemon, db: string, expected: unknown = reference, end: MinedBlock = tip): Promise<void> {
  expect(await node!.rpc('getbestblockhash')).toBe(end.hash);
  await stopsSyncedAt(d, db, end, expected);
}

const lostWakes = (d: Daemon): string[] =>
  d.lines.filter((l) => l.msg === 'zmq notifications may have been lost; resyncing').map((l) => String(l.reason));

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
    // Warnings of one kind are throttled: a burst per window is written, the rest only counted
    // in one line (with the last one's fields) when the window closes or the daemon stops.
    const logged = daemon.lines.filter((l) => l.msg === 'zmq garbage message');
    let at = 0;
    for (const l of logged) {
      at += l.repeated === undefined ? 1 : (l.repeated as number);
      expect(String(l.reason)).toBe(sent[at - 1]);
    }
    expect(at).toBe(sent.length);
    expect(logged.length).toBeLessThan(sent.length);
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
    const side = reorgBranch(chain);
    const expected = await recountOf(side);
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
    node = await atStart.start();
    expect(await node.rpc('getblockcount')).toBe(START);
    const db = join(dir, 'db');
    daemon = new Daemon([...rpcArgs(node), '--db', db, '--zmq', `tcp://127.0.0.1:${await freePort()}`, '--poll-interval', '200'], WAIT);
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
