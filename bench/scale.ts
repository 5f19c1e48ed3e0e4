/**
 * `npm run bench -- --scale [--sizes 1000000,10000000] [--runs 1] [--cache-dir DIR]`
 *
 * How the engine scales: at each size, on the bench chain, the floor, the
 * chain pass alone (`chainPass`: the ceiling no mode can pass, since each
 * runs it before connecting anything), and the full, --fast, --db and --utxo-hash recounts, each with tx/s, its ratio to
 * the floor of the same run and peak RSS (for --utxo-hash also its time over
 * the full recount's, `timesFull`), each run as a user runs it, through the
 * `nodereg` launcher (bench.ts). The last line is one JSON object. The 10M chain
 * takes about 15 minutes to generate the first time; it is cached.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { benchChain } from './chain.js';
import { chainPassScan, floorScan } from './floor.js';

export interface Measured { seconds: number; txPerSec: number; peakRssMiB: number; out: string }
export type RecountFn = (args: string[], txs: number) => Promise<Measured>;

interface ModeResult { txPerSec: number; ratio: number; peakRssMiB: number }
interface SizeResult {
  txs: number; blocks: number; floorTxPerSec: number; chainPass: { txPerSec: number; ratio: number }; full: ModeResult; fast: ModeResult; db: ModeResult; utxoHash: ModeResult & { timesFull: number };
}

const round = (x: number, d = 3): number => Math.round(x * 10 ** d) / 10 ** d;

export async function scaleBench(sizes: number[], runs: number, cacheDir: string, recount: RecountFn, say: (m: string) => void): Promise<void> {
  const results: SizeResult[] = [];
  let rootsEqual = true;
  for (const size of sizes) {
    say(`scale: benchmark chain of ~${size} transactions (cached in ${cacheDir})`);
    const chain = benchChain(cacheDir, size, say);
    const base = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
    const floors: number[] = [];
    const passes: number[] = [];
    const modes: Record<'full' | 'fast' | 'db' | 'utxo', Measured[]> = { full: [], fast: [], db: [], utxo: [] };
    for (let i = 0; i < runs; i++) {
      const f = await floorScan(chain.blocksDir);
      floors.push(f.txs / f.seconds);
      const p = await chainPassScan(chain.blocksDir);
      passes.push(p.txs / p.seconds);
      modes.full.push(await recount(base, chain.txs));
      modes.fast.push(await recount([...base, '--fast'], chain.txs));
      modes.utxo.push(await recount([...base, '--utxo-hash'], chain.txs));
      const dir = mkdtempSync(join(cacheDir, 'scale-db-'));
      try {
        modes.db.push(await recount([...base, '--db', join(dir, 'db')], chain.txs));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      say(`scale ${chain.txs}: run ${i + 1}/${runs}: floor ${f.seconds.toFixed(1)} s, chain pass ${p.seconds.toFixed(1)} s, full ${modes.full[i]!.seconds.toFixed(1)} s, fast ${modes.fast[i]!.seconds.toFixed(1)} s, utxo-hash ${modes.utxo[i]!.seconds.toFixed(1)} s, db ${modes.db[i]!.seconds.toFixed(1)} s`);
    }
    const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const floor = median(floors);
    const pass = median(passes);
    const summary = (ms: Measured[]): ModeResult => {
      const tps = median(ms.map((m) => m.txPerSec));
      return { txPerSec: round(tps, 0), ratio: round(tps / floor), peakRssMiB: Math.max(...ms.map((m) => m.peakRssMiB)) };
    };
    // The --utxo-hash export carries the hash besides what the others print.
    const withoutUtxo = (out: string): string => { try { const j = JSON.parse(out) as Record<string, unknown>; delete j.utxoMuhash; return JSON.stringify(j); } catch { return out; } };
    const outs = [...modes.full, ...modes.fast, ...modes.db, ...modes.utxo].map((m) => withoutUtxo(m.out));
    rootsEqual &&= outs[0]!.length > 0 && outs.every((o) => o === outs[0]);
    const r: SizeResult = { txs: chain.txs, blocks: chain.blocks, floorTxPerSec: round(floor, 0), chainPass: { txPerSec: round(pass, 0), ratio: round(pass / floor) }, full: summary(modes.full), fast: summary(modes.fast), db: summary(modes.db), utxoHash: { ...summary(modes.utxo), timesFull: 0 } };
    r.utxoHash.timesFull = round(r.full.txPerSec / r.utxoHash.txPerSec);
    say(`scale ${chain.txs}: floor ${r.floorTxPerSec} tx/s; chain pass alone (the ceiling of every mode) ${r.chainPass.ratio}×; full ${r.full.ratio}× (${r.full.peakRssMiB} MiB), fast ${r.fast.ratio}× (${r.fast.peakRssMiB} MiB), db ${r.db.ratio}× (${r.db.peakRssMiB} MiB), utxo-hash ${r.utxoHash.ratio}× (${r.utxoHash.timesFull}× the full, ${r.utxoHash.peakRssMiB} MiB)`);
    results.push(r);
  }
  process.stdout.write(JSON.stringify({ scale: results, rootsEqual }) + '\n');
}
