/**
 * `npm run bench -- [--txs 1000000] [--runs 3] [--json] [--utxo-hash] [--cache-dir DIR]`
 * `npm run bench -- --scale [--sizes 1000000,10000000] [--runs 1]` (see scale.ts)
 *
 * Measures, in one run on one machine, the floor (read blk files and hash
 * every txid, single thread), the chain pass alone (the ceiling of every
 * mode: floor.ts `chainPassScan`) and `nodereg recount` in full and --fast mode,
 * each as its own process, and prints the ratios docs/spec.md §4 sets targets
 * for. Each is run `--runs` times, alternating, and the median counts: on a
 * shared two-core machine single runs vary by 10–15%. Only ratios travel
 * between machines; absolute numbers are printed for context.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchChain } from './chain.js';
import { chainPassScan, floorScan } from './floor.js';
import { scaleBench } from './scale.js';

/**
 * The `nodereg` command as npm installs it (bin/nodereg, a sh launcher that
 * sets MALLOC_ARENA_MAX and execs Node on dist/cli/main.js), so that peak RSS
 * is what a user sees. Its `node` is this one.
 */
const LAUNCHER = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', 'bin', 'nodereg');
const LAUNCH_ENV = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ''}` };

interface Args { txs: number; runs: number; json: boolean; utxoHash: boolean; cacheDir: string; scale: number[] | null }

function parseArgs(argv: string[]): Args {
  const a: Args = { txs: 1_000_000, runs: 3, json: false, utxoHash: false, cacheDir: join(tmpdir(), 'nodereg-bench'), scale: null };
  let runsGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--json') a.json = true;
    else if (k === '--utxo-hash') a.utxoHash = true;
    else if (k === '--txs' && /^\d+$/.test(argv[i + 1] ?? '')) a.txs = Number(argv[++i]);
    else if (k === '--runs' && /^[1-9]\d*$/.test(argv[i + 1] ?? '')) {
      a.runs = Number(argv[++i]);
      runsGiven = true;
    } else if (k === '--scale') a.scale ??= [1_000_000, 10_000_000];
    else if (k === '--sizes' && /^\d+(,\d+)*$/.test(argv[i + 1] ?? '')) a.scale = argv[++i]!.split(',').map(Number);
    else if (k === '--cache-dir' && argv[i + 1]) a.cacheDir = argv[++i]!;
    else {
      process.stderr.write(`bench: unknown or incomplete argument "${k}"\nusage: npm run bench -- [--txs N] [--runs N] [--json] [--utxo-hash] [--cache-dir DIR] | --scale [--sizes N,N] [--runs N]\n`);
      process.exit(2);
    }
  }
  // A scale run measures each mode once per size unless told otherwise: the 10M recounts take minutes each.
  if (a.scale !== null && !runsGiven) a.runs = 1;
  return a;
}

interface Run { seconds: number; txPerSec: number; peakRssMiB: number; out: string }

function recount(args: string[], txs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const child = spawn(LAUNCHER, ['recount', '--json', '--stats', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: LAUNCH_ENV });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const stats = err.split('\n').find((l) => l.startsWith('{"stats"'));
      if (code !== 0 || !stats) return reject(new Error(`recount ${args.join(' ')} failed (${code}): ${err}`));
      const s = JSON.parse(stats) as { maxRssMiB: number };
      resolve({ seconds, txPerSec: txs / seconds, peakRssMiB: s.maxRssMiB, out });
    });
  });
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

async function main(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const say = (m: string): void => {
    process.stderr.write(m + '\n');
  };
  if (a.scale !== null) return scaleBench(a.scale, a.runs, a.cacheDir, recount, say);
  say(`benchmark chain of ~${a.txs} transactions (cached in ${a.cacheDir})`);
  const chain = benchChain(a.cacheDir, a.txs, say);
  say(`chain: ${chain.txs} txs in ${chain.blocks} blocks, ${chain.announcements} announcements`);
  const median = <T>(xs: T[], key: (x: T) => number): T => [...xs].sort((p, q) => key(p) - key(q))[Math.floor(xs.length / 2)]!;
  const base = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
  const floors: number[] = [];
  const passes: number[] = [];
  const fulls: Run[] = [];
  const fasts: Run[] = [];
  for (let i = 0; i < a.runs; i++) {
    const f = await floorScan(chain.blocksDir);
    floors.push(f.txs / f.seconds);
    const p = await chainPassScan(chain.blocksDir);
    passes.push(p.txs / p.seconds);
    fulls.push(await recount(base, chain.txs));
    fasts.push(await recount([...base, '--fast'], chain.txs));
    say(`run ${i + 1}/${a.runs}: floor ${f.seconds.toFixed(2)} s, chain pass ${p.seconds.toFixed(2)} s, full ${fulls[i]!.seconds.toFixed(2)} s, fast ${fasts[i]!.seconds.toFixed(2)} s`);
  }
  const floor = median(floors, (x) => x);
  const pass = median(passes, (x) => x);
  const full = median(fulls, (r) => r.seconds);
  const fast = median(fasts, (r) => r.seconds);
  full.peakRssMiB = Math.max(...fulls.map((r) => r.peakRssMiB));
  fast.peakRssMiB = Math.max(...fasts.map((r) => r.peakRssMiB));
  say(`medians of ${a.runs}: floor ${Math.round(floor)} tx/s; full ${Math.round(full.txPerSec)} tx/s; fast ${Math.round(fast.txPerSec)} tx/s (peak RSS: the highest run)`);
  const withUtxo = a.utxoHash ? await recount([...base, '--utxo-hash'], chain.txs) : null;
  const outputs = [...fulls, ...fasts].map((r) => r.out);
  const rootsEqual = full.out.length > 0 && outputs.every((o) => o === full.out);
  const rows = [
    ['', 'tx/s', 'ratio to floor', 'target', 'peak RSS MiB'],
    ['floor', String(Math.round(floor)), '1', '', ''],
    ['chain pass alone (ceiling)', String(Math.round(pass)), round(pass / floor).toString(), '', ''],
    ['full recount', String(Math.round(full.txPerSec)), round(full.txPerSec / floor).toString(), '≥ 1.0', String(full.peakRssMiB)],
    ['fast recount', String(Math.round(fast.txPerSec)), round(fast.txPerSec / floor).toString(), '≥ 1.5', String(fast.peakRssMiB)],
    ...(withUtxo ? [['full + utxo hash', String(Math.round(withUtxo.txPerSec)), round(withUtxo.txPerSec / floor).toString(), '', String(withUtxo.peakRssMiB)]] : []),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ')).join('\n') + '\n');
  process.stdout.write(`roots and exports equal: ${rootsEqual}; memory target ≤ 512 MiB\n`);
  if (withUtxo) process.stdout.write(`UTXO-set MuHash costs ${round(withUtxo.seconds / full.seconds, 2)}× the full recount's time\n`);
  if (a.json) {
    process.stdout.write(JSON.stringify({
      txs: chain.txs, blocks: chain.blocks, floorTxPerSec: round(floor, 0), chainPassTxPerSec: round(pass, 0), chainPassRatio: round(pass / floor), fullTxPerSec: round(full.txPerSec, 0), fastTxPerSec: round(fast.txPerSec, 0),
      fullRatio: round(full.txPerSec / floor), fastRatio: round(fast.txPerSec / floor),
      fullPeakRssMiB: full.peakRssMiB, fastPeakRssMiB: fast.peakRssMiB, rootsEqual,
      ...(withUtxo ? { utxoHashTxPerSec: round(withUtxo.txPerSec, 0), utxoHashSlowdown: round(withUtxo.seconds / full.seconds, 2) } : {}),
    }) + '\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
