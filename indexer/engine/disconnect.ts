import { CorruptRecordError } from '../store/codec.js';
import { K } from '../store/layout.js';
import type { ChainState } from '../store/state.js';
import { decodeUndo } from '../store/undo.js';
import type { MemoryUtxo } from './coinview.js';

/**
 * Undoes the tip block: replays its undo record in reverse (coins first, then
 * the registry rows' earlier values), drops the block's per-height rows and
 * moves the tip back. The coins go back through the coin view, as connect
 * took them: the block's created coins leave it, the coins it spent return,
 * and the balances move with them. The result equals never having connected
 * the block, which the property tests check byte for byte.
 *
 * Commits the view first (so the database holds the whole state to undo
 * from) and after the replay (one atomic batch, like a connect), then reloads
 * the in-memory registry index and the view from the database.
 */
export async function disconnectTip(state: ChainState, view: MemoryUtxo): Promise<void> {
  await view.spill(state);
  const tip = state.tip;
  if (tip === null) throw new Error('nothing to disconnect: the index is empty');
  const h = tip.height;
  const raw = await state.db.get(K.undo(h));
  if (raw === undefined) {
    throw new CorruptRecordError(`undo (none stored for height ${h}; was it pruned?)`);
  }
  const undo = decodeUndo(raw);
  await view.prefetchUndo(state.db, undo.coinOps);
  for (let i = undo.coinOps.length - 1; i >= 0; i--) {
    const op = undo.coinOps[i]!;
    if (op.added) {
      if (!view.uncreate(op.outpoint)) {
        throw new CorruptRecordError(`undo (block ${h} created ${op.outpoint.toString('hex')}, which is not in the UTXO set)`);
      }
    } else if (!view.unspend(op.outpoint, op.coin)) {
      throw new CorruptRecordError(`undo (block ${h} spent ${op.outpoint.toString('hex')}, which is unspent)`);
    }
  }
  for (let i = undo.kv.length - 1; i >= 0; i--) state.putRow(undo.kv[i]!.key, undo.kv[i]!.prior);
  state.putRow(K.blockHash(h), null);
  state.putRow(K.heightState(h), null);
  state.putRow(K.undo(h), null);
  if (h === 0) {
    state.tip = null;
  } else {
    const prev = await state.db.get(K.blockHash(h - 1));
    if (prev === undefined) throw new CorruptRecordError(`block hash (height ${h - 1} missing)`);
    state.tip = { height: h - 1, hash: prev };
  }
  await view.spill(state);
  await state.load();
  await view.reload(state);
}
