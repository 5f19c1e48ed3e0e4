import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScannedBlock, ScannedTx } from '../indexer/chain/scanner.js';
import { MemoryUtxo } from '../indexer/engine/coinview.js';
import { connectBlock } from '../indexer/engine/connect.js';
import { decodeCoin } from '../indexer/store/codec.js';
import { CoinFile, type SpillRecord } from '../indexer/store/coinfile.js';
import { K, P, parse } from '../indexer/store/layout.js';
import { ChainState } from '../indexer/store/state.js';
import { openStore } from '../indexer/store/store.js';
import { genesis, rawChainOf, stakeScript, TEST_PARAMS, type SynthBlock } from './helpers/synthetic.js';

/*
 * Repeated txids through a throwaway recount's coin file (coinview.ts
 * `connecting`, coinfile.ts `CoinWrites.fresh`): a spill adds its coins
 * without looking for ones to replace only while no txid can have repeated.
 * A chain whose coinbase txid repeats (Bitcoin's BIP30 exceptions), both
 * while its earlier output is unspent and after it was spent, so that a
 * transaction spending it repeats too, must leave in the file exactly the
 * coins a kept index leaves in the database.
 */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-coinfile-repeats-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const txid = (name: string): Buffer => createHash('sha256').update(name).digest();
const NULL_IN = { prevTxid: Buffer.alloc(32), prevVout: 0xffffffff };

function coinbase(name: string, value: bigint, script: Buffer): ScannedTx {
  return { index: 0, txid: txid(name), coinbase: true, inputs: [NULL_IN], outputs: [{ value, script }] };
}

function spend(name: string, index: number, from: Array<[string, number]>, value: bigint, script: Buffer): ScannedTx {
  return { index, txid: txid(name), coinbase: false, inputs: from.map(([t, vout]) => ({ prevTxid: txid(t), prevVout: vout })), outputs: [{ value, script }] };
}

/** Blocks after genesis, each a list of transactions (the first a coinbase). */
function chainOf(blocks: ScannedTx[][]): SynthBlock[] {
  const out = [genesis()];
  for (const txs of blocks) {
    const parent = out[out.length - 1]!.block;
    const block: ScannedBlock = { hash: txid(`block${out.length}`), header: Buffer.alloc(80), prevHash: parent.hash, merkleRoot: Buffer.alloc(32), time: parent.time + 600, bits: 0x207fffff, txs };
    out.push({ block, utxos: [], tips: new Map() });
  }
  return out;
}

/**
 * Connects every block, spilling after each one, into a throwaway index with a coin file (or a kept index when `file` is false); returns its coins, outpoint hex to "height coinbase value script".
 * `spills` gets the file's spill records, one a block; with `late`, the file is set only after genesis is connected (before anything is spilled).
 */
async function coinsAfter(blocks: SynthBlock[], file: boolean, spills?: SpillRecord[], late = false): Promise<Map<string, string>> {
  const { raw, params } = rawChainOf(blocks, TEST_PARAMS);
  const db = await openStore(join(dir, file ? 'file' : 'kept'), params, { create: true });
  const state = new ChainState(db, params, file);
  await state.load();
  const view = new MemoryUtxo(false, []);
  if (file && !late) view.coinFile = CoinFile.create(dir, 1, 'off');
  const show = (v: Buffer): string => {
    const c = decodeCoin(v);
    return `${c.height} ${c.coinbase} ${c.value} ${c.script.toString('hex')}`;
  };
  try {
    for (let h = 0; h < raw.length; h++) {
      await view.prefetch(db, raw[h]!.bytes, raw[h]!.txids);
      connectBlock(state, view, raw[h]!.bytes, raw[h]!.txids, h);
      if (file && late && h === 0) view.coinFile = CoinFile.create(dir, 1, 'off');
      await view.spill(state);
    }
    if (file) spills?.push(...view.coinFile!.spills);
    const coins = new Map<string, string>();
    if (file) {
      for (const [k, v] of view.coinFile!.entries()) {
        const key = k.toString('hex');
        // A key held twice would hide here: count the entries too.
        expect(coins.has(key)).toBe(false);
        coins.set(key, show(v));
      }
      expect(view.coinFile!.count).toBe(coins.size);
    } else {
      for await (const [k, v] of db.iterator(K.all(P.coin))) {
        const { txid: t, vout } = parse.coin(k);
        const op = Buffer.alloc(36);
        Buffer.from(t).copy(op);
        op.writeUInt32BE(vout, 32);
        coins.set(op.toString('hex'), show(v));
      }
    }
    return coins;
  } finally {
    view.coinFile?.close();
    await db.close();
  }
}

describe('repeated txids through the coin file', () => {
  const s = (i: number): Buffer => stakeScript(i);
  it('a coinbase repeated while its coin is unspent, and a transaction repeated after one was: each replaces the coin it repeats', async () => {
    const blocks = chainOf([
      [coinbase('A', 1000n, s(1))],
      [coinbase('B', 2000n, s(2)), spend('T', 1, [['A', 0]], 900n, s(3))],
      // A again: its coin was spent, so A:0 is simply new again.
      [coinbase('A', 1000n, s(1))],
      // T again, spending A:0 again: T:0 of block 2 is unspent, so this one replaces it (height 4, not 2).
      [coinbase('D', 3000n, s(4)), spend('T', 1, [['A', 0]], 900n, s(3))],
      // B again while B:0 is unspent: replaced (height 5).
      [coinbase('B', 2000n, s(2))],
      // Spends both replaced coins once: neither may be left behind.
      [coinbase('F', 4000n, s(5)), spend('U', 1, [['T', 0], ['B', 0]], 2800n, s(6))],
      [coinbase('G', 5000n, s(1))],
    ]);
    const kept = await coinsAfter(blocks, false);
    const file = await coinsAfter(blocks, true);
    expect(file).toEqual(kept);
    // What both hold: the coinbases D, F, G and U's coin (genesis's is never a coin).
    expect([...file.values()].sort()).toEqual([
      `4 true 3000 ${s(4).toString('hex')}`, `6 true 4000 ${s(5).toString('hex')}`, `6 false 2800 ${s(6).toString('hex')}`, `7 true 5000 ${s(1).toString('hex')}`,
    ].sort());
  });

  it('a coinbase repeated while unspent and never spent after: the file holds it once, at its later height', async () => {
    const blocks = chainOf([
      [coinbase('A', 1000n, s(1))],
      [coinbase('B', 2000n, s(2))],
      [coinbase('A', 1000n, s(1))],
      [coinbase('C', 3000n, s(3))],
    ]);
    const kept = await coinsAfter(blocks, false);
    const file = await coinsAfter(blocks, true);
    expect(file).toEqual(kept);
    expect([...file.values()].filter((v) => v.endsWith(s(1).toString('hex')))).toEqual([`3 true 1000 ${s(1).toString('hex')}`]);
  });

  it('a transaction spending a repeated coinbase repeats, and one spending it repeats too, while their first coins are in the file: each replaces its coin', async () => {
    // The repeats come in the coinbase's own block, or one block after another.
    const shapes: ScannedTx[][][] = [
      [
        [coinbase('A', 1000n, s(1)), spend('T', 1, [['A', 0]], 900n, s(3)), spend('U', 2, [['T', 0]], 800n, s(4))],
        [coinbase('A', 1000n, s(1)), spend('T', 1, [['A', 0]], 900n, s(3)), spend('U', 2, [['T', 0]], 800n, s(4))],
      ],
      [
        [coinbase('A', 1000n, s(1))],
        [coinbase('B', 2000n, s(2)), spend('T', 1, [['A', 0]], 900n, s(3))],
        [coinbase('C', 3000n, s(5)), spend('U', 1, [['T', 0]], 800n, s(4))],
        // A again: A:0 and T:0 were spent, U:0 (height 3) is in the file.
        [coinbase('A', 1000n, s(1))],
        [coinbase('D', 4000n, s(6)), spend('T', 1, [['A', 0]], 900n, s(3))],
        // U again while U:0 of block 3 is in the file: it must replace it.
        [coinbase('E', 5000n, s(7)), spend('U', 1, [['T', 0]], 800n, s(4))],
      ],
    ];
    for (const shape of shapes) {
      // Then unrelated coins, and U's coin spent once: were it held twice, one copy would be left.
      const blocks = chainOf([...shape, [coinbase('F', 6000n, s(8)), spend('V', 1, [['U', 0]], 700n, s(9))], [coinbase('G', 7000n, s(1))]]);
      const kept = await coinsAfter(blocks, false);
      const spills: SpillRecord[] = [];
      const file = await coinsAfter(blocks, true, spills);
      expect(file).toEqual(kept);
      expect([...file.values()].some((v) => v.endsWith(s(4).toString('hex')))).toBe(false);
      expect([...file.values()].filter((v) => v.endsWith(s(9).toString('hex')))).toEqual([`${shape.length + 1} false 700 ${s(9).toString('hex')}`]);
      // From A's repeat on, the lineage's coins that reach a spill look first (V's too: it spends U), the others do not:
      // in one block only U:0 is left (A:0 and T:0 are spent in it); one a block, A:0, then T:0 beside D:0, then U:0 beside E:0.
      const from = shape.length === 2 ? 2 : 4;
      const after = spills.slice(from).map((r) => [r.puts, r.replacing]);
      expect(after).toEqual(shape.length === 2 ? [[1, 1], [2, 1], [1, 0]] : [[1, 1], [2, 1], [2, 1], [2, 1], [1, 0]]);
      rmSync(join(dir, 'kept'), { recursive: true, force: true });
      rmSync(join(dir, 'file'), { recursive: true, force: true });
    }
  });

  it('after a coinbase repeats, only the puts whose txid may have repeated look for a coin to replace', async () => {
    const blocks = chainOf([
      [coinbase('A', 1000n, s(1))],
      [coinbase('B', 2000n, s(2))],
      // A again while A:0 is unspent (as Bitcoin's 91842 repeats 91812).
      [coinbase('A', 1000n, s(1))],
      // Unrelated coins: a coinbase and a spend of B.
      [coinbase('C', 3000n, s(3)), spend('X', 1, [['B', 0]], 1900n, s(4))],
      // Y spends the repeated A: Y may repeat, D may not.
      [coinbase('D', 4000n, s(5)), spend('Y', 1, [['A', 0]], 900n, s(6))],
      [coinbase('E', 5000n, s(7)), spend('Z', 1, [['C', 0], ['X', 0]], 4800n, s(8))],
    ]);
    const kept = await coinsAfter(blocks, false);
    const spills: SpillRecord[] = [];
    const file = await coinsAfter(blocks, true, spills);
    expect(file).toEqual(kept);
    // One spill a block (genesis's puts nothing: its coinbase is never a coin).
    expect(spills.map((r) => r.puts)).toEqual([0, 1, 1, 1, 2, 2, 2]);
    expect(spills.map((r) => r.replacing)).toEqual([0, 0, 0, 1, 0, 1, 0]);
  });

  it('blocks connected before the coin file was set: every put looks for a coin to replace, and the file still holds each coin once', async () => {
    const blocks = chainOf([
      [coinbase('A', 1000n, s(1))],
      [coinbase('B', 2000n, s(2))],
      [coinbase('A', 1000n, s(1))],
      [coinbase('C', 3000n, s(3)), spend('X', 1, [['B', 0]], 1900n, s(4))],
    ]);
    const kept = await coinsAfter(blocks, false);
    const spills: SpillRecord[] = [];
    const file = await coinsAfter(blocks, true, spills, true);
    expect(file).toEqual(kept);
    expect(spills.map((r) => r.replacing)).toEqual(spills.map((r) => r.puts));
    expect(spills.map((r) => r.puts)).toEqual([0, 1, 1, 1, 2]);
  });
});
