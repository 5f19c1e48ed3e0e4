/**
 * Random damage to a real blocks directory (bench/fuzzblk.ts): the recount
 * either stops with a user-facing error or gives a valid chain whose
 * registry is exactly that chain's. A bounded number of cases runs here;
 * `npm run fuzz` runs as many as asked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fuzzCase, readSeed, splitSeed, type CaseResult } from '../bench/fuzzblk.js';
import { ROOT } from './helpers/cli.js';

/** Sized by count, not time: about 10 s on an idle two-core machine. */
const CASES = 48;

let work: string;
beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'nodereg-fuzz-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

test(`${CASES} randomly damaged copies of the demo blocks directory: an error or a valid chain, never a wrong answer`, async () => {
  const one = readSeed(join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), ['blk00000.dat']);
  const three = splitSeed(one, 3);
  expect(three.files).toHaveLength(3);
  const clean = new Map<string, string>();
  const results: CaseResult[] = [];
  for (let seed = 1; seed <= CASES; seed++) results.push(await fuzzCase(seed % 2 === 0 ? three : one, seed, work, clean));
  const outcomes = new Set(results.map((r) => r.outcome));
  // Both kinds of answer occur, so both checks ran.
  expect([...outcomes].sort()).toEqual(['chain', 'error']);
  for (const r of results.filter((x) => x.outcome === 'error')) expect(r.detail).not.toMatch(/internal error|\n\s+at /);
}, 600_000);
