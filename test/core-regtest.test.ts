import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { blockHashAt, exportAt, utxoHashAt } from '../indexer/read/queries.js';
import { recount } from '../indexer/engine/recount.js';
import { tempIndex } from './helpers/db.js';
import { fixturePath } from './helpers/blocksdir.js';
import { nodereg, noderegIn } from './helpers/cli.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const FIXTURE = fixturePath('core-regtest');
const BLOCKS = join(FIXTURE, 'blocks');
interface NodeJson { bestblockhash: string; height: number; heights: Record<string, { hash: string; utxoMuhash: string; txouts: number }> }
const node = JSON.parse(readFileSync(join(FIXTURE, 'node.json'), 'utf8')) as NodeJson;
const regtest = BUILTIN_NETWORKS.regtest!;
const rpc = (b: Buffer): string => Buffer.from(b).reverse().toString('hex');

describe('recount of the blocks directory written by a real Core-family node', () => {
  it('ends at the node\'s best block, ignores the stale block, and matches its UTXO MuHash at every height', async () => {
    const idx = await tempIndex(regtest, { utxoHash: true });
    try {
      const result = await recount({ blocksDir: BLOCKS, params: regtest, db: idx.db });
      expect(result.height).toBe(node.height);
      expect(result.chain?.stats.stale).toBe(1);
      for (let h = 0; h <= node.height; h++) {
        expect({ h, hash: rpc(await blockHashAt(idx.db, h)) }).toEqual({ h, hash: node.heights[h]!.hash });
        expect({ h, muhash: await utxoHashAt(idx.db, h) }).toEqual({ h, muhash: node.heights[h]!.utxoMuhash });
      }
      const ex = await exportAt(idx.db, regtest);
      expect(ex.tip).toBe(node.bestblockhash);
      expect(ex.nodes).toHaveLength(1);
      expect(ex.nodes[0]).toMatchObject({ status: 'active', renewals: 1 });
      expect(ex.rejected.map((r) => r.reason)).toEqual(['TIMESTAMP_IN_FUTURE']);
    } finally {
      await idx.close();
    }
  });

  it('prints the node\'s muhash beside the root with recount --height --utxo-hash, for a sample of heights and memory budgets', async () => {
    // A temporary recount hashes the set at its tip from the coin table, or,
    // with --memory-mib 0 (a spill after every block), from the database;
    // without --height it connects while the chain is read (speculate.ts).
    const runs: Array<[number, string[]]> = [[0, []], [1, ['--memory-mib', '0']], [57, []], [101, ['--memory-mib', '0']], [114, []], [115, ['--memory-mib', '0']], [116, []]];
    for (const [h, extra] of runs) {
      const at = h === 116 ? [] : ['--height', String(h)];
      const res = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, ...at, '--utxo-hash', '--json', ...extra]);
      expect(res.status).toBe(0);
      const out = JSON.parse(res.stdout) as { height: number; tip: string; utxoMuhash: string };
      expect(out).toMatchObject({ height: h, tip: node.heights[h]!.hash, utxoMuhash: node.heights[h]!.utxoMuhash });
    }
  });

  it('answers utxo-hash --height from a kept index at every height', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-core-'));
    try {
      const db = join(dir, 'db');
      expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--utxo-hash', '--db', db]).status).toBe(0);
      for (const h of [0, 3, 50, 99, 116]) {
        const res = await noderegIn(['utxo-hash', '--db', db, '--height', String(h)]);
        expect(res.stdout.trim()).toBe(node.heights[h]!.utxoMuhash);
      }
      const above = await noderegIn(['utxo-hash', '--db', db, '--height', '117']);
      expect(above.status).toBe(1);
      expect(above.stderr).toMatch(/above the index tip 116/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses utxo-hash on an index built without --utxo-hash, saying how to rebuild', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-core-'));
    try {
      const db = join(dir, 'db');
      expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', db]).status).toBe(0);
      const res = await noderegIn(['utxo-hash', '--db', db]);
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/built without --utxo-hash/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
