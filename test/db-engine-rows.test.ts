import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { BlockReader } from '../indexer/chain/blkfiles.js';
import { loadBestChain } from '../indexer/chain/chain.js';
import { scanBlock } from '../indexer/chain/scanner.js';
import { MemoryUtxo } from '../indexer/engine/coinview.js';
import { RowOrder, wordAt } from '../indexer/engine/keyorder.js';
import { ScriptTable } from '../indexer/engine/memtables.js';
import { disconnectTip } from '../indexer/engine/disconnect.js';
import { recount, type RecountOptions } from '../indexer/engine/recount.js';
import { utxoElement } from '../indexer/engine/utxohash.js';
import { utxoHashAt } from '../indexer/read/queries.js';
import { encodeCoin, encodeHeightState, KEY_ONLY_VALUE } from '../indexer/store/codec.js';
import { K, P } from '../indexer/store/layout.js';
import { ChainState, UNDO_AHEAD_RESERVE } from '../indexer/store/state.js';
import { decodeUndo, encodeUndo, UndoWriter, type UndoRecord } from '../indexer/store/undo.js';
import { readTip, type DB } from '../indexer/store/store.js';
import { MuHash3072 } from '../script/muhash.js';
import { proofLeaf } from '../script/prooftree.js';
import { BUILTIN_NETWORKS, parseParams, type NetworkParams } from '../script/params.js';
import { fixturePath } from './helpers/blocksdir.js';
import { ROOT } from './helpers/cli.js';
import { dump, tempIndex } from './helpers/db.js';

/*
 * A kept index (`recount --db`, resumed recounts, --utxo-hash) is written by
 * the one engine (connect.ts over the coin view), whose coins and balances
 * move between typed-array tables and the database as the memory budget
 * says. These tests hold its rows to what must not depend on that: every row
 * (coins, script → outpoint rows, balances, registry, per-height rows, undo
 * records, the tip) is byte for byte the same whether the view spills after
 * every block, every few blocks or never; the coin, script-index and balance
 * rows and the UTXO hash equal an independent replay of the chain; resuming
 * changes nothing; and the undo records disconnect to exactly the index of a
 * shorter recount.
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
async function rowsOf(blocksDir: string, params: NetworkParams, utxoHash: boolean, runs: Run[], then?: (db: DB) => Promise<void>): Promise<string[]> {
  const idx = await tempIndex(params, { utxoHash });
  try {
    for (const run of runs) {
      const result = await recount({ blocksDir, params, db: idx.db, ...run });
      expect(result.stopped).toBe(false);
    }
    await then?.(idx.db);
    return await dump(idx.db);
  } finally {
    await idx.close();
  }
}

/** Disconnects the top `n` blocks of the index in `db` with its undo records, as a reorg does. */
async function disconnectBlocks(db: DB, params: NetworkParams, n: number): Promise<void> {
  const state = new ChainState(db, params);
  await state.load();
  const view = new MemoryUtxo(false, []);
  await view.resume(state);
  for (let i = 0; i < n; i++) await disconnectTip(state, view);
}

/** The default budget: these chains fit, so the view never spills before the last commit. */
const NEVER: Run = {};
const BUDGETS: Record<string, Run> = {
  'a budget that spills after every block': { memoryBytes: 0 },
  'a budget that spills every few blocks': { memoryBytes: 96 * 1024 },
  // The view also gets what the chain's txids leave of their share (all but the demo chain's fill it).
  'a budget with the txids\' unused share lent to the view': { memoryBytes: 32 * 1024, keepTxidBytes: 64 * 1024, txidShareToView: true },
};

/**
 * The coin ('u'), script → outpoint ('o') and balance ('b') rows of the
 * chain's UTXO set at its tip, and Core's UTXO-set hash of it, from a replay
 * that shares nothing with the engine but the row encodings: scanned
 * transactions and one Map of coins.
 */
async function replayed(blocksDir: string, params: NetworkParams): Promise<{ rows: string[]; utxoHash: string }> {
  const chain = await loadBestChain(blocksDir, params);
  const reader = new BlockReader(chain.xorKey);
  const coins = new Map<string, { txid: Buffer; vout: number; value: bigint; height: number; coinbase: boolean; script: Buffer }>();
  try {
    for (let h = 1; h < chain.blocks.length; h++) {
      for (const tx of scanBlock(reader.read(chain.blocks[h]!)).txs) {
        if (!tx.coinbase) for (const i of tx.inputs) expect(coins.delete(`${i.prevTxid.toString('hex')}:${i.prevVout}`)).toBe(true);
        tx.outputs.forEach((o, vout) => {
          if (o.script[0] === 0x6a) return;
          coins.set(`${tx.txid.toString('hex')}:${vout}`, { txid: Buffer.from(tx.txid), vout, value: o.value, height: h, coinbase: tx.coinbase, script: Buffer.from(o.script) });
        });
      }
    }
  } finally {
    reader.close();
  }
  const rows: string[] = [];
  const balances = new Map<string, bigint>();
  const hash = new MuHash3072();
  for (const c of coins.values()) {
    const op = Buffer.alloc(36);
    c.txid.copy(op);
    op.writeUInt32BE(c.vout, 32);
    rows.push(`${K.coin(op).toString('hex')}=${encodeCoin(c).toString('hex')}`);
    rows.push(`${K.scriptCoin(c.script, op).toString('hex')}=${KEY_ONLY_VALUE.toString('hex')}`);
    balances.set(c.script.toString('hex'), (balances.get(c.script.toString('hex')) ?? 0n) + c.value);
    const el = utxoElement(c.txid, c.vout, c);
    if (el) hash.insert(el);
  }
  for (const [script, value] of balances) {
    if (value === 0n) continue;
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(value);
    rows.push(`${K.balance(Buffer.from(script, 'hex')).toString('hex')}=${v.toString('hex')}`);
  }
  return { rows: rows.sort(), utxoHash: hash.finalize().reverse().toString('hex') };
}

/**
 * The rows of one uninterrupted recount with --utxo-hash under the default
 * budget: the reference of two cases of each chain, recounted once per chain.
 */
const referenceRows = new Map<string, Promise<string[]>>();
function referenceOf(blocksDir: string, params: NetworkParams): Promise<string[]> {
  let rows = referenceRows.get(blocksDir);
  if (rows === undefined) {
    rows = rowsOf(blocksDir, params, true, [NEVER]);
    referenceRows.set(blocksDir, rows);
  }
  return rows;
}

const COIN_PREFIXES = [P.coin, P.scriptCoin, P.balance].map((p) => Buffer.of(p).toString('hex'));

describe.each(CHAINS)('a kept index of %s', (_name, chainOf) => {
  it.each([false, true])('is written row for row the same under every memory budget (--utxo-hash: %s)', async (utxoHash) => {
    const { blocksDir, params } = chainOf();
    const reference = await (utxoHash ? referenceOf(blocksDir, params) : rowsOf(blocksDir, params, false, [NEVER]));
    expect(reference.some((r) => r.startsWith('55'))).toBe(true); // 'U': undo records are there to compare
    expect(reference.some((r) => r.startsWith('6f'))).toBe(true); // 'o': script → outpoint rows too
    for (const [name, run] of Object.entries(BUDGETS)) {
      const got = await rowsOf(blocksDir, params, utxoHash, [run]);
      expect({ budget: name, rows: got }).toEqual({ budget: name, rows: reference });
    }
  }, 600_000);

  it('holds exactly the coins, script index, balances and UTXO hash of an independent replay of the chain', async () => {
    const { blocksDir, params } = chainOf();
    const want = await replayed(blocksDir, params);
    expect(want.rows.length).toBeGreaterThan(0);
    for (const run of [NEVER, BUDGETS['a budget that spills after every block']!]) {
      let hash: string | null = null;
      const rows = await rowsOf(blocksDir, params, true, [run], async (db) => {
        const state = new ChainState(db, params);
        await state.load();
        hash = await utxoHashAt(db, state.tip!.height);
      });
      expect(rows.filter((r) => COIN_PREFIXES.includes(r.slice(0, 2)))).toEqual(want.rows);
      expect(hash).toBe(want.utxoHash);
    }
  }, 600_000);

  it('is never written by --fast, which keeps only the stakes\' coins: the recount refuses before writing a row', async () => {
    const { blocksDir, params } = chainOf();
    const idx = await tempIndex(params);
    try {
      await expect(recount({ blocksDir, params, db: idx.db, fast: true })).rejects.toThrow(/--fast keeps only the coins of announced stakes/);
      expect((await dump(idx.db)).filter((r) => !r.startsWith('4d'))).toEqual([]); // only the 'M' meta rows
    } finally {
      await idx.close();
    }
  });

  it('resumed from a shorter recount, ends in the same rows as one uninterrupted run', async () => {
    const { blocksDir, params } = chainOf();
    const reference = await referenceOf(blocksDir, params);
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    for (const [name, run] of Object.entries({ 'the default budget': NEVER, ...BUDGETS })) {
      const got = await rowsOf(blocksDir, params, true, [{ ...run, height: Math.floor(top / 3) }, { ...run, height: Math.floor((2 * top) / 3) }, run]);
      expect({ budget: name, rows: got }).toEqual({ budget: name, rows: reference });
    }
  }, 600_000);

  it('disconnects with its undo records to exactly the index of a shorter recount', async () => {
    const { blocksDir, params } = chainOf();
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    const back = Math.min(12, top);
    const shorter = await rowsOf(blocksDir, params, true, [{ height: top - back }]);
    for (const [name, run] of Object.entries({ 'the default budget': NEVER, ...BUDGETS })) {
      const got = await rowsOf(blocksDir, params, true, [run], async (db) => {
        await disconnectBlocks(db, params, back);
      });
      expect({ budget: name, rows: got }).toEqual({ budget: name, rows: shorter });
    }
  }, 600_000);
});

// A kept recount writes each block's undo record as soon as the block is connected, ahead of the
// flush that commits its tip (state.ts `undoAhead`): a run that ends without that flush leaves
// records above the committed tip, which must change nothing the index is.
describe.each(CHAINS.slice(1))('a kept index of %s whose recount failed between spills', (_name, chainOf) => {
  it('commits no tip before its undo records, drops the records above the tip, and resumes to the rows of one run', async () => {
    const { blocksDir, params } = chainOf();
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    const failAt = top - 2;
    const run = BUDGETS['a budget that spills every few blocks']!;
    const idx = await tempIndex(params, { utxoHash: true });
    try {
      let settled = false;
      const failing = recount({
        blocksDir, params, db: idx.db, ...run,
        onBlock: (b) => {
          if (b.height === failAt) throw new Error('stopped here');
        },
      });
      failing.catch(() => undefined).finally(() => { settled = true; });
      // Every tip the database commits has the undo records of its blocks: read while it writes them.
      const commits = new Set<number>();
      while (!settled) {
        const tip = await readTip(idx.db);
        if (tip === null || commits.has(tip.height)) continue;
        commits.add(tip.height);
        const undo = await idx.db.getMany(Array.from({ length: tip.height + 1 }, (_, h) => K.undo(h)));
        expect(undo.findIndex((u) => u === undefined)).toBe(-1);
      }
      await expect(failing).rejects.toThrow('stopped here');
      expect(commits.size).toBeGreaterThan(1);
      const committed = (await readTip(idx.db))!.height;
      expect(committed).toBeLessThan(failAt);
      // The failed block's record was written ahead of any flush: wait for its write to land.
      let above: number[] = [];
      for (let i = 0; i < 1000 && !above.includes(failAt); i++) {
        above = [];
        for await (const k of idx.db.keys({ gt: K.undo(committed), lt: Buffer.of(P.undo + 1) })) above.push(k.readUInt32BE(1));
        if (!above.includes(failAt)) await new Promise((r) => setTimeout(r, 5));
      }
      expect(above).toContain(failAt);

      // Recounted to the committed tip only: the records above it go, and the rows are those of a recount that stopped there.
      await recount({ blocksDir, params, db: idx.db, ...run, height: committed });
      expect(await dump(idx.db)).toEqual(await rowsOf(blocksDir, params, true, [{ height: committed }]));

      await recount({ blocksDir, params, db: idx.db, ...run });
      expect(await dump(idx.db)).toEqual(await referenceOf(blocksDir, params));
    } finally {
      await idx.close();
    }
  }, 600_000);
});

// The two small chains (the demo chain's blocks write registry rows too): the format change is
// about reading, and the writer's bytes are held to the reference encoder below.
describe.each(CHAINS.slice(0, 2))('a kept index of %s, made by an older nodereg', (_name, chainOf) => {
  it('disconnects and reconnects across undo records an older nodereg wrote (format 1) to the rows of one format', async () => {
    const { blocksDir, params } = chainOf();
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    const back = Math.min(12, top);
    const mid = top - Math.floor(back / 2);
    const U = Buffer.of(P.undo).toString('hex');
    const isUndo = (r: string): boolean => r.startsWith(U);
    const format1 = (r: string): boolean => isUndo(r) && !r.split('=')[1]!.startsWith('ffffffff02');
    // Either format as format 2: what the two indexes must agree on beside every other row byte for byte.
    const norm = (rows: string[]): string[] => rows.map((r) => {
      if (!isUndo(r)) return r;
      const [k, v] = r.split('=');
      return `${k}=${encodeUndo(decodeUndo(Buffer.from(v!, 'hex'))).toString('hex')}`;
    });
    const full = await rowsOf(blocksDir, params, true, [NEVER]);
    const shorter = await rowsOf(blocksDir, params, true, [{ height: top - back }]);
    expect(full.filter(format1)).toEqual([]);
    const idx = await tempIndex(params, { utxoHash: true });
    try {
      await recount({ blocksDir, params, db: idx.db, height: mid });
      // Blocks 0 … mid as an older nodereg left them.
      let old = 0;
      for await (const [k, v] of idx.db.iterator({ gte: Buffer.of(P.undo), lt: Buffer.of(P.undo + 1) })) {
        await idx.db.put(k, encodeUndoFormat1(decodeUndo(v)));
        old++;
      }
      expect(old).toBe(mid + 1);
      await recount({ blocksDir, params, db: idx.db });
      const mixed = await dump(idx.db);
      expect(mixed.filter(format1).length).toBe(mid + 1);
      expect(norm(mixed)).toEqual(full);

      await disconnectBlocks(idx.db, params, back);
      const down = await dump(idx.db);
      expect(down.filter(format1).length).toBe(top - back + 1);
      expect(down.filter((r) => !isUndo(r))).toEqual(shorter.filter((r) => !isUndo(r)));
      expect(norm(down)).toEqual(shorter);

      await recount({ blocksDir, params, db: idx.db });
      expect(norm(await dump(idx.db))).toEqual(full);
    } finally {
      await idx.close();
    }
  }, 600_000);
});

// Older nodereg wrote the key-only rows (script index 'o', expiry 'x') with an empty value, which
// classic-level leaks native memory for; they now hold KEY_ONLY_VALUE. Readers look at keys alone.
describe.each(CHAINS.slice(0, 2))('a kept index of %s whose key-only rows an older nodereg wrote empty', (_name, chainOf) => {
  it('resumes, disconnects and reconnects to the rows of one run, but for those rows\' values', async () => {
    const { blocksDir, params } = chainOf();
    const top = (await loadBestChain(blocksDir, params)).blocks.length - 1;
    const back = Math.min(12, top);
    const mid = top - Math.floor(back / 2);
    const keyOnly = (r: string): boolean => r.startsWith('6f') || r.startsWith('78');
    const blank = (rows: string[]): string[] => rows.map((r) => (keyOnly(r) ? r.slice(0, r.indexOf('=') + 1) : r));
    const full = await rowsOf(blocksDir, params, true, [NEVER]);
    const shorter = await rowsOf(blocksDir, params, true, [{ height: top - back }]);
    // Every key-only row this build writes holds the one byte, never an empty value.
    expect(full.filter(keyOnly).length).toBeGreaterThan(0);
    expect(full.filter(keyOnly).every((r) => r.endsWith(`=${KEY_ONLY_VALUE.toString('hex')}`))).toBe(true);
    const idx = await tempIndex(params, { utxoHash: true });
    try {
      await recount({ blocksDir, params, db: idx.db, height: mid });
      let old = 0;
      for (const p of [P.scriptCoin, P.expiry]) {
        for await (const [k] of idx.db.iterator({ gte: Buffer.of(p), lt: Buffer.of(p + 1) })) {
          await idx.db.put(k, Buffer.alloc(0));
          old++;
        }
      }
      expect(old).toBeGreaterThan(0);
      await recount({ blocksDir, params, db: idx.db });
      const mixed = await dump(idx.db);
      expect(mixed.some((r) => keyOnly(r) && r.endsWith('='))).toBe(true);
      expect(blank(mixed)).toEqual(blank(full));

      await disconnectBlocks(idx.db, params, back);
      expect(blank(await dump(idx.db))).toEqual(blank(shorter));

      await recount({ blocksDir, params, db: idx.db });
      expect(blank(await dump(idx.db))).toEqual(blank(full));
    } finally {
      await idx.close();
    }
  }, 600_000);
});

/** Format 1 of the undo record, as nodereg wrote it before format 2: the reference for reading old indexes. */
function encodeUndoFormat1(u: UndoRecord): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number): Buffer => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  parts.push(u32(u.coinOps.length));
  for (const op of u.coinOps) {
    if (op.added) parts.push(Buffer.of(1), op.outpoint);
    else parts.push(Buffer.of(0), op.outpoint, u32(encodeCoin(op.coin).length), encodeCoin(op.coin));
  }
  parts.push(u32(u.kv.length));
  for (const { key, prior } of u.kv) {
    const len = Buffer.alloc(2);
    len.writeUInt16LE(key.length);
    parts.push(len, key, Buffer.of(prior ? 1 : 0));
    if (prior) parts.push(u32(prior.length), prior);
  }
  return Buffer.concat(parts);
}

/** Scripts of every template format 2 shortens, one near miss of each, and raw ones up to the two-byte length. */
const SCRIPTS = [
  Buffer.concat([Buffer.of(0x76, 0xa9, 0x14), Buffer.alloc(20, 3), Buffer.of(0x88, 0xac)]),
  Buffer.concat([Buffer.of(0x76, 0xa9, 0x14), Buffer.alloc(20, 3), Buffer.of(0x88, 0xad)]),
  Buffer.concat([Buffer.of(0xa9, 0x14), Buffer.alloc(20, 4), Buffer.of(0x87)]),
  Buffer.concat([Buffer.of(0x00, 0x14), Buffer.alloc(20, 5)]),
  Buffer.concat([Buffer.of(0x00, 0x14), Buffer.alloc(21, 5)]),
  Buffer.concat([Buffer.of(0x00, 0x20), Buffer.alloc(32, 6)]),
  Buffer.concat([Buffer.of(0x51, 0x20), Buffer.alloc(32, 7)]),
  Buffer.concat([Buffer.of(0x52, 0x20), Buffer.alloc(32, 7)]),
  Buffer.alloc(0), Buffer.alloc(1, 0x51), Buffer.alloc(122, 8), Buffer.alloc(123, 8), Buffer.alloc(700, 9),
];

describe('the undo writer', () => {
  it('writes the bytes encodeUndo writes for the same record, they decode back to it, and so does the same record in format 1', () => {
    const w = new UndoWriter();
    const scripts = new ScriptTable();
    const txids = Buffer.alloc(64 * 32);
    for (let i = 0; i < txids.length; i++) txids[i] = (i * 131 + 7) & 0xff;
    for (const n of [0, 1, 5, 1500]) {
      // Reused: a record of 1500 coins grows the writer's buffer past its start.
      w.start();
      const coinOps: UndoRecord['coinOps'][number][] = [];
      let tx = 0;
      let vout = 0;
      for (let i = 0; i < n; i++) {
        // Runs of created coins from vout 0, runs with gaps or a late start, a vout that
        // falls back (a new run of the same txid), and spent coins of repeating txids.
        const shape = (i * 7) % 11;
        if (shape < 3) vout++;
        else if (shape < 5) vout += 1 + shape * 200;
        else if (shape === 5) vout = 0xffffffff - (i % 3);
        else if (shape === 6) { tx = (tx + 1) % 64; vout = 0; }
        else if (shape === 7) vout = 0;
        else if (shape === 8) tx = (tx + 1) % 64;
        if (vout > 0xffffffff) vout = 0;
        const op = Buffer.alloc(36);
        txids.copy(op, 0, tx * 32, tx * 32 + 32);
        op.writeUInt32BE(vout, 32);
        if (i % 3 !== 0) {
          w.added(txids, tx * 32, vout);
          coinOps.push({ added: true, outpoint: op });
        } else {
          const script = SCRIPTS[i % SCRIPTS.length]!;
          const id = scripts.intern(script, 0, script.length);
          const lo = (i * 2654435761) >>> 0;
          const hi = i % 5 === 0 ? 0xffffffff : i % 2 === 0 ? 0x1fffff : i & 0x7f;
          const code = i % 7 === 0 ? 0xffffffff : (i * 2) + (i % 2);
          w.spent(txids, tx * 32, vout, lo, hi, code, scripts, id);
          coinOps.push({ added: false, outpoint: op, coin: { value: (BigInt(hi) << 32n) | BigInt(lo), height: code >>> 1, coinbase: (code & 1) === 1, script } });
        }
      }
      const kv = n === 0 ? [] : [{ key: Buffer.from('r\x01ab', 'latin1'), prior: null }, { key: Buffer.alloc(200, 0x67), prior: Buffer.alloc(n % 300, 9) }, { key: Buffer.from('t'), prior: Buffer.alloc(0) }];
      const got = w.finish(kv);
      expect(got.equals(encodeUndo({ coinOps, kv }))).toBe(true);
      // Compared as text: jest's deep compare of 1500 coins' buffers takes seconds.
      const text = (u: UndoRecord): string[] => [
        ...u.coinOps.map((op) => (op.added ? `+${op.outpoint.toString('hex')}` : `-${op.outpoint.toString('hex')} ${op.coin.value} ${op.coin.height} ${op.coin.coinbase} ${op.coin.script.toString('hex')}`)),
        ...u.kv.map(({ key, prior }) => `${key.toString('hex')}=${prior?.toString('hex') ?? 'absent'}`),
      ];
      expect(text(decodeUndo(got))).toEqual(text({ coinOps, kv }));
      expect(text(decodeUndo(encodeUndoFormat1({ coinOps, kv })))).toEqual(text({ coinOps, kv }));
      if (n === 1500) {
        // The record is shorter than format 1's, and cutting or padding it is corruption.
        expect(got.length).toBeLessThan(encodeUndoFormat1({ coinOps, kv }).length);
        expect(() => decodeUndo(got.subarray(0, got.length - 1))).toThrow(/undo/);
        expect(() => decodeUndo(Buffer.concat([got, Buffer.of(0)]))).toThrow(/trailing/);
        const other = Buffer.from(got);
        other[4] = 3;
        expect(() => decodeUndo(other)).toThrow(/format 3/);
      }
    }
  });

  it('keeps the runs of created coins a block makes: a txid once per transaction', () => {
    const w = new UndoWriter().start();
    const txids = Buffer.alloc(2 * 32, 1);
    txids.fill(2, 32);
    for (const v of [0, 1, 2]) w.added(txids, 0, v);
    for (const v of [1, 3]) w.added(txids, 32, v);
    const got = w.finish([]);
    // mark, format, RUN ‖ txid ‖ 3, RUN_LISTED ‖ txid ‖ 2 ‖ 1 ‖ 1, END, no rows.
    expect(got.length).toBe(5 + 34 + 36 + 2);
    expect(decodeUndo(got).coinOps.map((op) => `${op.outpoint[0]}:${op.outpoint.readUInt32BE(32)}`)).toEqual(['1:0', '1:1', '1:2', '2:1', '2:3']);
  });
});

describe('the spill row order', () => {
  it('sorts rows by their words, most significant last given, keeping the order of equal rows', () => {
    const order = new RowOrder();
    for (const n of [0, 1, 7, 3000]) {
      // Few distinct values, so that many rows tie on every word.
      const hi = Uint32Array.from({ length: n }, (_, i) => ((i * 2654435761) >>> 0) % 5 * 0x1000_0001);
      const lo = Uint32Array.from({ length: n }, (_, i) => ((i * 40503) >>> 0) % 3 === 0 ? 0xffff_ffff : (i * 97) % 4);
      order.start(n);
      order.by(lo);
      const got = Array.from(order.by(hi).subarray(0, n));
      const want = Array.from({ length: n }, (_, i) => i).sort((a, b) => hi[a]! - hi[b]! || lo[a]! - lo[b]! || a - b);
      expect(got).toEqual(want);
    }
  });

  it('reads big-endian words of a key, with zeros past its end', () => {
    const b = Buffer.from('0102030405', 'hex');
    expect([wordAt(b, 0), wordAt(b, 1), wordAt(b, 2), wordAt(b, 5), wordAt(b, 0, 2)]).toEqual([0x01020304, 0x02030405, 0x03040500, 0, 0x01020000]);
  });
});

describe('the per-height state row', () => {
  const params = BUILTIN_NETWORKS.regtest!;
  const element = { stakeScript: Buffer.from('0014' + '11'.repeat(20), 'hex'), firstHeight: 5, firstTxid: Buffer.alloc(32, 2), tipHeight: 5, tipTxid: Buffer.alloc(32, 2), timestamp: 1_700_000_000, renewals: 0 };
  const fresh = (state: ChainState): Buffer => encodeHeightState({ registry: state.root.serialize(), proofRoot: state.proofTree.root(), utxo: state.utxoHash?.serialize() ?? null });

  it('is one shared value while neither root changes, a new one with the new roots once one does, the old left as it was', async () => {
    const idx = await tempIndex(params);
    try {
      const { state } = idx;
      const before = state.heightState();
      const copy = Buffer.from(before);
      expect(state.heightState()).toBe(before);
      expect(before.equals(fresh(state))).toBe(true);
      state.root.insert(element);
      const registryMoved = state.heightState();
      expect(registryMoved).not.toBe(before);
      expect(registryMoved.equals(fresh(state))).toBe(true);
      expect(registryMoved.equals(copy)).toBe(false);
      expect(before.equals(copy)).toBe(true);
      const leaf = proofLeaf(element);
      state.proofTree.insert(leaf.key, leaf.value);
      const proofMoved = state.heightState();
      expect(proofMoved).not.toBe(registryMoved);
      expect(proofMoved.equals(fresh(state))).toBe(true);
      expect(proofMoved.subarray(0, 768).equals(registryMoved.subarray(0, 768))).toBe(true);
      expect(proofMoved.subarray(768).equals(registryMoved.subarray(768))).toBe(false);
      // Undone: the proof root is the first again; the MuHash state is not the
      // same bytes (numerator and denominator both moved), the row follows it.
      state.root.remove(element);
      state.proofTree.remove(leaf.key);
      const undone = state.heightState();
      expect(undone.equals(fresh(state))).toBe(true);
      expect(undone.subarray(768).equals(copy.subarray(768))).toBe(true);
    } finally {
      await idx.close();
    }
  });

  it('is made afresh every time while the index keeps a UTXO hash, which moves with every coin', async () => {
    const idx = await tempIndex(params, { utxoHash: true });
    try {
      const { state } = idx;
      const a = state.heightState();
      expect(a.length).toBe(768 + 32 + 768);
      expect(a.equals(fresh(state))).toBe(true);
      state.utxoHash!.insert(Buffer.alloc(32, 9));
      const b = state.heightState();
      expect(b.equals(fresh(state))).toBe(true);
      expect(b.equals(a)).toBe(false);
    } finally {
      await idx.close();
    }
  });
});

// What writing undo records ahead costs LevelDB beyond the records (state.ts UNDO_AHEAD_RESERVE)
// is counted in the budget only while records are written ahead, and each record on top of it.
describe('the budget of undo records written ahead', () => {
  it('counts the reserve and each record while writing ahead, and nothing otherwise', async () => {
    const params = BUILTIN_NETWORKS.regtest!;
    const idx = await tempIndex(params, {});
    try {
      // The measured figure (state.ts): 10M --db peaked at 497-508 MiB without it, 466 MiB with it.
      expect(UNDO_AHEAD_RESERVE).toBeGreaterThanOrEqual(12 * 1024 * 1024);
      const state = new ChainState(idx.db, params);
      state.putUndo(0, Buffer.alloc(100));
      expect(state.undoBytes).toBe(0);
      state.undoAhead = true;
      expect(state.undoBytes).toBe(UNDO_AHEAD_RESERVE);
      state.putUndo(1, Buffer.alloc(1000));
      // Once in LevelDB's memtable, twice more while its write has not ended.
      expect(state.undoBytes).toBeGreaterThanOrEqual(UNDO_AHEAD_RESERVE + 1000);
      expect(state.undoBytes).toBeLessThanOrEqual(UNDO_AHEAD_RESERVE + 3 * (1000 + K.undo(1).length));
      await state.undoRoom(0);
      expect(state.undoBytes).toBe(UNDO_AHEAD_RESERVE + 1000 + K.undo(1).length);
    } finally {
      await idx.close();
    }
  });
});
