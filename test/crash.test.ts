/**
 * Crash safety of `nodereg recount --db`: a recount killed at any moment
 * resumes to exactly the state an uninterrupted recount reaches, and an
 * interrupt stops it cleanly. docs/spec.md §3: "A crash at any instant must
 * resume to the identical state."
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Transaction } from 'bitcoinjs-lib';
import { carrier, newNode, renewal } from '../fixtures/generator/announce.js';
import { storageOrder, writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import type { AccountType } from '../fixtures/generator/keys.js';
import { prng } from '../fixtures/generator/random.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { interruptedLine } from '../cli/commands/recount.js';
import { recount } from '../indexer/engine/recount.js';
import { openIndexStore } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { CLI, noderegIn } from './helpers/cli.js';
import { cliTip, flushedTip } from './helpers/tip.js';
import { differingRows } from './helpers/db.js';

const COIN = 100_000_000n;
const OPERATORS = 200;
/** Blocks of traffic after the operators' rewards mature: about 200 transactions each. */
const TRAFFIC_BLOCKS = 360;
const KILLS = 12;
/**
 * Per-test limits. Every loop here is sized by count (KILLS runs, a fixed
 * number of flushes), so on a slow or loaded machine the tests only take
 * longer; these limits are far above what that can cost and only catch a hang.
 */
const SETUP_MS = 300_000;
const KILL_LOOP_MS = 600_000;
const SINGLE_RUN_MS = 180_000;
const TYPES: readonly AccountType[] = ['p2wpkh', 'p2tr', 'p2sh-p2wpkh'];

/**
 * 200 operators, each paid one block reward, then 360 blocks in which every
 * operator pays another: 72 000 dummy-signed transactions (13 MB), which
 * `--cache-mib 1` connects in about 35 flushes. Every tenth
 * operator registers; half of those renew every 25 blocks and the others
 * expire; two drain their stake and lapse; one re-registers after expiring
 * (and expires again).
 */
function crashChain(): ChainBuilder {
  const c = new ChainBuilder({ seed: 'crash-safety', sign: 'dummy', halvingInterval: 1_000_000 });
  const w = c.wallet;
  const ops = Array.from({ length: OPERATORS }, (_, i) => c.account(`op${i}`, TYPES[i % TYPES.length]!));
  for (const a of ops) c.mine([], { coinbaseTo: a });
  c.mineEmpty(100);
  const tips = new Map<number, Transaction>();
  for (let b = 0; b < TRAFFIC_BLOCKS; b++) {
    ops.forEach((a, i) => {
      if (i % 10 === 0) {
        if (b === 0 || (i === 10 && b === 150)) {
          tips.set(i, w.pay(a, [carrier(newNode(a, c.nextTime()))]));
          return;
        }
        if (i % 20 === 0 && b % 25 === 0) {
          tips.set(i, w.pay(a, [carrier(renewal(a, c.nextTime(), tips.get(i)!))]));
          return;
        }
        if ((i === 40 || i === 90) && b === 60) {
          w.pay(a, [payTo(ops[i + 1]!, 20n * COIN)]);
          return;
        }
      }
      w.pay(a, [payTo(ops[(i + 7) % OPERATORS]!, 10_000n)]);
    });
    c.mine();
  }
  return c;
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Spawns the CLI; `done` resolves when it has exited. */
function startCli(args: string[]): { child: ChildProcess; done: Promise<Run> } {
  const started = performance.now();
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, ms: performance.now() - started }));
  });
  return { child, done };
}

/** Runs the CLI to the end. */
const runCli = (args: string[]): Promise<Run> => startCli(args).done;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Runs the CLI and sends it `signal` once `moment` resolves (given a function telling
 * whether the process is still running). Returns the run and the milliseconds until the signal.
 */
async function killedWhen(args: string[], signal: NodeJS.Signals, moment: (alive: () => boolean) => Promise<void>): Promise<{ at: number; run: Run }> {
  const started = performance.now();
  const { child, done } = startCli(args);
  let exited = false;
  void done.then(() => (exited = true));
  await moment(() => !exited);
  const at = Math.round(performance.now() - started);
  if (!exited) child.kill(signal);
  return { at, run: await done };
}

/**
 * A flush writes the tip ('T', 36 bytes) with its batch, and every such put
 * appears in LevelDB's write-ahead log as this entry: kind (put), key length,
 * key, value length. Other writes (a kept recount's undo records, written as
 * each block is connected, state.ts `undoAhead`) grow the log too, so its
 * size alone does not tell flushes.
 */
const TIP_PUT = Buffer.from([0x01, 0x01, 0x54, 0x24]);

/** How many tip puts the write-ahead logs in `db` hold so far; `seen` keeps each log's offset and count between calls. */
function tipPuts(db: string, seen: Map<string, { at: number; count: number }>): number {
  let names: string[] = [];
  try {
    names = readdirSync(db).filter((n) => n.endsWith('.log'));
  } catch {
    return 0;
  }
  for (const name of names) {
    const log = seen.get(name) ?? { at: 0, count: 0 };
    seen.set(name, log);
    // The bytes written since the last call, from a few bytes back, so that an entry cut by the last read is found whole.
    const from = Math.max(0, log.at - (TIP_PUT.length - 1));
    let bytes: Buffer;
    try {
      const fd = openSync(join(db, name), 'r');
      try {
        bytes = Buffer.alloc(Math.max(0, fstatSync(fd).size - from));
        bytes = bytes.subarray(0, readSync(fd, bytes, 0, bytes.length, from));
      } finally {
        closeSync(fd);
      }
    } catch {
      continue; // deleted by LevelDB between the listing and the read
    }
    for (let p = bytes.indexOf(TIP_PUT); p >= 0; p = bytes.indexOf(TIP_PUT, p + 1)) if (from + p + TIP_PUT.length > log.at) log.count++;
    log.at = from + bytes.length;
  }
  // Logs LevelDB has deleted keep counting: the total never goes down.
  let total = 0;
  for (const log of seen.values()) total += log.count;
  return total;
}

/** Resolves once `n` more flushes have written the tip (tip puts in the write-ahead log), or the process is gone. */
async function flushesSeen(db: string, n: number, alive: () => boolean): Promise<void> {
  const logs = new Map<string, { at: number; count: number }>();
  let last = tipPuts(db, logs);
  for (let seen = 0; seen < n && alive();) {
    await sleep(2);
    const now = tipPuts(db, logs);
    if (now > last) seen++;
    last = now;
  }
}



let tmp: string;
let blocksDir: string;
let target: number;
let reference: { export: string; root: string };
/** Wall-clock milliseconds of the uninterrupted recount, and of a rerun that has nothing left to connect. */
let timing: { full: number; noop: number };

/** A recount that flushes after every MiB of changes: about 35 flushes to kill it in. */
const recountArgs = (db: string): string[] =>
  ['recount', '--network', 'regtest', '--blocks-dir', blocksDir, '--db', db, '--cache-mib', '1'];
/**
 * The default memory budget, which holds this chain with few flushes: for the
 * runs that only have to complete. The state reached must not depend on the
 * budget, so this also checks that resuming under another budget changes nothing.
 */
const completeArgs = (db: string): string[] =>
  ['recount', '--network', 'regtest', '--blocks-dir', blocksDir, '--db', db];

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-crash-'));
  const chain = crashChain();
  target = chain.height;
  blocksDir = join(tmp, 'blocks');
  writeBlocksDir(blocksDir, storageOrder(chain), {
    magic: chain.params.magic, xorKey: Buffer.from('c0ffee0badf00d42', 'hex'), zeroTail: 4096,
  });

  const db = join(tmp, 'reference');
  const full = await runCli(completeArgs(db));
  expect({ status: full.status, stderr: full.stderr }).toEqual({ status: 0, stderr: '' });
  const noop = await runCli([...recountArgs(db), '--json']);
  expect({ status: noop.status, stderr: noop.stderr }).toEqual({ status: 0, stderr: '' });
  // The readers run in-process (`noderegIn`): the process under test here is the recount's.
  const exported = await noderegIn(['export', '--db', db]);
  const root = await noderegIn(['root', '--db', db]);
  expect([exported.status, root.status]).toEqual([0, 0]);
  expect(JSON.parse(noop.stdout)).toEqual(JSON.parse(exported.stdout));
  reference = { export: exported.stdout, root: root.stdout };
  timing = { full: full.ms, noop: noop.ms };
}, SETUP_MS);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('crash safety of recount --db', () => {
  it('builds a registry worth protecting', () => {
    const json = JSON.parse(reference.export) as { height: number; nodes: Array<{ status: string }>; rejected: unknown[] };
    expect(json.height).toBe(target);
    const count = (s: string): number => json.nodes.filter((n) => n.status === s).length;
    expect([count('active'), count('expired'), count('lapsed')]).toEqual([9, 9, 2]);
    expect(json.rejected.length).toBeGreaterThan(0);
  });

  it('a recount killed with SIGKILL at random moments resumes to the identical export and root', async () => {
    const db = join(tmp, 'killed');
    const rand = prng(0x5eed_c4a5);
    const log: Array<{ at: number; phase: string; before: number | null; after: number | null; killed: boolean }> = [];
    let tip: number | null = null;
    // The first kill lands while the blocks are read, before anything is flushed: up to 150 ms
    // after LevelDB has created the store (a kill while it creates it is the LevelDB-creation
    // test below). After that, about one kill in three comes at a random time within what a
    // rerun with nothing to connect takes (starting, reading the blocks); the others come at a
    // random moment after the 1st to 4th flush of the run, so they land while connecting or
    // in the middle of the next flush, wherever the run has got to.
    for (let attempt = 0; attempt < 2 * KILLS && log.filter((k) => k.killed).length < KILLS; attempt++) {
      const phase = attempt === 0 ? 'reading' : rand() < 0.3 ? 'loading' : 'connecting';
      const flushes = 1 + Math.floor(4 * rand());
      const jitter = rand();
      const { at, run } = await killedWhen(recountArgs(db), 'SIGKILL', async (alive) => {
        if (phase === 'reading') {
          while (alive() && !existsSync(join(db, 'CURRENT'))) await sleep(2);
          await sleep(150 * jitter);
        } else if (phase === 'loading') {
          // By the clock, but never past the run's first flush: on a loaded machine
          // the measured rerun time can exceed a whole run's start, and a kill that
          // lands after many flushes would leave the next runs too little to be killed in.
          await Promise.race([sleep(0.9 * jitter * timing.noop), flushesSeen(db, 1, alive)]);
        } else {
          await flushesSeen(db, flushes, alive);
          await sleep(40 * jitter);
        }
      });
      const killed = run.signal === 'SIGKILL';
      if (!killed) expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
      const after = await flushedTip(db, BUILTIN_NETWORKS.regtest!);
      // Flushed progress is never lost.
      if (tip !== null) expect(after).toBeGreaterThanOrEqual(tip);
      log.push({ at, phase: phase === 'connecting' ? `after flush ${flushes}` : phase, before: tip, after, killed });
      tip = after;
    }

    const finish = await runCli(completeArgs(db));
    expect({ status: finish.status, stderr: finish.stderr }).toEqual({ status: 0, stderr: '' });
    expect((await noderegIn(['export', '--db', db])).stdout).toBe(reference.export);
    expect((await noderegIn(['root', '--db', db])).stdout).toBe(reference.root);
    expect(await differingRows(db, join(tmp, 'reference'))).toEqual([]);

    const kills = log.filter((k) => k.killed);
    const beforeFirstFlush = kills.filter((k) => k.after === null).length;
    const resumed = kills.filter((k) => k.before !== null).length;
    const advanced = kills.filter((k) => k.after !== null && k.after !== k.before).length;
    console.log(`crash test: ${kills.length}/${log.length} runs killed (uninterrupted run ${Math.round(timing.full)} ms, rerun ${Math.round(timing.noop)} ms); `
      + `${beforeFirstFlush} before the first flush, ${kills.length - beforeFirstFlush} after; ${resumed} killed while resuming; `
      + `${advanced} after flushing progress\n${log.map((k) => `  ${k.phase}, +${k.at} ms: ${k.before ?? '-'} -> ${k.after ?? '-'}${k.killed ? '' : ' (finished first)'}`).join('\n')}`);
    expect(kills.length).toBeGreaterThanOrEqual(10);
    expect(beforeFirstFlush).toBeGreaterThanOrEqual(1);
    expect(resumed).toBeGreaterThanOrEqual(3);
    expect(advanced).toBeGreaterThanOrEqual(2);
  }, KILL_LOOP_MS);

  it('a SIGINT stops a recount cleanly with exit 130, says how to resume, and a rerun completes to the same export', async () => {
    const db = join(tmp, 'interrupted');
    // The first write is the new store's metadata; a few flushes later the run is well into connecting.
    const { run } = await killedWhen(recountArgs(db), 'SIGINT', (alive) => flushesSeen(db, 4, alive));
    expect(run.status).toBe(130);
    const m = /^interrupted at height (\d+) of (\d+); run the same command again to resume from height (\d+)\n$/.exec(run.stderr);
    expect(m).not.toBeNull();
    expect(Number(m![2])).toBe(target);
    expect(m![3]).toBe(m![1]);
    expect(cliTip(db)).toBe(Number(m![1]));
    expect(run.stdout).toBe('');

    const rerun = await runCli([...completeArgs(db), '--json']);
    expect({ status: rerun.status, stderr: rerun.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(rerun.stdout)).toEqual(JSON.parse(reference.export));
    expect((await noderegIn(['root', '--db', db])).stdout).toBe(reference.root);
  }, SINGLE_RUN_MS);

  it('a stop requested while the chain is still being read leaves an empty index, and the CLI then says to run again, not to resume from height -1', async () => {
    // The signal handler only sets the flag that `shouldStop` reads; a signal
    // landing in the chain pass cannot be timed from outside without a race,
    // so the flag is raised here from the start, through the same option.
    const db = join(tmp, 'interrupted-early');
    const { db: store, params } = await openIndexStore(db, BUILTIN_NETWORKS.regtest!, { create: true });
    let asked = 0;
    const result = await recount({ blocksDir, params, db: store, shouldStop: () => { asked++; return true; } });
    await store.close();
    expect(asked).toBeGreaterThan(0);
    expect(result).toMatchObject({ stopped: true, height: -1, blocks: 0, chain: null });
    expect(cliTip(db)).toBeNull();
    const line = interruptedLine(result.height, 0, false);
    expect(line).toBe('interrupted before the first block was connected; run the same command again to start over');
    expect(interruptedLine(120, 450, false)).toBe('interrupted at height 120 of 450; run the same command again to resume from height 120');
    expect(interruptedLine(-1, 0, true)).toBe('interrupted before the first block was connected; the temporary index was removed');
    // And the rerun starts over and completes.
    const rerun = await runCli([...completeArgs(db), '--json']);
    expect({ status: rerun.status, stderr: rerun.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(rerun.stdout)).toEqual(JSON.parse(reference.export));
  }, SINGLE_RUN_MS);

  it('a kill while LevelDB is still creating a new --db (no CURRENT yet) leaves a directory the rerun can use', async () => {
    // What a SIGKILL between LevelDB's first files and its CURRENT file leaves
    // behind (observed by sweeping kill times over a fresh recount).
    const db = join(tmp, 'killed-at-creation');
    mkdirSync(db);
    writeFileSync(join(db, 'LOCK'), '');
    writeFileSync(join(db, 'LOG'), '2024/01/01-00:00:00.000000 7f00 Delete type=3 #1\n');
    writeFileSync(join(db, 'MANIFEST-000001'), '');
    writeFileSync(join(db, '000001.dbtmp'), 'MANIFEST-000001\n');
    const run = await runCli(completeArgs(db));
    expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: '' });
    expect((await noderegIn(['root', '--db', db])).stdout).toBe(reference.root);
  }, SINGLE_RUN_MS);
});
