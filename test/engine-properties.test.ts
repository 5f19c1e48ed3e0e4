import fc from 'fast-check';
import { prng } from '../fixtures/generator/random.js';
import { MemoryUtxo } from '../indexer/engine/coinview.js';
import { disconnectTip } from '../indexer/engine/disconnect.js';
import { exportAt, rootAt } from '../indexer/read/queries.js';
import { connectRaw, dump, tempIndex, type TempIndex } from './helpers/db.js';
import { chainOf, nextBlock, rawChainOf, type RawSynthBlock } from './helpers/synthetic.js';

/*
 * The laws of the one engine (connect.ts over the coin view, disconnect.ts),
 * under every commit policy a caller uses: the follower at the tip commits
 * every block, a catch-up or recount every few blocks, and a budget commits
 * whenever the view and the cached rows outgrow it. A tiny budget makes the
 * view spill every few blocks, so coins and balances keep moving between the
 * tables and the database.
 */

/** Whether to commit after a block, given the blocks connected since the last commit. */
type Policy = (idx: TempIndex, sinceCommit: number) => boolean;

/** What the tables of an empty view count: a tiny budget is a few kilobytes above it. */
const EMPTY_VIEW = new MemoryUtxo(false, []).usedBytes;
/**
 * A tiny budget also keeps no script's balance across a spill but the
 * stakes' (as a view past its script share does), so scripts paid again
 * are read back from the database; the other policies keep every script.
 */
const TINY: Policy = (idx) => {
  idx.view.keepScriptBytes = 0;
  return idx.view.usedBytes + idx.state.cacheBytes > EMPTY_VIEW + 3000;
};

const POLICIES: Array<[string, Policy]> = [
  ['committing every block', () => true],
  ['committing every 3 blocks', (_idx, n) => n >= 3],
  ['a tiny memory budget', TINY],
];

/**
 * Connects raw[from..] through the engine, committing when `policy` says so
 * and after the last block; `onCommit` sees the height of each commit once it
 * is written. Returns how many commits there were.
 */
async function connectAll(idx: TempIndex, raw: RawSynthBlock[], from: number, policy: Policy, onCommit?: (h: number) => Promise<void>): Promise<number> {
  let since = 0;
  let commits = 0;
  for (let h = from; h < raw.length; h++) {
    await connectRaw(idx, raw[h]!, h);
    since++;
    if (policy(idx, since) || h === raw.length - 1) {
      await idx.view.spill(idx.state);
      since = 0;
      commits++;
      await onCommit?.(h);
    }
  }
  return commits;
}

describe.each(POLICIES)('the engine, %s', (_name, policy) => {
  it('connecting random blocks and disconnecting them restores the store byte for byte', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 1, max: 25 }), async (seed, n) => {
      const { raw, params } = rawChainOf(chainOf(n, seed));
      const idx = await tempIndex(params, { utxoHash: true });
      try {
        const snapshots = new Map<number, string[]>();
        await connectAll(idx, raw, 0, policy, async (h) => {
          snapshots.set(h, await dump(idx.db));
        });
        expect(snapshots.size).toBeGreaterThan(0);
        let compared = 0;
        for (let h = raw.length - 1; h > 0; h--) {
          await disconnectTip(idx.state, idx.view);
          const want = snapshots.get(h - 1);
          if (want !== undefined) {
            expect(await dump(idx.db)).toEqual(want);
            compared++;
          }
        }
        expect(compared).toBe([...snapshots.keys()].filter((h) => h < raw.length - 1).length);
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
        await connectAll(live, rawChainOf(chain).raw, 0, policy);
        for (let s = 0; s < switches; s++) {
          const fork = Math.floor(rand() * chain.length);
          const branch = chain.slice(0, fork + 1);
          const extra = 1 + Math.floor(rand() * 10);
          for (let i = 0; i < extra; i++) branch.push(nextBlock(branch[branch.length - 1]!, rand));
          while (live.state.tip!.height > fork) await disconnectTip(live.state, live.view);
          await connectAll(live, rawChainOf(branch).raw, fork + 1, policy);
          chain = branch;
        }
        await connectAll(fresh, rawChainOf(chain).raw, 0, policy);
        expect(await dump(live.db)).toEqual(await dump(fresh.db));
        expect(await exportAt(live.db, params)).toEqual(await exportAt(fresh.db, params));
      } finally {
        await live.close();
        await fresh.close();
      }
    }), { numRuns: 15 });
  });

  it('gives the same store as committing only once, at the end', async () => {
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 2 ** 31 }), async (seed) => {
      const { raw, params } = rawChainOf(chainOf(30, seed));
      const a = await tempIndex(params, { utxoHash: true });
      const b = await tempIndex(params, { utxoHash: true });
      try {
        await connectAll(a, raw, 0, policy);
        expect(await connectAll(b, raw, 0, () => false)).toBe(1);
        expect(await dump(a.db)).toEqual(await dump(b.db));
      } finally {
        await a.close();
        await b.close();
      }
    }), { numRuns: 10 });
  });
});

describe('the tiny memory budget', () => {
  it('commits every few blocks, not after every block and not only at the end', async () => {
    const { raw, params } = rawChainOf(chainOf(40, 99));
    const idx = await tempIndex(params);
    try {
      const commits = await connectAll(idx, raw, 0, TINY);
      expect(commits).toBeGreaterThan(4);
      expect(commits).toBeLessThan(raw.length);
    } finally {
      await idx.close();
    }
  });
});

describe('state engine properties', () => {
  it('the stored root and proof root at every height equal those of the registrations the export reports live', async () => {
    const { RegistryRoot } = await import('../script/root.js');
    const { ProofTree, proofLeaf } = await import('../script/prooftree.js');
    const { registrationsAt, proofRootAt } = await import('../indexer/read/queries.js');
    const { rootElement } = await import('../indexer/engine/registry.js');
    const { raw, params } = rawChainOf(chainOf(60, 424242));
    const idx = await tempIndex(params);
    try {
      await connectAll(idx, raw, 0, TINY);
      let sawActive = false;
      for (let h = 0; h < raw.length; h++) {
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

describe('registrations at a past height, read lazily', () => {
  it('walking the registration rows gives what the scan of the event rows gives, from any place, falling back to the scan at any point', async () => {
    const { registrationsAt, registrationsFrom, byFirstSeen } = await import('../indexer/read/queries.js');
    const { K } = await import('../indexer/store/layout.js');
    const { raw, params } = rawChainOf(chainOf(60, 424242));
    const idx = await tempIndex(params);
    try {
      await connectAll(idx, raw, 0, TINY);
      let superseded = 0;
      for (let h = 0; h < raw.length; h++) {
        const all = await registrationsAt(idx.db, h);
        let begun = 0;
        for await (const _ of idx.db.keys(K.registrationsBegunBy(h))) begun++;
        superseded = Math.max(superseded, begun - all.length);
        const places = [null, ...all.filter((_, i) => i % 3 === 0), { firstHeight: h + 1, firstIndex: 0 }];
        for (const after of places) {
          const want = after === null ? all : all.filter((r) => byFirstSeen(r, after) > 0);
          for (const walk of [0, 2, Infinity]) {
            const got = [];
            for await (const r of registrationsFrom(idx.db, h, after, walk)) got.push(r);
            expect(got).toEqual(want);
          }
        }
      }
      // Some script registered again by a height, so the walk met rows it had to pass over.
      expect(superseded).toBeGreaterThan(0);
    } finally {
      await idx.close();
    }
  });
});

describe('listing at the tip', () => {
  it('pages through the FIRST_SEEN index to exactly the export\'s nodes, in order', async () => {
    const { pageNodes } = await import('../indexer/read/listing.js');
    const { raw, params } = rawChainOf(chainOf(80, 777));
    const idx = await tempIndex(params);
    try {
      await connectAll(idx, raw, 0, () => true);
      const ex = await exportAt(idx.db, params);
      expect(ex.nodes.length).toBeGreaterThan(3);
      const seen: unknown[] = [];
      let cursor: string | undefined;
      for (;;) {
        const page = await pageNodes(idx.db, params, { status: 'all', limit: 2, cursor });
        seen.push(...page.nodes.map(({ age: _age, blocksUntilExpiry: _b, expiresAt: _e, renewBy: _r, stakeMargin: _m, ...n }) => n));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(ex.nodes);
      const active = await pageNodes(idx.db, params, { status: 'active', limit: 1000 });
      expect(active.nodes.map((n) => n.stakeScript)).toEqual(ex.nodes.filter((n) => n.status === 'active').map((n) => n.stakeScript));
    } finally {
      await idx.close();
    }
  });
});
