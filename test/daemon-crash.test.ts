/**
 * Crash safety of the live daemon (`nodereg index`) against a real bcoin
 * regtest node: SIGKILLed at seeded random moments while it catches up, and
 * while it handles reorgs, then restarted; in the end the index must be the
 * one an uninterrupted run writes, byte for byte. docs/spec.md §3: "A crash at
 * any instant must resume to the identical state."
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Level } from 'level';
import { carrier, newNode, renewal } from '../fixtures/generator/announce.js';
import type { ChainBuilder, MinedBlock } from '../fixtures/generator/chain.js';
import { prng } from '../fixtures/generator/random.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { decodeTip } from '../indexer/store/codec.js';
import { K } from '../indexer/store/layout.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { recountOf, submitAll } from './helpers/chains.js';
import { noderegIn, ROOT } from './helpers/cli.js';
import { Daemon, rpcArgs } from './helpers/daemon.js';
import { differingRows } from './helpers/db.js';

const COIN = 100_000_000n;
const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { height: number; tip: string; root: string };

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** The flushed tip, read straight from LevelDB (fast, and it needs no meta rows), or null when there is none. */
async function tipOf(path: string): Promise<{ height: number; hash: string } | null> {
  if (!existsSync(join(path, 'CURRENT'))) return null;
  const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
  await db.open();
  try {
    const raw = await db.get(K.tip());
    if (raw === undefined) return null;
    const t = decodeTip(raw);
    return { height: t.height, hash: rpcHex(t.hash) };
  } finally {
    await db.close();
  }
}

let dir: string;
let node: BcoinNode;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-dcrash-'));
  node = await startBcoin();
});
afterAll(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const indexArgs = (db: string, extra: string[] = []): string[] => [...rpcArgs(node), '--db', db, '--log-level', 'debug', ...extra];

/** An uninterrupted `--until-synced` run. */
async function runToTip(db: string): Promise<void> {
  const d = new Daemon(indexArgs(db, ['--until-synced']));
  const exit = await d.exited;
  expect({ exit, errors: d.lines.filter((l) => l.level === 'error' || l.level === 'raw') }).toEqual({ exit: { code: 0, signal: null }, errors: [] });
}

async function exportAndRoot(db: string): Promise<{ export: unknown; root: string }> {
  // One at a time: a query holds the database's LOCK. In-process (see noderegIn): the daemon is the process under test.
  const exp = await noderegIn(['export', '--db', db]);
  const root = await noderegIn(['root', '--db', db]);
  expect([exp.status, root.status, exp.stderr + root.stderr]).toEqual([0, 0, '']);
  return { export: JSON.parse(exp.stdout) as unknown, root: /^registry root {2}([0-9a-f]{64})$/m.exec(root.stdout)?.[1] ?? root.stdout };
}

const chain: ChainBuilder = demo();
const blocks = chain.bestChain();
const DB = (): string => join(dir, 'killed');

describe('the live daemon killed with SIGKILL against a real bcoin node', () => {
  it('resumes a catch-up killed at 12+ random moments to the index an uninterrupted run writes', async () => {
    const rand = prng(0xdead_10c5);
    const db = DB();
    // The node starts with a third of the demo. Before each restart, while the daemon is dead, it
    // receives a random burst of the rest, so every run starts behind and has a catch-up to be killed in.
    await submitAll(node, blocks.slice(1, 151));
    let submitted = 150;
    const kills: Array<{ delay: string; nodeHeight: number; before: number | null; after: number | null; connected: number | null; started: boolean }> = [];
    let tip: number | null = null;
    while (submitted < blocks.length - 1 || kills.length < 12) {
      if (kills.length > 0) {
        const n = Math.min(Math.floor(50 * rand()), blocks.length - 1 - submitted);
        await submitAll(node, blocks.slice(submitted + 1, submitted + 1 + n));
        submitted += n;
      }
      const nodeHeight = submitted;
      const behindBy = nodeHeight - (tip ?? -1);
      const d = new Daemon(indexArgs(db, ['--poll-interval', '50']));
      let delay: string;
      if (rand() < 0.2) {
        // Anywhere in process start-up (about 250 ms) or just after.
        const ms = Math.round(400 * rand());
        await sleep(ms);
        delay = `${ms} ms after spawn`;
      } else {
        // At a random block of the catch-up; aims past its end finish it and flush.
        const target = (tip ?? -1) + 1 + Math.floor((behindBy + 8) * rand());
        await d.until((x) => (x.connectedUpTo() ?? -1) >= Math.min(target, nodeHeight), 120_000);
        delay = target > nodeHeight ? `after the catch-up to ${nodeHeight}` : `at block ${target}`;
        if (target > nodeHeight) await sleep(20);
      }
      const exit = await d.kill();
      expect(exit.signal).toBe('SIGKILL');
      const after = (await tipOf(db))?.height ?? null;
      // Flushed progress is never lost, and never ahead of the node.
      if (tip !== null) expect(after).toBeGreaterThanOrEqual(tip);
      if (after !== null) expect(after).toBeLessThanOrEqual(nodeHeight);
      kills.push({ delay, nodeHeight, before: tip, after, connected: d.connectedUpTo(), started: d.has('connected to node') });
      tip = after;
    }

    await runToTip(db);
    const killed = await exportAndRoot(db);
    expect(killed.export).toEqual(expected);
    expect(killed.root).toBe(expected.root);
    // Byte for byte what one uninterrupted run writes.
    const reference = join(dir, 'uninterrupted');
    await runToTip(reference);
    expect(await differingRows(db, reference, ['the killed index', 'the uninterrupted index'])).toEqual([]);

    const beforeStart = kills.filter((k) => !k.started).length;
    const beforeFirstFlush = kills.filter((k) => k.after === null).length;
    const behind = kills.filter((k) => k.started && (k.connected ?? -1) < k.nodeHeight).length;
    const unflushed = kills.filter((k) => k.connected !== null && k.connected > (k.after ?? -1)).length;
    const resumed = kills.filter((k) => k.before !== null).length;
    console.log(`catch-up: ${kills.length} kills; ${beforeStart} before the daemon reached the node, ${beforeFirstFlush} before the first flush, `
      + `${behind} mid-catch-up (started, below the node's height), ${unflushed} with connected blocks not yet flushed, ${resumed} of a resumed index\n`
      + kills.map((k) => `  ${k.delay}: node ${k.nodeHeight}, tip ${k.before ?? '-'} -> ${k.after ?? '-'} (connected up to ${k.connected ?? '-'})`).join('\n'));
    expect(kills.length).toBeGreaterThanOrEqual(12);
    expect(beforeFirstFlush).toBeGreaterThanOrEqual(1);
    expect(resumed).toBeGreaterThanOrEqual(4);
    expect(unflushed).toBeGreaterThanOrEqual(4);
    expect(behind).toBeGreaterThanOrEqual(6);
  });

  it('resumes reorgs back and forth between two branches, killed at 12+ random moments while handling them, to the index of the final chain', async () => {
    const rand = prng(0x5eed_0e06);
    const db = DB();
    // Continues from the catch-up test's index; on its own, builds that index first.
    const have = await node.rpc<number>('getblockcount');
    if (have < chain.height) await submitAll(node, blocks.slice(have + 1));
    if ((await tipOf(db))?.hash !== expected.tip) await runToTip(db);
    expect((await tipOf(db))?.hash).toBe(expected.tip);

    // Two branches from 10 blocks below the demo's tip; each round the other one grows longer and the node switches.
    const fork = chain.height - 10;
    const a = chain;
    const b = chain.fork(fork);
    const live = new Map<ChainBuilder, { acct: ReturnType<ChainBuilder['account']>; tx: ReturnType<ChainBuilder['wallet']['pay']> }>();
    /** Extends `c` to one block past `other`: someone new registers, and the branch's previous registrant renews. */
    const grow = (c: ChainBuilder, other: ChainBuilder, round: number): MinedBlock[] => {
      const from = c.height;
      const acct = c.account(`operator${round}`, (['p2wpkh', 'p2tr', 'p2pkh'] as const)[round % 3]!);
      c.wallet.pay(c.miner, [payTo(acct, 50n * COIN)]);
      c.mine();
      const tx = c.wallet.pay(acct, [carrier(newNode(acct, c.nextTime()))]);
      const prev = live.get(c);
      if (prev) c.wallet.pay(prev.acct, [carrier(renewal(prev.acct, c.nextTime(), prev.tx))]);
      c.mine();
      live.set(c, { acct, tx });
      while (c.height <= other.height) c.mine();
      return c.chainBlocks().slice(from + 1);
    };

    const MAX_ROUNDS = 16;
    const KILLS_PER_ROUND = 2;
    const isMidReorg = (k: { after: number; oldTip: number; newTip: number }): boolean => k.after < k.oldTip && k.after < k.newTip;
    const kills: Array<{ round: number; oldTip: number; newTip: number; delay: string; after: number; branch: string; disconnecting: boolean; done: boolean }> = [];
    let current = a;
    let rounds = 0;
    // At least 6 rounds; more while fewer than 12 kills, or fewer than 6 of them mid-reorg, have landed.
    // Two kills a round: a run almost never gets through before its kill, so a round's kills are
    // its cap, and more rounds (each a reorg of its own) explore more than more kills of one reorg.
    for (let round = 0; round < MAX_ROUNDS && (round < 6 || kills.length < 12 || kills.filter(isMidReorg).length < 6); round++) {
      rounds++;
      const next = current === a ? b : a;
      const oldTip = current.tip;
      const fresh = grow(next, current, round);
      await submitAll(node, fresh);
      expect(await node.rpc('getbestblockhash')).toBe(next.tip.hash);
      const onNext = new Set(next.chainBlocks().map((x) => x.hash));
      const onOld = new Set(current.chainBlocks().map((x) => x.hash));

      // Kill until one run gets through, then finish; at most 2 kills a round.
      for (let k = 0; k < KILLS_PER_ROUND; k++) {
        const d = new Daemon(indexArgs(db, ['--poll-interval', '50']));
        let delay: string;
        if (rand() < 0.2) {
          const ms = Math.round(300 * rand());
          await sleep(ms);
          delay = `${ms} ms after spawn`;
        } else if (rand() < 0.5) {
          // Into the disconnects, by the clock: the daemon logs no line per
          // disconnected block, so where these land depends on the machine's
          // speed, and nothing below counts on them.
          await d.until('connected to node', 120_000);
          const ms = Math.round(10 + 4 * (oldTip.height - fork) * rand());
          await sleep(ms);
          delay = `${ms} ms after connecting`;
        } else {
          // Aim into the reorg by the daemon's own progress, not by the clock (a
          // loaded machine shifts every delay): once it says it connected block
          // fork+1+j of the new branch, below the old tip, it has flushed every
          // disconnect, so the stored tip lies at or below that block, under both tips.
          const target = fork + 1 + Math.floor(Math.max(1, oldTip.height - fork - 1) * rand());
          await d.until((x) => (x.connectedUpTo() ?? -1) >= target, 120_000);
          delay = `after connecting block ${target}`;
        }
        await d.kill();
        const t = (await tipOf(db))!;
        const branch = onNext.has(t.hash) && onOld.has(t.hash) ? 'shared' : onNext.has(t.hash) ? 'new' : onOld.has(t.hash) ? 'old' : 'unknown';
        expect(branch).not.toBe('unknown');
        kills.push({
          round, oldTip: oldTip.height, newTip: next.tip.height, delay, after: t.height, branch,
          disconnecting: d.has('reorg: disconnecting blocks the node no longer has'), done: t.hash === next.tip.hash,
        });
        if (t.hash === next.tip.hash) break;
      }
      await runToTip(db);
      expect((await tipOf(db))!.hash).toBe(next.tip.hash);
      current = next;
    }

    const final = await recountOf(current);
    expect((final as { tip: string }).tip).toBe(current.tip.hash);
    const killed = await exportAndRoot(db);
    expect(killed.export).toEqual(final);
    expect(killed.root).toBe((final as { root: string }).root);
    // Byte for byte what indexing the final chain from scratch writes: every disconnect was exact.
    const fresh = join(dir, 'fresh-final');
    await runToTip(fresh);
    expect(await differingRows(db, fresh, ['the killed index', 'the uninterrupted index'])).toEqual([]);

    const midReorg = kills.filter(isMidReorg);
    const midDisconnect = midReorg.filter((k) => k.branch === 'old');
    const atFork = midReorg.filter((k) => k.after === fork);
    const inRun = kills.filter((k) => k.disconnecting);
    console.log(`reorgs: ${rounds} rounds, ${kills.length} kills; ${midReorg.length} mid-reorg (tip below the old and the new tip): `
      + `${midDisconnect.length} part-way through disconnecting, ${atFork.length} at the fork point; ${inRun.length} in a run that had begun disconnecting; `
      + `${kills.filter((k) => k.done).length} after the run had finished\n`
      + kills.map((k) => `  round ${k.round} (${k.oldTip} -> ${k.newTip}), ${k.delay}: tip ${k.after} on the ${k.branch} branch${k.disconnecting ? ', was disconnecting' : ''}`).join('\n'));
    expect(kills.length).toBeGreaterThanOrEqual(12);
    expect(midReorg.length).toBeGreaterThanOrEqual(6);
  });
});
