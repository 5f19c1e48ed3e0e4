import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NetworkParams } from '../../script/params.js';
import { ChainState } from '../../indexer/state.js';
import { openStore, type DB } from '../../indexer/store.js';

/** A fresh index in a temporary directory; `close()` removes it. */
export async function tempIndex(params: NetworkParams, opts: { utxoHash?: boolean } = {}): Promise<{ db: DB; state: ChainState; dir: string; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-test-'));
  const db = await openStore(join(dir, 'db'), params, { create: true, utxoHash: opts.utxoHash });
  const state = new ChainState(db, params);
  await state.load();
  return {
    db, state, dir,
    close: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every row of the database, as hex pairs, for byte-for-byte comparisons. */
export async function dump(db: DB): Promise<string[]> {
  const rows: string[] = [];
  for await (const [k, v] of db.iterator()) rows.push(`${k.toString('hex')}=${v.toString('hex')}`);
  return rows;
}
