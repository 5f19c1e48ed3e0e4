import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import fc from 'fast-check';
import { MemoryUtxo } from '../indexer/engine/coinview.js';
import { CoinTable, coinTableBytes, ScriptTable } from '../indexer/engine/memtables.js';
import { CoinFile } from '../indexer/store/coinfile.js';

const txid = (n: number): Buffer => createHash('sha256').update(`tx${n}`).digest();

/** Txids that all share the words the table hashes (the first two), so every lookup has to compare the rest. */
function collidingTxid(n: number): Buffer {
  const t = txid(n);
  t.writeUInt32LE(0xdeadbeef, 0);
  t.writeUInt32LE(0x0badf00d, 4);
  return t;
}

describe('CoinTable (the in-memory UTXO set)', () => {
  it('behaves like a Map under random adds, overwrites and spends, through growth and backward-shift deletion', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.nat(60), fc.nat(3), fc.boolean(), fc.nat(0xffffffff), fc.nat(0xffffffff)), { maxLength: 400 }),
      fc.boolean(),
      (ops, colliding) => {
        const table = new CoinTable(16);
        const model = new Map<string, [number, number, number, number]>();
        const make = colliding ? collidingTxid : txid;
        for (const [n, vout, isAdd, lo, hi] of ops) {
          const t = make(n);
          const key = `${n}:${vout}`;
          if (isAdd) {
            table.add(t, 0, vout, n % 7, lo, hi, (lo ^ hi) >>> 0);
            model.set(key, [n % 7, lo, hi, (lo ^ hi) >>> 0]);
          } else {
            const had = model.get(key);
            expect(table.spend(t, 0, vout)).toBe(had !== undefined);
            if (had) expect([table.script, table.lo, table.hi, table.code]).toEqual(had);
            model.delete(key);
          }
          expect(table.count).toBe(model.size);
        }
        const listed = new Map<string, [number, number, number, number]>();
        table.each((op, script, lo, hi, code) => {
          const n = [...Array(61).keys()].find((i) => make(i).equals(op.subarray(0, 32)))!;
          listed.set(`${n}:${op.readUInt32BE(32)}`, [script, lo, hi, code]);
        });
        expect(listed).toEqual(model);
        for (const key of model.keys()) {
          const [n, vout] = key.split(':').map(Number) as [number, number];
          expect(table.spend(make(n), 0, vout)).toBe(true);
        }
        expect(table.count).toBe(0);
      },
    ), { numRuns: 200 });
  });

  it('holds its coins, read in slot order, in the order a coin file keeps them: one hash places both', () => {
    // A spill reads the table in the file's page order (coinfile.ts `outpointHash`): that is a walk from its first slot to its last.
    const table = new CoinTable(16);
    for (let i = 0; i < 3000; i++) table.add(txid(i), 0, i % 5, 0, i, 0, 2);
    const slots = new Uint32Array(table.count);
    const n = table.occupied(slots);
    const ops: string[] = [];
    const op = Buffer.alloc(36);
    for (let i = 0; i < n; i++) {
      table.readSlot(slots[i]!, op);
      ops.push(op.toString('hex'));
    }
    const file = CoinFile.create(tmpdir(), 64, 'off');
    try {
      const value = Buffer.alloc(20, 1);
      const keys = ops.map((h) => Buffer.from(h, 'hex'));
      file.write({ dels: 0, puts: n, delKey: () => ({ buf: op, at: 0 }), putKey: (i) => ({ buf: keys[i]!, at: 0 }), putLength: () => value.length, putValue: () => value });
      const rank = new Map<string, number>();
      for (const [k] of file.entries()) rank.set(k.toString('hex'), rank.size);
      expect(rank.size).toBe(n);
      // Taken in slot order, the coins go back in the file's order only where
      // a probe run crosses a page's edge: a few times. Unrelated hashes would
      // go back about every other coin.
      let back = 0;
      for (let i = 1; i < n; i++) if (rank.get(ops[i]!)! < rank.get(ops[i - 1]!)!) back++;
      expect(back).toBeLessThan(n / 20);
    } finally {
      file.close();
    }
  });

  it('finds a txid at any offset of a larger buffer, as inputs reference it inside block bytes', () => {
    const table = new CoinTable();
    const block = Buffer.concat([Buffer.alloc(13, 0xaa), txid(1), Buffer.alloc(5)]);
    table.add(txid(1), 0, 4, 9, 5, 0, 0);
    expect(table.spend(block, 13, 5)).toBe(false);
    expect(table.spend(block, 13, 4)).toBe(true);
    expect(table.script).toBe(9);
  });

  it('adds from a block\'s txid list whether or not its bytes sit on a word boundary', () => {
    const list = Buffer.concat(Array.from({ length: 6 }, (_, i) => txid(i)));
    for (const shift of [0, 1, 2, 3, 4]) {
      const backing = Buffer.alloc(shift + list.length);
      list.copy(backing, shift);
      const txids = backing.subarray(shift);
      const table = new CoinTable();
      for (let i = 0; i < 6; i++) table.add(txids, 32 * i, i, i, 100 + i, 0, 2 * i);
      for (let i = 5; i >= 0; i--) {
        expect(table.spend(txid(i), 0, i + 1)).toBe(false);
        expect(table.spend(txid(i), 0, i)).toBe(true);
        expect([table.script, table.lo, table.code]).toEqual([i, 100 + i, 2 * i]);
      }
    }
  });

  it('sizes itself as its estimate says', () => {
    const table = new CoinTable();
    for (let i = 0; i < 5000; i++) table.add(txid(i), 0, 0, 0, 1, 0, 0);
    expect(table.byteSize).toBeLessThanOrEqual(coinTableBytes(5000));
  });
});

describe('ScriptTable (script ids and balances)', () => {
  it('gives each distinct script one id, wherever its bytes sit, through growth', () => {
    const table = new ScriptTable();
    const scripts = Array.from({ length: 3000 }, (_, i) => Buffer.concat([Buffer.of(i >> 8, i & 0xff), createHash('sha256').update(`s${i}`).digest().subarray(0, i % 33)]));
    const ids = scripts.map((s) => table.intern(s, 0, s.length));
    expect(new Set(ids).size).toBe(scripts.length);
    scripts.forEach((s, i) => {
      const shifted = Buffer.concat([Buffer.of(1, 2, 3), s]);
      expect(table.find(shifted, 3, 3 + s.length)).toBe(ids[i]);
      expect(table.intern(shifted, 3, 3 + s.length)).toBe(ids[i]);
      expect(table.bytes(ids[i]!)).toEqual(s);
    });
    expect(table.find(Buffer.of(0xff, 0xfe), 0, 2)).toBe(-1);
    expect(table.find(Buffer.alloc(0), 0, 0)).toBe(-1);
    const empty = table.intern(Buffer.alloc(0), 0, 0);
    expect(table.find(Buffer.alloc(0), 0, 0)).toBe(empty);
  });

  it('keeps balances exact beyond 2^53 by switching to bigint, and back down again', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.boolean()), { maxLength: 60 }),
      (ops) => {
        const table = new ScriptTable();
        const id = table.intern(Buffer.of(0x51), 0, 1);
        let model = 0n;
        for (const [value, credit] of ops) {
          if (!credit && value > model) continue;
          table.add(id, Number(value & 0xffffffffn), Number(value >> 32n), credit ? 1 : -1);
          model += credit ? value : -value;
          expect(table.balance(id)).toBe(model);
        }
      },
    ));
  });

  it('refuses a balance going negative: the chain data would be inconsistent', () => {
    const table = new ScriptTable();
    const id = table.intern(Buffer.of(0x51), 0, 1);
    table.add(id, 10, 0, 1);
    expect(() => table.add(id, 11, 0, -1)).toThrow(/negative balance/);
  });
});

describe('MemoryUtxo', () => {
  it('flags every stake script it starts with, also those whose interning grows the id arrays', () => {
    const stakes = Array.from({ length: 3000 }, (_, i) => Buffer.concat([Buffer.of(0, 20), createHash('sha256').update(`k${i}`).digest().subarray(0, 20)]));
    const mem = new MemoryUtxo(true, stakes.map((s) => s.toString('latin1')));
    for (const s of stakes) {
      const id = mem.scripts.find(s, 0, s.length);
      expect(id).toBeGreaterThanOrEqual(0);
      expect(mem.scripts.stake[id]).toBe(1);
    }
    expect(mem.scripts.count).toBe(stakes.length);
  });
});
