/**
 * `npm run fuzz [-- --cases N] [--from S]`: the blk-reader fuzz of
 * test/blk-fuzz.test.ts for as many cases as asked (default 2000), over the
 * demo blocks directory in one and in three files. Prints a tally, and on
 * the first wrong answer the seed that reproduces it, with exit 1.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCase, FuzzFailure, readSeed, splitSeed } from './fuzzblk.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v < 0) {
    process.stderr.write(`--${name} must be a whole number\n`);
    process.exit(2);
  }
  return v;
}

const cases = flag('cases', 2000);
const from = flag('from', 1);
const one = readSeed(join(import.meta.dirname, '..', '..', 'fixtures', 'chains', 'demo', 'blocks'), ['blk00000.dat']);
const three = splitSeed(one, 3);
const work = mkdtempSync(join(tmpdir(), 'nodereg-fuzz-'));
const clean = new Map<string, string>();
const tally = new Map<string, number>();
const started = Date.now();
try {
  for (let seed = from; seed < from + cases; seed++) {
    const r = await fuzzCase(seed % 2 === 0 ? three : one, seed, work, clean);
    const kind = r.outcome === 'chain' ? `chain (${r.detail === 'height 450' ? 'whole' : 'shorter'})` : `error: ${r.detail.replace(/^.*?: /, '').replace(/\d+/g, 'N').slice(0, 70)}`;
    tally.set(kind, (tally.get(kind) ?? 0) + 1);
    if ((seed - from + 1) % 100 === 0) process.stderr.write(`${seed - from + 1}/${cases} cases, ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  }
  for (const [kind, n] of [...tally].sort((a, b) => b[1] - a[1])) process.stdout.write(`${String(n).padStart(6)}  ${kind}\n`);
  process.stdout.write(`${cases} cases from seed ${from}: no wrong answer\n`);
} catch (err) {
  process.stderr.write(`${err instanceof FuzzFailure ? err.message : String((err as Error).stack ?? err)}\n`);
  process.exitCode = 1;
} finally {
  rmSync(work, { recursive: true, force: true });
}
