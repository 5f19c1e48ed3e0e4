import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { loadBestChain } from '../indexer/chain/chain.js';
import { disconnectTip } from '../indexer/engine/disconnect.js';
import { recount, type RecountOptions } from '../indexer/engine/recount.js';
import { ChainState } from '../indexer/store/state.js';
import { BUILTIN_NETWORKS, parseParams, type NetworkParams } from '../script/params.js';
import { fixturePath } from './helpers/blocksdir.js';
import { ROOT } from './helpers/cli.js';
import { dump, tempIndex } from './helpers/db.js';

/*
 * A kept index (`recount --db`, resumed recounts, --utxo-hash) is now written
 * by the coin view (memconnect.ts over coinview.ts). These tests hold it to
 * the rows the old database engine (connect.ts) writes: every coin, script
 * → outpoint row, balance, registry row, per-height row, undo record and the
 * tip, byte for byte, under budgets that spill after every block or every
 * few blocks; and the undo records it writes must disconnect to exactly the
 * index of a shorter recount.
 */

const regtest = BUILTIN_NETWORKS.regtest!;
type Run = Omit<RecountOptions, 'blocksDir' | 'params' | 'db'>;

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-dbrows-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const CHAINS: Array<[string, () => { blocksDir: string; params: NetworkParams }]> = [
  ['the demo chain', () => ({ blocksDir: join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), params: regtest })],
  ['the Core regtest blocks directory', () => ({ blocksDir: fixturePath('core-regtest/blocks'), params: regtest })],
  ['a random benchmark chain', () => {
    const c = benchChain(cache, 5000, undefined, 11);
    return { blocksDir: c.blocksDir, params: parseParams(JSON.parse(readFileSync(c.paramsFile, 'utf8'))) };
  }],
];

/** The rows of an index recounted by `runs` one after the other (a later one resumes the earlier). */
async function rowsOf(blocksDir: string, params: NetworkParams, utxoHash: boolean, runs: Run[], then?: (state: ChainState) => Promise<void>): Promise<string[]> {
  const idx = await tempIndex(params, { utxoHash });
  try {
    for (const run of runs) {
      const result = await recount({ blocksDir, params, db: idx.db, ...run });
      expect(result.stopped).toBe(false);
    }
    if (then) {
      const state = new ChainState(idx.db, params);
      await state.load();
      await then(state);
    }
    return await dump(idx.db);
  } finally {
    await idx.close();
  }
}

const VIEWS: Record<string, Run> = {
  'the default budget': { keptEngine: 'view' },
  'a budget that spills after every block': { keptEngine: 'view', memoryBytes: 0 },
  'a budget that spills every few blocks': { keptEngine: 'view', memoryBytes: 96 * 1024 },
};

describe.each(CHAINS)('a kept index of %s', (_name, chainOf) => {
  it.each([false, true])('is written row for row as the old database engine writes it (--utxo-hash: %s)', async (utxoHash) => {
    const { blocksDir, params } = chainOf();
    const reference = await rowsOf(blocksDir, params, utxoHash, [{ keptEngine: 'database' }]);
    expect(reference.some((r) => r.startsWith('55'))).toBe(true); // 'U': undo records are there to compare
    expect(reference.some((r) => r.startsWith('6f'))).toBe(true); // 'o': script → outpoint rows too
    for (const [name, run] of Object.entries(VIEWS)) {
      const got = await rowsOf(blocksDir, params, utxoHash, [run]);
      expect({ view: name, rows: got }).toEqual({ view: name, rows: reference });
    }
  }, 600_000);

  it('with --fast (only the stakes\' coins) is written row for row as the old database engine writes it', async () => {
    const { blocksDir, params } = chainOf();
    const reference = await rowsOf(blocksDir, params, false, [{ keptEngine: 'database', fast: true }]);
    for (const [name, run] of Object.entries(VIEWS)) {
      const got = await rowsOf(blocksDir, params, false, [{ ...run, fast: true }]);
      expect({ view: name, rows: got }).toEqual({ view: name, rows: reference });
    }
  }, 600_000);

  it('resumed from a shorter recount, ends in the same rows as one uninterrupted run', async () => {
    const { blocksDir, params } = chainOf();
    const reference = await rowsOf(blocksDir, params, true, [{ keptEngine: 'database' }]);
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    for (const [name, run] of Object.entries(VIEWS)) {
      const got = await rowsOf(blocksDir, params, true, [{ ...run, height: Math.floor(top / 3) }, { ...run, height: Math.floor((2 * top) / 3) }, run]);
      expect({ view: name, rows: got }).toEqual({ view: name, rows: reference });
    }
  }, 600_000);

  it('disconnects with its undo records to exactly the index of a shorter recount', async () => {
    const { blocksDir, params } = chainOf();
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    const back = Math.min(12, top);
    const shorter = await rowsOf(blocksDir, params, true, [{ keptEngine: 'database', height: top - back }]);
    for (const [name, run] of Object.entries(VIEWS)) {
      const got = await rowsOf(blocksDir, params, true, [run], async (state) => {
        for (let i = 0; i < back; i++) await disconnectTip(state);
      });
      expect({ view: name, rows: got }).toEqual({ view: name, rows: shorter });
    }
  }, 600_000);
});
