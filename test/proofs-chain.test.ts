import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { prng } from '../fixtures/generator/random.js';
import { openIndexStore } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { nodereg, ROOT } from './helpers/cli.js';
import { disconnectTip } from '../indexer/engine/disconnect.js';
import { checkDiff, diffBetween, proofAt, treeAt } from '../indexer/read/proofs.js';
import { exportAt, proofRootAt, type ExportJson } from '../indexer/read/queries.js';
import { verifyProof } from '../script/verifyproof.js';
import { connectRaw, tempIndex, type TempIndex } from './helpers/db.js';
import { refElement, refHash, refLeaves, refProof, sha } from './helpers/reftree.js';
import { chainOf, nextBlock, rawChainOf, stakeScript, TEST_PARAMS, type SynthBlock } from './helpers/synthetic.js';

/*
 * Proofs and diffs served from an index that went through reorgs, checked
 * at every height against the independent tree of test/helpers/reftree.ts
 * built from the export of that height.
 */

async function connectAll(idx: TempIndex, blocks: SynthBlock[], from = 0): Promise<void> {
  const { raw } = rawChainOf(blocks);
  for (let h = from; h < blocks.length; h++) {
    await connectRaw(idx, raw[h]!, h);
    await idx.view.spill(idx.state);
  }
}

/** An index of a chain that forked `switches` times on its way to its tip. */
async function reorgedIndex(seed: number, switches: number): Promise<{ idx: Awaited<ReturnType<typeof tempIndex>>; tip: number }> {
  const rand = prng(seed ^ 0x5eed);
  let chain = chainOf(14, seed);
  // Serialized blocks get real hashes, so the genesis hash comes with them.
  const idx = await tempIndex(rawChainOf(chain).params);
  await connectAll(idx, chain);
  for (let s = 0; s < switches; s++) {
    const fork = Math.floor(rand() * chain.length);
    const branch = chain.slice(0, fork + 1);
    for (let i = 0, n = 2 + Math.floor(rand() * 6); i < n; i++) branch.push(nextBlock(branch[branch.length - 1]!, rand));
    while (idx.state.tip!.height > fork) await disconnectTip(idx.state, idx.view);
    await connectAll(idx, branch, fork + 1);
    chain = branch;
  }
  return { idx, tip: chain.length - 1 };
}

// Every script the synthetic chains use, and one no chain ever announces.
const SCRIPTS = [...Array.from({ length: 6 }, (_, i) => stakeScript(i)), Buffer.concat([Buffer.of(0x00, 0x14), Buffer.alloc(20, 0xee)])];

describe('proofs on a chain with reorgs', () => {
  it.each([[11, 3], [29, 4]])('every stake, live, ended or never seen, gets a proof at every height that an independent tree confirms (seed %i)', async (seed, switches) => {
    const { idx, tip } = await reorgedIndex(seed, switches);
    try {
      let included = 0;
      let ended = 0;
      for (let h = 0; h <= tip; h++) {
        const ex: ExportJson = await exportAt(idx.db, TEST_PARAMS, h);
        const leaves = refLeaves(ex.nodes);
        const root = refHash(leaves).toString('hex');
        expect(await proofRootAt(idx.db, h)).toBe(root);
        // Both ways of building a past height's tree: from the registration rows (with later renewals replayed) and from the events.
        for (const via of ['registrations', 'events'] as const) expect([via, (await treeAt(idx.db, h, via)).rootHex()]).toEqual([via, root]);
        for (const script of SCRIPTS) {
          // From the stored proof-tree history ('k' and 'n' rows), and from a whole tree rebuilt from the registrations.
          const proof = await proofAt(idx.db, script, h, 'history');
          expect(await proofAt(idx.db, script, h, 'tree')).toEqual(proof);
          const node = ex.nodes.find((n) => n.stakeScript === script.toString('hex'));
          const live = node?.status === 'active';
          if (live) included++;
          else if (node) ended++;
          const ref = refProof(leaves, sha(script));
          expect(proof).toMatchObject({ height: h, proofRoot: root, included: live, siblings: ref.siblings });
          expect(proof.element).toBe(live ? refElement(node).toString('hex') : null);
          expect(verifyProof(proof, root)).toEqual({ valid: true, included: live });
        }
      }
      // The chains must exercise both answers, and exclusions of ended registrations.
      expect(included).toBeGreaterThan(0);
      expect(ended).toBeGreaterThan(0);
    } finally {
      await idx.close();
    }
  });

  it('a diff between random heights, applied to the earlier live set, gives the later roots', async () => {
    const { idx, tip } = await reorgedIndex(47, 3);
    const rand = prng(4747);
    try {
      let nonEmpty = 0;
      for (let i = 0; i < 12; i++) {
        const from = Math.floor(rand() * (tip + 1));
        const to = Math.floor(rand() * (tip + 1));
        const diff = await diffBetween(idx.db, TEST_PARAMS, from, to);
        const live = (await exportAt(idx.db, TEST_PARAMS, from)).nodes.filter((n) => n.status === 'active');
        expect(checkDiff(live, diff)).toBeNull();
        expect(diff.to).toMatchObject({ height: to, proofRoot: await proofRootAt(idx.db, to) });
        const changes = diff.added.length + diff.removed.length + diff.changed.length;
        if (changes > 0) {
          nonEmpty++;
          // Leaving out any one change is caught.
          const spoiled = diff.added.length > 0 ? { ...diff, added: diff.added.slice(1) }
            : diff.removed.length > 0 ? { ...diff, removed: diff.removed.slice(1) } : { ...diff, changed: diff.changed.slice(1) };
          expect(checkDiff(live, spoiled)).toMatch(/root after applying the diff/);
        }
      }
      expect(nonEmpty).toBeGreaterThan(0);
    } finally {
      await idx.close();
    }
  });

  it('a past height\'s tree is the same from the registration rows and from the events where registrations were renewed after it (demo chain)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-proofs-demo-'));
    try {
      const db = join(dir, 'db');
      expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), '--db', db]).status).toBe(0);
      const { db: level } = await openIndexStore(db, null, { create: false });
      try {
        const regtest = BUILTIN_NETWORKS.regtest!;
        const now = new Map((await exportAt(level, regtest)).nodes.map((n) => [`${n.firstHeight}:${n.firstTxid}`, n]));
        let renewedLater = 0;
        for (let h = 100; h <= 450; h++) {
          const stored = await proofRootAt(level, h);
          for (const via of ['registrations', 'events'] as const) expect([h, via, (await treeAt(level, h, via)).rootHex()]).toEqual([h, via, stored]);
          const live = (await exportAt(level, regtest, h)).nodes.filter((n) => n.status === 'active');
          // The proof-tree history a recount writes gives the stored root, and proofs the independent tree confirms.
          const leaves = refLeaves(live);
          for (const script of h % 5 !== 0 ? [] : [live[Math.floor(live.length / 2)]?.stakeScript, live[0]?.stakeScript, SCRIPTS[6]!.toString('hex')]) {
            if (script === undefined) continue;
            const proof = await proofAt(level, Buffer.from(script, 'hex'), h, 'history');
            expect([h, proof.proofRoot, proof.siblings]).toEqual([h, stored, refProof(leaves, sha(Buffer.from(script, 'hex'))).siblings]);
            expect(verifyProof(proof, stored).valid).toBe(true);
          }
          if (live.some((n) => now.get(`${n.firstHeight}:${n.firstTxid}`)!.tipHeight > h)) renewedLater++;
        }
        // The registration rows hold later states at these heights: the replayed ones must be the ones in the tree.
        expect(renewedLater).toBeGreaterThan(5);
      } finally {
        await level.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
