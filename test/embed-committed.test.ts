import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../fixtures/generator/scenarios.js';
import { openIndexer } from '../indexer/api.js';
import { Follower, type FollowerOptions } from '../indexer/node/follower.js';
import { RpcClient } from '../indexer/node/rpc.js';
import { exportAt } from '../indexer/read/queries.js';
import { K } from '../indexer/store/layout.js';
import { ChainState } from '../indexer/store/state.js';
import { openStore, type DB } from '../indexer/store/store.js';
import { builtinNetwork, type NetworkParams } from '../script/params.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { demoBlocks, submitAll } from './helpers/chains.js';
import { ROOT } from './helpers/cli.js';

let dir: string;
let node: BcoinNode | undefined;

/** A bcoin node holding the demo chain (in `node`, stopped after each test) and a new index for it. */
async function demoNodeAndIndex(): Promise<{ bcoin: BcoinNode; blocks: Awaited<ReturnType<typeof demoBlocks>>; params: NetworkParams; db: DB }> {
  const bcoin = await startBcoin();
  node = bcoin;
  const blocks = await demoBlocks();
  await submitAll(bcoin, blocks.slice(1));
  const params = builtinNetwork('regtest');
  return { bcoin, blocks, params, db: await openStore(join(dir, 'db'), params, { create: true }) };
}

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

  it('commits each tip once: catching up and stopping write no commit of the tip the database already holds, and a restart writes none', async () => {
    const { blocks, params, db } = await demoNodeAndIndex();
    try {
      const follow = async (): Promise<Array<number | null>> => {
        const state = new ChainState(db, params);
        await state.load();
        // The tip of every commit, as it starts.
        const commits: Array<number | null> = [];
        const flush = state.flush.bind(state);
        const flushBehind = state.flushBehind.bind(state);
        state.flush = (extra) => {
          commits.push(state.tip?.height ?? null);
          return flush(extra);
        };
        state.flushBehind = (extra) => {
          commits.push(state.tip?.height ?? null);
          return flushBehind(extra);
        };
        const rpc = new RpcClient({ url: node!.url, user: 'x', password: node!.apiKey });
        const follower = new Follower({ state, rpc, pollIntervalMs: 1000, flushBlocks: 20 });
        await follower.run({ untilSynced: true });
        expect(state.committedTip!.height).toBe(blocks.length - 1);
        return commits;
      };
      const tip = blocks.length - 1;
      const first = await follow();
      // Some written behind the connects, the node's tip last, each tip once.
      expect(first.length).toBeGreaterThan(1);
      expect(first.at(-1)).toBe(tip);
      first.slice(1).forEach((h, i) => expect(h!).toBeGreaterThan(first[i]!));
      // Already synced: nothing to write.
      expect(await follow()).toEqual([]);
      expect(Buffer.from((await db.get(K.blockHash(tip)))!).reverse().toString('hex')).toBe(blocks[tip]!.hash);
    } finally {
      await db.close();
    }
  });

  // Catch-up writes every commit but its last behind the connects (coinview.ts
  // spillBehind): these budgets make it do so every 20 blocks, and after every block.
  const behind: Record<string, Partial<FollowerOptions>> = {
    'a commit every 20 blocks': { flushBlocks: 20 },
    'a budget that commits after every block': { memoryBytes: 0 },
  };
  it.each(Object.keys(behind))('with commits written behind the connects (%s), each block is announced once readable, in order, and the index equals the recount', async (name) => {
    const { bcoin, blocks, params, db } = await demoNodeAndIndex();
    try {
      const state = new ChainState(db, params);
      await state.load();
      const rpc = new RpcClient({ url: bcoin.url, user: 'x', password: bcoin.apiKey });
      const follower = new Follower({ state, rpc, pollIntervalMs: 1000, ...behind[name] });
      const order: string[] = [];
      const reads: Array<Promise<void>> = [];
      follower.on('connected', (b) => order.push(`connected ${b.height}`));
      follower.on('block', (b) => {
        order.push(`block ${b.height}`);
        expect(state.committedTip!.height).toBeGreaterThanOrEqual(b.height);
        // Readable from the database itself when announced.
        reads.push(db.get(K.blockHash(b.height)).then((raw) => {
          expect(raw && Buffer.from(raw).reverse().toString('hex')).toBe(blocks[b.height]!.hash);
        }));
      });
      await follower.run({ untilSynced: true });
      await Promise.all(reads);
      const announced = order.filter((e) => e.startsWith('block ')).map((e) => Number(e.slice(6)));
      expect(announced).toEqual(blocks.map((b) => b.height));
      // Written behind: some block was announced only after it had been connected and
      // logged (a commit that ends before the next connect announces its blocks first).
      expect(announced.some((h) => order.indexOf(`block ${h}`) > order.indexOf(`connected ${h}`))).toBe(true);
      const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as unknown;
      expect(JSON.parse(JSON.stringify(await exportAt(db, params))) as unknown).toEqual(expected);
    } finally {
      await db.close();
    }
  });
});
