import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { nodereg, ROOT } from './helpers/cli.js';

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-fast-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const recount = (args: string[]): string => {
  const res = nodereg(['recount', '--json', ...args]);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return res.stdout;
};

describe('recount --fast', () => {
  it('prints byte-identical JSON to the full recount on the demo chain', () => {
    const demo = ['--network', 'regtest', '--blocks-dir', join(ROOT, 'fixtures', 'chains', 'demo', 'blocks')];
    expect(recount([...demo, '--fast'])).toBe(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8'));
  });

  it.each([1, 2, 3])('prints byte-identical JSON to the full recount on random chain %i', (seed) => {
    const chain = benchChain(cache, 6000 + 1000 * seed, undefined, seed);
    const args = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
    const full = recount(args);
    const parsed = JSON.parse(full) as { nodes: Array<{ status: string; renewals: number }>; rejected: unknown[] };
    expect(parsed.nodes.length).toBeGreaterThan(3);
    expect(recount([...args, '--fast'])).toBe(full);
  });

  it('refuses --fast with --db or --utxo-hash, since the index it leaves is partial', () => {
    const res = nodereg(['recount', '--fast', '--db', join(cache, 'x'), '--network', 'regtest', '--blocks-dir', cache]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/cannot be combined with --db or --utxo-hash/);
  });
});
