import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { readBlockRecords } from '../indexer/chain/blkfiles.js';
import { loadBestChain } from '../indexer/chain/chain.js';
import { prng } from '../fixtures/generator/random.js';
import { writeBlkDir } from './helpers/blocksdir.js';
import { exportAt, type ExportJson } from '../indexer/read/queries.js';
import { recount, type RecountOptions } from '../indexer/engine/recount.js';
import { BUILTIN_NETWORKS, parseParams, type NetworkParams } from '../script/params.js';
import { fixturePath } from './helpers/blocksdir.js';
import { ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';
import { K, P } from '../indexer/store/layout.js';

const regtest = BUILTIN_NETWORKS.regtest!;

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-engines-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

type Engine = Omit<RecountOptions, 'blocksDir' | 'params' | 'db'>;

/**
 * The ways a recount can run: the database engine (a kept index), the coin
 * tables of a temporary index, either of them in --fast mode, the tables
 * hashing blocks again because the chain pass kept no txids, and each with a
 * budget so small that it spills every block or every few blocks. Each must
 * leave a registry whose export is identical at every height.
 */
const ENGINES: Record<string, Engine> = {
  database: {},
  'database, flushing every block': { cacheBytes: 1 },
  memory: { throwaway: true },
  'memory, --fast': { throwaway: true, fast: true },
  'memory, no kept txids': { throwaway: true, keepTxidBytes: 0 },
  'memory, spilling every block': { throwaway: true, memoryBytes: 0 },
  'memory, spilling every few blocks': { throwaway: true, memoryBytes: 96 * 1024 },
  'memory, --fast, spilling every block': { throwaway: true, fast: true, memoryBytes: 0 },
  'memory, --fast, no kept txids (swept)': { throwaway: true, fast: true, keepTxidBytes: 0 },
  'memory, no kept txids, spilling every few blocks': { throwaway: true, keepTxidBytes: 0, memoryBytes: 96 * 1024 },
};

async function exportsOf(blocksDir: string, params: NetworkParams, engine: Engine, heights: number[]): Promise<ExportJson[]> {
  const idx = await tempIndex(params);
  try {
    const result = await recount({ blocksDir, params, db: idx.db, ...engine });
    expect(result.stopped).toBe(false);
    return await Promise.all(heights.map((h) => exportAt(idx.db, params, Math.min(h, result.height))));
  } finally {
    await idx.close();
  }
}

const CHAINS: Array<[string, () => { blocksDir: string; params: NetworkParams; heights: number[] }]> = [
  ['the demo chain', () => ({ blocksDir: join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), params: regtest, heights: [150, 300, 432, 449] })],
  ['the Core regtest blocks directory', () => ({ blocksDir: fixturePath('core-regtest/blocks'), params: regtest, heights: [50, 116] })],
  ['a random benchmark chain', () => {
    const c = benchChain(cache, 5000, undefined, 11);
    return { blocksDir: c.blocksDir, params: parseParams(JSON.parse(readFileSync(c.paramsFile, 'utf8'))), heights: [5, 10, c.blocks - 1] };
  }],
];

describe.each(CHAINS)('every recount engine agrees on %s', (_name, chainOf) => {
  it('exports the same registry at several heights, byte for byte', async () => {
    const { blocksDir, params, heights } = chainOf();
    const reference = await exportsOf(blocksDir, params, ENGINES.database!, heights);
    expect(reference.at(-1)!.nodes.length + reference.at(-1)!.rejected.length).toBeGreaterThan(0);
    for (const [name, engine] of Object.entries(ENGINES)) {
      if (name === 'database') continue;
      const got = await exportsOf(blocksDir, params, engine, heights);
      expect({ engine: name, exports: JSON.stringify(got) }).toEqual({ engine: name, exports: JSON.stringify(reference) });
    }
  });
});

describe('the coin tables under a small budget', () => {
  it('spill into the coin file and go on, without a warning and without starting over', async () => {
    const blocksDir = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
    const idx = await tempIndex(regtest);
    const warnings: string[] = [];
    const heights: number[] = [];
    try {
      const result = await recount({ blocksDir, params: regtest, db: idx.db, throwaway: true, memoryBytes: 64 * 1024, onWarning: (m) => warnings.push(m), onBlock: (b) => heights.push(b.height) });
      expect(warnings).toEqual([]);
      // Every block was connected once, in order: nothing was recounted. (The
      // first blocks may have been connected, unreported and spilling as they
      // went, while the chain pass read: up to the demo's first fork.)
      expect(heights.length).toBeGreaterThan(0);
      expect(heights).toEqual(Array.from({ length: result.height + 1 - heights[0]! }, (_, i) => heights[0]! + i));
      // The spills put their coins in the coin file, not the database (no coin
      // rows), and every script's balance in the database, where a recount
      // that never spilled would leave only the registered scripts'.
      let coins = 0;
      for await (const _ of idx.db.keys(K.all(P.coin))) coins++;
      expect(coins).toBe(0);
      let balances = 0;
      for await (const _ of idx.db.keys(K.all(P.balance))) balances++;
      let registered = 0;
      for await (const _ of idx.db.keys(K.all(P.current))) registered++;
      expect(balances).toBeGreaterThan(registered);
      const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as unknown;
      expect(JSON.parse(JSON.stringify(await exportAt(idx.db, regtest, result.height)))).toEqual(expected);
    } finally {
      await idx.close();
    }
  });
});

describe('the coin file of a throwaway recount', () => {
  it('leaves nothing in its directory, after a recount that spilled and after one that failed half-way', async () => {
    const blocksDir = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
    const spillDir = mkdtempSync(join(tmpdir(), 'nodereg-spilldir-'));
    try {
      for (const fail of [false, true]) {
        const idx = await tempIndex(regtest);
        let spilledFiles = -1;
        let reported = 0;
        try {
          const run = recount({
            blocksDir, params: regtest, db: idx.db, throwaway: true, memoryBytes: 0, spillDir,
            // The first blocks are connected unreported while the chain pass
            // reads (speculation, spilling into its own coin file, which the
            // recount takes over); reports begin at the demo's first fork.
            onBlock: () => {
              // Spilling after every block, the file is open and in use by now: it has no name.
              if (++reported === 1) spilledFiles = readdirSync(spillDir).length;
              if (fail && reported === 3) throw new Error('stop here');
            },
          });
          if (fail) {
            await expect(run).rejects.toThrow('stop here');
          } else {
            const result = await run;
            expect(result.stopped).toBe(false);
            // Every spill is on record (recount --stats): the coins it wrote, and the file after it.
            const spills = result.spills ?? [];
            expect(spills.length).toBeGreaterThan(3);
            let count = 0;
            for (const s of spills) {
              count += s.puts - s.dels;
              expect(s.count).toBeLessThanOrEqual(count);
              count = s.count;
              if (s.puts > 0) expect(s.writtenBytes).toBeGreaterThan(0);
            }
            expect(spills.some((s) => s.dels > 0)).toBe(true);
            expect(spills.at(-1)!.fileBytes).toBeGreaterThanOrEqual(spills[0]!.fileBytes);
          }
        } finally {
          await idx.close();
        }
        expect(reported).toBeGreaterThanOrEqual(3);
        expect(spilledFiles).toBe(0);
        expect(readdirSync(spillDir)).toEqual([]);
      }
    } finally {
      rmSync(spillDir, { recursive: true, force: true });
    }
  });
});

describe('connecting while the chain pass reads (speculation)', () => {
  const demoDir = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
  const magic = Buffer.from('fabfb5da', 'hex');
  let records: Array<{ bytes: Buffer; hash: string; prev: string }>;
  let best: Set<string>;
  let reference: ExportJson;
  beforeAll(async () => {
    records = [];
    for await (const r of readBlockRecords(demoDir, magic)) {
      records.push({ bytes: Buffer.from(r.bytes), hash: r.header.hash.toString('hex'), prev: r.header.prevHash.toString('hex') });
    }
    best = new Set((await loadBestChain(demoDir, regtest)).blocks.map((b) => b.hash.toString('hex')));
    [reference] = await exportsOf(demoDir, regtest, ENGINES.database!, [449]);
  });

  /** The export of the records in `files`, recounted in memory; a tiny budget makes speculation spill every block or every few. */
  async function memoryExportOf(files: Buffer[][], engine = ENGINES.memory!): Promise<ExportJson> {
    const dir = writeBlkDir(files, { magic, key: Buffer.from('a1b2c3d4e5f60718', 'hex') });
    try {
      const [ex] = await exportsOf(dir, regtest, engine, [449]);
      return ex!;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('the demo directory holds stale blocks, so the cases below mean something', () => {
    expect(records.filter((r) => !best.has(r.hash)).length).toBeGreaterThan(0);
  });

  it('gives the same registry when records come in a random order over several files', async () => {
    const rand = prng(5);
    const shuffled = [...records];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
    }
    const third = Math.ceil(shuffled.length / 3);
    const files = [shuffled.slice(0, third), shuffled.slice(third, 2 * third), shuffled.slice(2 * third)].map((f) => f.map((r) => r.bytes));
    expect(await memoryExportOf(files)).toEqual(reference);
  });

  it('gives the same registry when every stale block comes right after its parent, ahead of the chain\'s own child', async () => {
    const stale = records.filter((r) => !best.has(r.hash));
    const ordered: Buffer[] = [];
    const withStaleChildren = (r: { bytes: Buffer; hash: string }): void => {
      ordered.push(r.bytes);
      for (const s of stale) if (s.prev === r.hash) withStaleChildren(s);
    };
    for (const r of records.filter((x) => best.has(x.hash))) withStaleChildren(r);
    expect(ordered).toHaveLength(records.length);
    expect(await memoryExportOf([ordered])).toEqual(reference);
  });

  // The bet fails after speculation has spilled the stale blocks' coins and
  // registry rows into the temporary database: the recount must undo them.
  it.each(['memory, spilling every block', 'memory, spilling every few blocks'])(
    'gives the same registry when a stale branch is read first and speculation spills (%s)',
    async (engine) => {
      const stale = records.filter((r) => !best.has(r.hash));
      const chain = records.filter((r) => best.has(r.hash));
      // Each stale branch ahead of the chain's block at its height, parents before children.
      const ordered: Buffer[] = [];
      const withStaleChildren = (r: { bytes: Buffer; hash: string }): void => {
        ordered.push(r.bytes);
        for (const s of stale) if (s.prev === r.hash) withStaleChildren(s);
      };
      for (const r of chain) withStaleChildren(r);
      expect(await memoryExportOf([ordered], ENGINES[engine]!)).toEqual(reference);
      expect(await memoryExportOf([records.map((r) => r.bytes)], ENGINES[engine]!)).toEqual(reference);
    },
  );
});
