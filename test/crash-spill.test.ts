/**
 * SIGKILL while a `recount --db` with a tiny memory budget writes its caches:
 * the budget makes it flush (coins, balances, registry rows and the tip in
 * one batch) every block or two, so most random kills land during or between
 * such writes. Each resumed recount must end exactly where an uninterrupted
 * one does (docs/spec.md §3: a crash at any instant resumes to the identical
 * state).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '../fixtures/generator/random.js';
import { benchChain } from '../bench/chain.js';
import { CLI, nodereg } from './helpers/cli.js';
import { cliTip, flushedTip } from './helpers/tip.js';
import { readFileSync } from 'node:fs';
import { dump } from './helpers/db.js';
import { openStore } from '../indexer/store/store.js';
import { parseParams, type NetworkParams } from '../script/params.js';

const KILLS = 8;
let chainArgs: string[];
let paramsArgs: string[];
let params: NetworkParams;

/** Every row of an index on disk (key=value hex). */
async function rowsOf(path: string): Promise<string[]> {
  const db = await openStore(path, params, { create: false });
  try {
    return await dump(db);
  } finally {
    await db.close();
  }
}
/** 0.02 MiB: the write-back cache gets a tenth, about 2 KiB, so every block is flushed. */
const recountArgs = (db: string): string[] => ['recount', ...chainArgs, '--db', db, '--memory-mib', '0.02'];

function runCli(args: string[], killAfterMs: number | null): Promise<{ status: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('close', (status, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ status, signal, stderr, ms: Date.now() - started });
    });
  });
}



let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-crash-spill-'));
  // Bigger blocks than the demo's (about 2 000 transactions each), so that connecting takes
  // long enough after start-up for random kills to land among the flushes.
  const chain = benchChain(tmp, 60_000, undefined, 5);
  paramsArgs = ['--params', chain.paramsFile];
  params = parseParams(JSON.parse(readFileSync(chain.paramsFile, 'utf8')));
  chainArgs = [...paramsArgs, '--blocks-dir', chain.blocksDir];
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('SIGKILL during the spills of a recount --db with a tiny memory budget', () => {
  it(`resumes after ${KILLS} kills at random moments to the index an uninterrupted recount writes, byte for byte`, async () => {
    const reference = join(tmp, 'reference');
    const clean = await runCli(recountArgs(reference), null);
    expect({ status: clean.status, stderr: clean.stderr }).toEqual({ status: 0, stderr: '' });
    const target = cliTip(reference, paramsArgs)!;

    const db = join(tmp, 'killed');
    const rand = prng(0x5b111);
    const kills: Array<{ afterMs: number; before: number | null; after: number | null }> = [];
    let tip: number | null = null;
    // Sized by count: a run that finished before its kill starts the index over (it proves
    // nothing about resuming); at most 40 runs.
    for (let run = 0; run < 40 && kills.length < KILLS; run++) {
      // Somewhere in what is left to do: a resumed run reads the blocks again, then connects the rest.
      const left = tip === null ? 1 : (target - tip) / target;
      const afterMs = Math.round(clean.ms * (0.2 + 0.6 * left) * rand());
      const res = await runCli(recountArgs(db), afterMs);
      const after = await flushedTip(db, params, paramsArgs);
      // What was flushed is never lost.
      if (tip !== null) expect(after).not.toBeNull();
      if (tip !== null) expect(after!).toBeGreaterThanOrEqual(tip);
      if (res.signal === null) {
        expect({ status: res.status, stderr: res.stderr, after }).toEqual({ status: 0, stderr: '', after: target });
        rmSync(db, { recursive: true, force: true });
        tip = null;
        continue;
      }
      kills.push({ afterMs, before: tip, after });
      tip = after;
    }
    expect(kills.length).toBe(KILLS);
    const finish = await runCli(recountArgs(db), null);
    expect({ status: finish.status, stderr: finish.stderr }).toEqual({ status: 0, stderr: '' });

    const exported = nodereg(['export', '--db', db, ...paramsArgs]);
    expect(exported.status).toBe(0);
    expect(exported.stdout).toBe(nodereg(['export', '--db', reference, ...paramsArgs]).stdout);
    const [killed, uninterrupted] = [await rowsOf(db), await rowsOf(reference)];
    expect(killed.length).toBe(uninterrupted.length);
    expect(killed.filter((r, i) => r !== uninterrupted[i]).slice(0, 5)).toEqual([]);
    // The kills did land between flushes of a half-done recount, not only before or after it.
    const midway = kills.filter((k) => k.after !== null && k.after < target);
    expect({ midway: midway.length > 0, kills }).toEqual({ midway: true, kills });
  }, 600_000);
});
