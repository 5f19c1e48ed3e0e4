import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../fixtures/generator/scenarios.js';
import { openIndexer } from '../indexer/api.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { submitAll } from './helpers/chains.js';

let dir: string;
let node: BcoinNode | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-committed-'));
});
afterEach(async () => {
  await node?.stop();
  node = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('an embedder sees committed state only', () => {
  it('every block event comes after the flush that makes its block readable, and tip() never runs ahead of the database', async () => {
    node = await startBcoin();
    const c = demo();
    await submitAll(node, c.bestChain().slice(1));
    // A long flush interval and a large budget: catch-up connects many blocks between flushes.
    const indexer = await openIndexer({
      db: join(dir, 'db'), network: 'regtest', rpc: { url: node.url, user: 'x', password: node.apiKey }, memoryMiB: 256,
    });
    const checks: Array<Promise<void>> = [];
    const seen: number[] = [];
    indexer.on('block', (b) => {
      seen.push(b.height);
      const tip = indexer.tip();
      expect(tip).not.toBeNull();
      expect(tip!.height).toBeGreaterThanOrEqual(b.height);
      // The block's registry state is already on disk when the event fires.
      checks.push(indexer.root(b.height).then((root) => expect(root).toMatch(/^[0-9a-f]{64}$/)));
    });
    await indexer.start({ untilSynced: true });
    await Promise.all(checks);
    expect(seen).toEqual(Array.from({ length: c.height + 1 }, (_, h) => h));
    expect(indexer.tip()!.hash).toBe(c.tip.hash);
    await indexer.stop();
  });
});
