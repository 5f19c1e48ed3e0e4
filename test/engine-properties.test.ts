import fc from 'fast-check';
import { prng } from '../fixtures/generator/random.js';
import { connectBlock } from '../indexer/engine/connect.js';
import { disconnectTip } from '../indexer/engine/disconnect.js';
import { exportAt, rootAt } from '../indexer/read/queries.js';
import type { ChainState } from '../indexer/store/state.js';
import { dump, tempIndex } from './helpers/db.js';
import { chainOf, nextBlock, rawChainOf, TEST_PARAMS, type RawSynthBlock, type SynthBlock } from './helpers/synthetic.js';
import { MemoryUtxo } from '../indexer/engine/coinview.js';
import { connectInMemory } from '../indexer/engine/memconnect.js';

async function connectAll(state: ChainState, blocks: SynthBlock[], from = 0): Promise<void> {
  for (let h = from; h < blocks.length; h++) {
    await connectBlock(state, blocks[h]!.block, h);
    await state.flush();
  }
}

describe('state engine properties', () => {
  it('connecting random blocks and disconnecting them restores the store byte for byte', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 25 }), async (seed, n) => {
      const idx = await tempIndex(TEST_PARAMS, { utxoHash: true });
      try {
        const blocks = chainOf(n, seed);
        const snapshots: string[][] = [];
        for (let h = 0; h < blocks.length; h++) {
          await connectBlock(idx.state, blocks[h]!.block, h);
          await idx.state.flush();
          snapshots.push(await dump(idx.db));
        }
        for (let h = blocks.length - 1; h > 0; h--) {
          await disconnectTip(idx.state);
          expect(await dump(idx.db)).toEqual(snapshots[h - 1]);
        }
      } finally {
        await idx.close();
      }
    }), { numRuns: 25 });
  });

  it('any random sequence of reorgs ends where indexing the final chain from scratch ends', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 5 }), async (seed, switches) => {
      const rand = prng(seed ^ 0x5eed);
      const live = await tempIndex(TEST_PARAMS);
      const fresh = await tempIndex(TEST_PARAMS);
      try {
        let chain = chainOf(8 + Math.floor(rand() * 8), seed);
        await connectAll(live.state, chain);
        for (let s = 0; s < switches; s++) {
          const fork = Math.floor(rand() * chain.length);
          const branch = chain.slice(0, fork + 1);
          const extra = 1 + Math.floor(rand() * 10);
          for (let i = 0; i < extra; i++) branch.push(nextBlock(branch[branch.length - 1]!, rand));
          while (live.state.tip!.height > fork) await disconnectTip(live.state);
          await connectAll(live.state, branch, fork + 1);
          chain = branch;
        }
        await connectAll(fresh.state, chain);
        expect(await dump(live.db)).toEqual(await dump(fresh.db));
        expect(await exportAt(live.db, TEST_PARAMS)).toEqual(await exportAt(fresh.db, TEST_PARAMS));
      } finally {
        await live.close();
        await fresh.close();
      }
    }), { numRuns: 20 });
  });

  it('flushing every block or only at the end gives the same store', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), async (seed) => {
      const a = await tempIndex(TEST_PARAMS);
      const b = await tempIndex(TEST_PARAMS);
      try {
        const blocks = chainOf(30, seed);
        await connectAll(a.state, blocks);
        for (let h = 0; h < blocks.length; h++) await connectBlock(b.state, blocks[h]!.block, h);
        await b.state.flush();
        expect(await dump(a.db)).toEqual(await dump(b.db));
      } finally {
        await a.close();
        await b.close();
      }
    }), { numRuns: 15 });
  });

  it('the stored root and proof root at every height equal those of the registrations the export reports live', async () => {
    const { RegistryRoot } = await import('../script/root.js');
    const { ProofTree, proofLeaf } = await import('../script/prooftree.js');
    const { registrationsAt, proofRootAt } = await import('../indexer/read/queries.js');
    const { rootElement } = await import('../indexer/engine/registry.js');
    const idx = await tempIndex(TEST_PARAMS);
    try {
      const blocks = chainOf(60, 424242);
      await connectAll(idx.state, blocks);
      let sawActive = false;
      for (let h = 0; h < blocks.length; h++) {
        const root = new RegistryRoot();
        const tree = new ProofTree();
        for (const r of await registrationsAt(idx.db, h)) {
          if (r.status === 'active') {
            root.insert(rootElement(r));
            const leaf = proofLeaf(rootElement(r));
            tree.insert(leaf.key, leaf.value);
            sawActive = true;
          }
        }
        expect(await rootAt(idx.db, h)).toBe(root.finalize());
        expect(await proofRootAt(idx.db, h)).toBe(tree.rootHex());
      }
      expect(sawActive).toBe(true);
    } finally {
      await idx.close();
    }
  });
});

/**
 * Connects raw[from..] through the coin view, as a kept-index recount does,
 * spilling into the database after every `every` blocks and at the end;
 * `onSpill` sees the height of each spill once it is written.
 */
async function viewConnectAll(state: ChainState, raw: RawSynthBlock[], from: number, every: number, onSpill?: (h: number) => Promise<void>): Promise<void> {
  const mem = new MemoryUtxo(false, []);
  if (state.tip !== null) await mem.resume(state);
  for (let h = from; h < raw.length; h++) {
    await mem.prefetch(state.db, raw[h]!.bytes, raw[h]!.txids);
    connectInMemory(state, mem, raw[h]!.bytes, raw[h]!.txids, h);
    if ((h - from) % every === every - 1 || h === raw.length - 1) {
      await mem.spill(state);
      await onSpill?.(h);
    }
  }
}

describe.each([1, 3])('the coin view, spilling after every %i block(s)', (every) => {
  it('connecting random blocks and disconnecting them restores the store byte for byte', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 25 }), async (seed, n) => {
      const { raw, params } = rawChainOf(chainOf(n, seed));
      const idx = await tempIndex(params, { utxoHash: true });
      try {
        const snapshots = new Map<number, string[]>();
        await viewConnectAll(idx.state, raw, 0, every, async (h) => {
          snapshots.set(h, await dump(idx.db));
        });
        expect(snapshots.size).toBeGreaterThan(0);
        for (let h = raw.length - 1; h > 0; h--) {
          await disconnectTip(idx.state);
          const want = snapshots.get(h - 1);
          if (want !== undefined) expect(await dump(idx.db)).toEqual(want);
        }
      } finally {
        await idx.close();
      }
    }), { numRuns: 20 });
  });

  it('any random sequence of reorgs ends where indexing the final chain from scratch ends', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 5 }), async (seed, switches) => {
      const rand = prng(seed ^ 0x5eed);
      let chain = chainOf(8 + Math.floor(rand() * 8), seed);
      const { params } = rawChainOf(chain);
      const live = await tempIndex(params);
      const fresh = await tempIndex(params);
      try {
        await viewConnectAll(live.state, rawChainOf(chain).raw, 0, every);
        for (let s = 0; s < switches; s++) {
          const fork = Math.floor(rand() * chain.length);
          const branch = chain.slice(0, fork + 1);
          const extra = 1 + Math.floor(rand() * 10);
          for (let i = 0; i < extra; i++) branch.push(nextBlock(branch[branch.length - 1]!, rand));
          while (live.state.tip!.height > fork) await disconnectTip(live.state);
          await viewConnectAll(live.state, rawChainOf(branch).raw, fork + 1, every);
          chain = branch;
        }
        await viewConnectAll(fresh.state, rawChainOf(chain).raw, 0, every);
        expect(await dump(live.db)).toEqual(await dump(fresh.db));
        expect(await exportAt(live.db, params)).toEqual(await exportAt(fresh.db, params));
      } finally {
        await live.close();
        await fresh.close();
      }
    }), { numRuns: 15 });
  });
});

describe('listing at the tip', () => {
  it('pages through the FIRST_SEEN index to exactly the export\'s nodes, in order', async () => {
    const { pageNodes } = await import('../indexer/read/listing.js');
    const idx = await tempIndex(TEST_PARAMS);
    try {
      await connectAll(idx.state, chainOf(80, 777));
      const ex = await exportAt(idx.db, TEST_PARAMS);
      expect(ex.nodes.length).toBeGreaterThan(3);
      const seen: unknown[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await pageNodes(idx.db, TEST_PARAMS, { status: 'all', limit: 2, cursor });
        seen.push(...page.nodes.map(({ age: _age, blocksUntilExpiry: _b, expiresAt: _e, renewBy: _r, stakeMargin: _m, ...n }) => n));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(ex.nodes);
      const active = await pageNodes(idx.db, TEST_PARAMS, { status: 'active', limit: 1000 });
      expect(active.nodes.map((n) => n.stakeScript)).toEqual(ex.nodes.filter((n) => n.status === 'active').map((n) => n.stakeScript));
    } finally {
      await idx.close();
    }
  });
});
