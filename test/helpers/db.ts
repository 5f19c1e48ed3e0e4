import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_NETWORKS, type NetworkParams } from '../../script/params.js';
import { MemoryUtxo } from '../../indexer/engine/coinview.js';
import { connectBlock, type BlockSummary } from '../../indexer/engine/connect.js';
import { ChainState } from '../../indexer/store/state.js';
import { openStore, type DB } from '../../indexer/store/store.js';

export interface TempIndex {
  readonly db: DB;
  readonly state: ChainState;
  /** The coin view the engine connects through; `view.spill(state)` commits. */
  readonly view: MemoryUtxo;
  readonly dir: string;
  close(): Promise<void>;
}

/** A fresh index in a temporary directory; `close()` removes it. */
export async function tempIndex(params: NetworkParams, opts: { utxoHash?: boolean } = {}): Promise<TempIndex> {
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-test-'));
  const db = await openStore(join(dir, 'db'), params, { create: true, utxoHash: opts.utxoHash });
  const state = new ChainState(db, params);
  await state.load();
  return {
    db, state, dir, view: new MemoryUtxo(false, []),
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Connects one serialized block as every mode does: the view reads through, then the engine connects. Nothing is committed. */
export async function connectRaw(idx: Pick<TempIndex, 'state' | 'view'>, block: { bytes: Buffer; txids: Buffer }, height: number): Promise<BlockSummary> {
  await idx.view.prefetch(idx.state.db, block.bytes, block.txids);
  return connectBlock(idx.state, idx.view, block.bytes, block.txids, height);
}

/** Every row of the database, as hex pairs, for byte-for-byte comparisons. */
export async function dump(db: DB): Promise<string[]> {
  const rows: string[] = [];
  for await (const [k, v] of db.iterator()) rows.push(`${k.toString('hex')}=${v.toString('hex')}`);
  return rows;
}

/**
 * Rows (key=value hex) present in one regtest index on disk but not the
 * other, at most 10, each said to be only in `names[0]` or `names[1]` (by
 * default the paths): none when the two are byte-identical.
 */
export async function differingRows(a: string, b: string, names: readonly [string, string] = [a, b]): Promise<string[]> {
  const rows = async (path: string): Promise<string[]> => {
    const db = await openStore(path, BUILTIN_NETWORKS.regtest!, { create: false });
    try {
      return await dump(db);
    } finally {
      await db.close();
    }
  };
  const [ra, rb] = [await rows(a), await rows(b)];
  const inA = new Set(ra);
  const inB = new Set(rb);
  return [...ra.filter((r) => !inB.has(r)).map((r) => `only in ${names[0]}: ${r.slice(0, 120)}`),
    ...rb.filter((r) => !inA.has(r)).map((r) => `only in ${names[1]}: ${r.slice(0, 120)}`)].slice(0, 10);
}
