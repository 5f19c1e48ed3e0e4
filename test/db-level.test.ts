import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Level } from 'level';
import { encodeTip } from '../indexer/store/codec.js';
import { K } from '../indexer/store/layout.js';
import { ChainState, type RowSink } from '../indexer/store/state.js';
import { openStore, type DB } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { dump, tempIndex } from './helpers/db.js';

/*
 * How the index uses LevelDB (store.ts, state.ts): tables are written
 * without Snappy, yet an index whose tables an older nodereg compressed reads
 * the same; and a kept flush that carried the coin view's rows writes its
 * tip once more (so that LevelDB switches memtables at once), which must
 * change no row.
 */

const regtest = BUILTIN_NETWORKS.regtest!;

/** `n` rows under the 'u' prefix whose values Snappy shrinks (runs of one byte) and whose keys are hashes. */
function rows(n: number, salt: string): Array<[Buffer, Buffer]> {
  const out: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i < n; i++) {
    const key = Buffer.concat([Buffer.from('u'), createHash('sha256').update(`${salt}${i}`).digest()]);
    out.push([key, Buffer.alloc(40 + (i % 30), i % 7)]);
  }
  return out;
}

/** LevelDB's manual compaction of every key (classic-level has it; level's types do not). */
const compactAll = (db: unknown): Promise<void> =>
  (db as { compactRange(a: Buffer, b: Buffer): Promise<void> }).compactRange(Buffer.from([0]), Buffer.from([0xff]));

async function putAll(db: Level<Buffer, Buffer> | DB, list: Array<[Buffer, Buffer]>): Promise<void> {
  const batch = db.batch();
  for (const [k, v] of list) batch.put(k, v);
  await batch.write();
}

describe('the index on LevelDB', () => {
  it('reads an index whose tables were written with Snappy, and goes on writing it, row for row', async () => {
    const idx = await tempIndex(regtest);
    const path = join(idx.dir, 'db');
    await idx.db.close();
    try {
      // An older nodereg: the same index, its tables compressed.
      const old = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer', compression: true });
      await old.open();
      const first = rows(20_000, 'a');
      await putAll(old, first);
      await compactAll(old);
      const before = await dump(old as unknown as DB);
      await old.close();
      expect(before.length).toBeGreaterThan(first.length);

      const db = await openStore(path, regtest, { create: false });
      try {
        expect(await dump(db)).toEqual(before);
        // New tables (uncompressed) and compactions that merge them with the old ones.
        const second = rows(20_000, 'b');
        await putAll(db, second);
        await compactAll(db);
        const want = new Map(before.map((r) => [r.slice(0, r.indexOf('=')), r]));
        for (const [k, v] of second) want.set(k.toString('hex'), `${k.toString('hex')}=${v.toString('hex')}`);
        expect(await dump(db)).toEqual([...want.keys()].sort().map((k) => want.get(k)!));
      } finally {
        await db.close();
      }
    } finally {
      await idx.close().catch(() => undefined);
    }
  });

  it('writes a kept flush\'s tip once more after a flush with the view\'s rows, changing no row', async () => {
    const idx = await tempIndex(regtest);
    const { db } = idx;
    const puts: Buffer[] = [];
    const put = db.put.bind(db);
    (db as unknown as { put: DB['put'] }).put = ((k: Buffer, v: Buffer, o?: object) => {
      puts.push(Buffer.concat([k, Buffer.from('='), v]));
      return put(k, v, o as never);
    }) as DB['put'];
    const viewRows = (sink: RowSink): void => {
      for (const [k, v] of rows(50_000, 'c')) sink.put(k, v);
    };
    try {
      const state = idx.state;
      const tip = { height: 7, hash: Buffer.alloc(32, 7) };
      state.tip = tip;
      await state.flush(viewRows);
      const once = Buffer.concat([K.tip(), Buffer.from('='), encodeTip(tip)]);
      expect(puts).toEqual([once]);
      expect(state.committedTip).toEqual(tip);
      const after = await dump(db);
      expect(after).toContain(`${K.tip().toString('hex')}=${encodeTip(tip).toString('hex')}`);

      // Behind the caller: the same, once the write is done.
      puts.length = 0;
      const next = { height: 8, hash: Buffer.alloc(32, 8) };
      state.tip = next;
      await state.flushBehind(viewRows);
      expect(puts).toEqual([Buffer.concat([K.tip(), Buffer.from('='), encodeTip(next)])]);
      expect(state.committedTip).toEqual(next);

      // A flush of the state's own rows only writes nothing more.
      puts.length = 0;
      await state.flush();
      expect(puts).toEqual([]);

      // Nor does a temporary index's flush, whose spills go in chunks.
      const throwaway = new ChainState(db, regtest, true);
      await throwaway.load();
      throwaway.tip = { height: 9, hash: Buffer.alloc(32, 9) };
      await throwaway.flush(viewRows);
      expect(puts).toEqual([]);
    } finally {
      await idx.close();
    }
  });
  it('writes the view\'s rows of a flush, straight to the native batch or, with a prewrite hook, through it', async () => {
    const idx = await tempIndex(regtest);
    const { db } = idx;
    const list = rows(3_000, 'd');
    const gone = rows(500, 'c');
    const hex = (k: Buffer, v: Buffer): string => `${k.toString('hex')}=${v.toString('hex')}`;
    try {
      await putAll(db, [...gone, [K.blockHash(2), Buffer.alloc(32, 2)]]);
      const state = idx.state;
      state.tip = { height: 3, hash: Buffer.alloc(32, 3) };
      state.putRow(K.blockHash(3), Buffer.alloc(32, 3));
      // The state's own rows go the same way: a put and a delete.
      state.putRow(K.blockHash(2), null);
      await state.flush((sink) => {
        for (const [k] of gone) sink.del(k);
        for (const [k, v] of list) sink.put(k, v);
      });
      let stored = await dump(db);
      for (const [k, v] of list) expect(stored).toContain(hex(k, v));
      for (const [k, v] of gone) expect(stored).not.toContain(hex(k, v));
      expect(stored).toContain(hex(K.blockHash(3), Buffer.alloc(32, 3)));
      expect(stored).not.toContain(hex(K.blockHash(2), Buffer.alloc(32, 2)));

      // A prewrite hook sees every row, the view's included, and may change them.
      const seen: string[] = [];
      db.hooks.prewrite.add((op) => {
        seen.push(`${op.type}:${(op.key as Buffer).toString('hex')}`);
        if (op.type === 'put' && (op.key as Buffer)[0] === 0x75) op.value = Buffer.of(1);
      });
      state.tip = { height: 4, hash: Buffer.alloc(32, 4) };
      state.putRow(K.blockHash(4), Buffer.alloc(32, 4));
      state.putRow(K.blockHash(3), null);
      await state.flushBehind((sink) => {
        for (const [k] of list.slice(0, 10)) sink.del(k);
        for (const [k, v] of gone) sink.put(k, v);
      });
      for (const [k] of list.slice(0, 10)) expect(seen).toContain(`del:${k.toString('hex')}`);
      for (const [k] of gone) expect(seen).toContain(`put:${k.toString('hex')}`);
      expect(seen).toContain(`put:${K.blockHash(4).toString('hex')}`);
      expect(seen).toContain(`del:${K.blockHash(3).toString('hex')}`);
      stored = await dump(db);
      for (const [k] of gone) expect(stored).toContain(hex(k, Buffer.of(1)));
      for (const [k, v] of list.slice(0, 10)) expect(stored).not.toContain(hex(k, v));
      expect(stored).toContain(hex(list[10]![0], list[10]![1]));
    } finally {
      await idx.close();
    }
  });
});
