import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { chainPassScan, floorScan } from '../bench/floor.js';

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-floor-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe('the benchmark baselines (bench/floor.ts)', () => {
  it.each([3, 4])('the floor and the chain-pass ceiling each count every transaction of random chain %i', async (seed) => {
    const chain = benchChain(cache, 5000 + 1000 * seed, undefined, seed);
    const floor = await floorScan(chain.blocksDir);
    const pass = await chainPassScan(chain.blocksDir);
    expect(floor.txs).toBe(chain.txs);
    expect(pass.txs).toBe(chain.txs);
    expect(floor.seconds).toBeGreaterThan(0);
    expect(pass.seconds).toBeGreaterThan(0);
  });
});
