import { CorruptRecordError } from '../store/codec.js';
import { K } from '../store/layout.js';
import { bkey, type ChainState } from '../store/state.js';
import { decodeUndo } from '../store/undo.js';

/**
 * Undoes the tip block: replays its undo record in reverse (coins first, then
 * the registry rows' earlier values), drops the block's per-height rows and
 * moves the tip back. The result equals never having connected the block,
 * which the property tests check byte for byte. Flushes, then reloads the
 * in-memory registry index from the database.
 */
export async function disconnectTip(state: ChainState): Promise<void> {
  await state.flush();
  const tip = state.tip;
  if (tip === null) throw new Error('nothing to disconnect: the index is empty');
  const h = tip.height;
  const raw = await state.db.get(K.undo(h));
  if (raw === undefined) {
    throw new CorruptRecordError(`undo (none stored for height ${h}; was it pruned?)`);
  }
  const undo = decodeUndo(raw);
  await state.loadCoins(undo.coinOps.filter((op) => op.added).map((op) => bkey(op.outpoint)));
  const scripts = new Set<string>();
  for (const op of undo.coinOps) {
    const coin = op.added ? state.coins.get(bkey(op.outpoint))?.coin : op.coin;
    if (coin) scripts.add(bkey(coin.script));
  }
  await state.loadBalances([...scripts]);

  for (let i = undo.coinOps.length - 1; i >= 0; i--) {
    const op = undo.coinOps[i]!;
    const key = bkey(op.outpoint);
    if (op.added) {
      const coin = state.spendCoin(key);
      if (coin === undefined) {
        throw new CorruptRecordError(`undo (block ${h} created ${op.outpoint.toString('hex')}, which is not in the UTXO set)`);
      }
      state.addBalance(bkey(coin.script), -coin.value);
    } else {
      if (state.coins.get(key) && !state.coins.get(key)!.spent) {
        throw new CorruptRecordError(`undo (block ${h} spent ${op.outpoint.toString('hex')}, which is unspent)`);
      }
      state.restoreCoin(key, op.coin);
      state.addBalance(bkey(op.coin.script), op.coin.value);
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
  await state.flush();
  await state.load();
}
