import { isUnspendable } from '../../script/opcodes.js';
import { detectAnnouncement, isAttempt } from '../../script/carrier.js';
import { visitBlock } from '../chain/scanner.js';
import { decodeAmount, decodeCoin, encodeAmount, encodeCoin } from '../store/codec.js';
import { K } from '../store/layout.js';
import type { ChainState } from '../store/state.js';
import type { DB } from '../store/store.js';
import type { Coin } from '../types.js';
import type { CoinOp } from '../store/undo.js';
import { BATCH_BYTES_PER_ROW, BATCH_COPIES, CHUNK_BYTES } from './budget.js';
import { CoinTable, coinTableBytes, ScriptTable } from './memtables.js';

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * Up to this many keys are read with LevelDB's synchronous get on the main
 * thread: a live block needs a handful, and a `getMany` round trip through
 * the thread pool costs far more than reading them (most of the follower's
 * time per small block went there). Larger sets still go in one `getMany`.
 */
const SYNC_READS = 64;

async function readMany(db: DB, keys: Buffer[]): Promise<Array<Buffer | undefined>> {
  if (keys.length === 0) return [];
  if (keys.length > SYNC_READS) return db.getMany(keys);
  return keys.map((k) => db.getSync(k));
}
/*
 * Bytes of the rows a spill writes, with scripts taken as long as a taproot
 * output's (34) so that common chains are overestimated: a coin ('u' row,
 * 37-byte key, 12 bytes + script), its script-index row in a kept index
 * ('o', 39 + script, empty), a balance ('b', 3 + script, 8).
 */
const SCRIPT_BYTES = 34;
const COIN_ROW = 37 + 12 + SCRIPT_BYTES;
const SCRIPT_ROW = 39 + SCRIPT_BYTES;
const BALANCE_ROW = 3 + SCRIPT_BYTES + 8;
/** What a coin read from the database and spent costs in the heap until the next spill deletes it. */
const LOADED_COST = 200;

/** A coin read from the database for the block about to be connected. */
interface LoadedCoin {
  readonly outpoint: Buffer;
  readonly script: Buffer;
  readonly lo: number;
  readonly hi: number;
  readonly code: number;
}

/**
 * The UTXO set and script balances of a recount, as compact typed-array
 * tables in front of the database. The tables hold every coin created since
 * the last spill; older coins and balances live in the database and are read
 * through before a block is connected (`prefetch`, one `getMany` for the
 * block's inputs, one for the balances they and its outputs touch), so the
 * connect itself stays synchronous. When the tables outgrow the memory budget,
 * `spill` writes every coin and changed balance in the state's next flush (one
 * atomic batch with the registry rows and the tip) and empties them.
 *
 * Full mode holds every coin and every script's balance; `onlyStakes` mode
 * (the fast recount's second pass) holds only coins paying announced stakes,
 * and keeps them in memory when it spills (see `spill`).
 */
export class MemoryUtxo {
  readonly coins: CoinTable;
  scripts = new ScriptTable();
  /** The database holds coins or balances the tables do not: blocks must be prefetched. */
  spilled = false;
  /** Outpoints of database coins spent since the last spill: deleted by the next one. */
  private spentFromDb: LoadedCoin[] = [];
  /** The current block's inputs found in the database, by outpoint (latin1). */
  private readonly loaded = new Map<string, LoadedCoin>();
  /** Filled by `spendLoaded`: the spent coin's script id and value words. */
  script = 0;
  lo = 0;
  hi = 0;
  code = 0;

  /** `stakes`: every stake script (latin1) the chain's announcements name. */
  constructor(readonly onlyStakes: boolean, stakes: Iterable<string>, expectedCoins = 1024) {
    this.coins = CoinTable.forCoins(Math.min(expectedCoins, 1 << 22));
    for (const s of stakes) {
      const b = Buffer.from(s, 'latin1');
      // Interning may grow the id arrays, so take `stake` only afterwards.
      const id = this.scripts.intern(b, 0, b.length);
      this.scripts.stake[id] = 1;
    }
  }

  /**
   * Continues an index the database already holds (a resumed or extended
   * `--db` recount): every coin and balance lives there, so blocks are
   * prefetched from the start. Every registered script becomes a stake (as
   * `markRegistered` would have made it), and the stakes' balances (known
   * to the tables, so never prefetched) are read now.
   */
  async resume(state: ChainState): Promise<void> {
    this.spilled = true;
    for (const key of state.current.keys()) {
      const b = Buffer.from(key, 'latin1');
      const id = this.scripts.intern(b, 0, b.length);
      this.scripts.stake[id] = 1;
    }
    const ids: number[] = [];
    for (let id = 0; id < this.scripts.count; id++) ids.push(id);
    if (ids.length === 0) return;
    const values = await state.db.getMany(ids.map((id) => K.balance(this.scripts.bytes(id))));
    ids.forEach((id, i) => {
      const raw = values[i];
      this.scripts.setBalance(id, raw === undefined ? 0n : decodeAmount(raw));
    });
  }

  /** What the budget counts: the tables as sized for what they hold now. */
  get usedBytes(): number {
    return this.coins.usedBytes + this.scripts.byteSize;
  }

  /** Most coins one block has added to the table: the room the next block may need. */
  private blockCoins = 0;
  private lastCount = 0;

  /**
   * What the budget counts (budget.ts): everything the view and the state
   * hold until the next spill — the coin table as allocated, or as it must
   * grow for one more block, the script table, the database coins spent and
   * the rows waiting for the flush — plus what the spill would briefly add
   * (the batch and LevelDB's copy of it). A kept index's spill is one atomic
   * batch of every coin; a temporary one's goes in chunks of bounded size.
   */
  footprint(state: ChainState): number {
    const { coins, scripts } = this;
    this.blockCoins = Math.max(this.blockCoins, coins.count - this.lastCount);
    this.lastCount = coins.count;
    const table = Math.max(coins.byteSize, coinTableBytes(coins.count + this.blockCoins));
    const held = table + scripts.byteSize + this.spentFromDb.length * LOADED_COST + state.cacheBytes;
    if (state.throwaway) return held + BATCH_COPIES * (CHUNK_BYTES + state.cacheBytes);
    const rows = 2 * coins.count + 2 * this.spentFromDb.length + scripts.count;
    const bytes = coins.count * (COIN_ROW + SCRIPT_ROW) + this.spentFromDb.length * (37 + SCRIPT_ROW) + scripts.count * BALANCE_ROW + state.cacheBytes;
    return held + BATCH_COPIES * bytes + BATCH_BYTES_PER_ROW * rows;
  }

  /** Latin1 key of a script id, as the registry indexes scripts. */
  key(id: number): string {
    return this.scripts.bytes(id).toString('latin1');
  }

  balanceOf(script: Uint8Array): bigint {
    const id = this.scripts.find(script, 0, script.length);
    return id < 0 ? 0n : this.scripts.balance(id);
  }

  /**
   * Flags `script` as a stake once the registry holds a registration for it,
   * so a recount that did not know the chain's stakes up front (full mode)
   * still tracks every registered script from then on. A script registered
   * by this block whose balance the block changed joins `touched`, as it
   * would have had it been flagged from the start.
   */
  markRegistered(state: ChainState, script: Uint8Array, stamp: number, touched: Set<number>): void {
    const key = Buffer.from(script).toString('latin1');
    if (!state.current.has(key)) return;
    const id = this.scripts.intern(script, 0, script.length);
    if (this.scripts.stake[id] === 1) return;
    this.scripts.stake[id] = 1;
    if (this.scripts.touchedAt[id] === stamp) touched.add(id);
  }

  /**
   * Reads from the database what connecting `bytes` needs and the tables lack:
   * the coins its inputs spend (unless an earlier transaction of the block
   * creates them) and the balances of the scripts those coins, its outputs
   * and its announcements name. Nothing to do before the first spill.
   */
  async prefetch(db: DB, bytes: Buffer, txids: Buffer): Promise<void> {
    this.loaded.clear();
    if (!this.spilled) return;
    const created = new Set<string>();
    for (let p = 0; p < txids.length; p += 32) created.add(txids.toString('latin1', p, p + 32));
    const { coins, onlyStakes } = this;
    const outpoints: Buffer[] = [];
    const scripts: Uint8Array[] = [];
    visitBlock(bytes, {
      input(b, at, coinbase) {
        if (coinbase) return;
        const vout = u32(b, at + 32);
        if (created.has(b.toString('latin1', at, at + 32)) || coins.has(b, at, vout)) return;
        const op = Buffer.allocUnsafe(36);
        b.copy(op, 0, at, at + 32);
        op.writeUInt32BE(vout, 32);
        outpoints.push(op);
      },
      output(b, _vout, _valueAt, s, e) {
        if (isUnspendable(b, s, e)) {
          const script = b.subarray(s, e);
          const a = isAttempt(script) ? detectAnnouncement(script) : null;
          if (a?.ok) scripts.push(a.announcement.stakeScript);
          return;
        }
        if (!onlyStakes) scripts.push(b.subarray(s, e));
      },
      txEnd() {},
    });
    await this.readThrough(db, outpoints, scripts);
  }

  /**
   * Reads the database coins at `outpoints` that the tables do not hold (for
   * `spendLoaded`; a missing one stays missing) and the balances of `scripts`
   * and of those coins' scripts that the tables do not know.
   */
  private async readThrough(db: DB, outpoints: Buffer[], scripts: Iterable<Uint8Array>): Promise<void> {
    const table = this.scripts;
    const wanted = new Map<string, Buffer>();
    const want = (s: Uint8Array): void => {
      if (table.find(s, 0, s.length) >= 0) return;
      const k = latin1(s);
      if (!wanted.has(k)) wanted.set(k, Buffer.from(s));
    };
    for (const s of scripts) want(s);
    const raws = await readMany(db, outpoints.map((op) => K.coin(op)));
    const found: Array<{ outpoint: Buffer; script: Buffer; value: bigint; code: number }> = [];
    raws.forEach((raw, i) => {
      if (raw === undefined) return;
      const c = decodeCoin(raw);
      found.push({ outpoint: outpoints[i]!, script: Buffer.from(c.script), value: c.value, code: c.height * 2 + (c.coinbase ? 1 : 0) });
      want(c.script);
    });
    if (wanted.size > 0) {
      const list = [...wanted.values()];
      const values = await readMany(db, list.map((s) => K.balance(s)));
      list.forEach((s, i) => {
        const id = table.intern(s, 0, s.length);
        const raw = values[i];
        table.setBalance(id, raw === undefined ? 0n : decodeAmount(raw));
      });
    }
    for (const c of found) {
      this.loaded.set(c.outpoint.toString('latin1'), {
        outpoint: c.outpoint, script: c.script, lo: Number(c.value & 0xffffffffn), hi: Number(c.value >> 32n), code: c.code,
      });
    }
  }

  /**
   * Spends txid `b[at..at+32)`:vout from the coins `prefetch` read from the
   * database; false when it has no such coin. Fills script/lo/hi.
   */
  spendLoaded(b: Uint8Array, at: number, vout: number): boolean {
    if (this.loaded.size === 0) return false;
    const op = Buffer.allocUnsafe(36);
    op.set(b.subarray(at, at + 32), 0);
    op.writeUInt32BE(vout, 32);
    const key = op.toString('latin1');
    const c = this.loaded.get(key);
    if (c === undefined) return false;
    this.loaded.delete(key);
    this.spentFromDb.push(c);
    this.script = this.scripts.find(c.script, 0, c.script.length);
    this.lo = c.lo;
    this.hi = c.hi;
    this.code = c.code;
    return true;
  }

  /**
   * Reads what replaying an undo record needs (disconnect.ts): the coins the
   * block created and the coins it spent, wherever the database still holds
   * them, and the balances of every script involved.
   */
  async prefetchUndo(db: DB, ops: readonly CoinOp[]): Promise<void> {
    this.loaded.clear();
    const outpoints = ops.map((op) => op.outpoint).filter((op) => !this.coins.has(op, 0, op.readUInt32BE(32)));
    await this.readThrough(db, outpoints, ops.flatMap((op) => (op.added ? [] : [op.coin.script])));
  }

  /**
   * Takes back a coin the disconnected block created, from the tables or the
   * database, with its value off its script's balance. False when the view
   * has no such coin.
   */
  uncreate(outpoint: Buffer): boolean {
    const vout = outpoint.readUInt32BE(32);
    let id: number;
    let lo: number;
    let hi: number;
    if (this.coins.spend(outpoint, 0, vout)) {
      ({ script: id, lo, hi } = this.coins);
    } else if (this.spendLoaded(outpoint, 0, vout)) {
      ({ script: id, lo, hi } = this);
    } else {
      return false;
    }
    this.scripts.add(id, lo, hi, -1);
    this.scripts.touchedAt[id] = 1;
    return true;
  }

  /**
   * Puts back a coin the disconnected block spent, with its value on its
   * script's balance. False when that outpoint is unspent already.
   */
  unspend(outpoint: Buffer, coin: Coin): boolean {
    const vout = outpoint.readUInt32BE(32);
    if (this.coins.has(outpoint, 0, vout) || this.loaded.has(outpoint.toString('latin1'))) return false;
    const id = this.scripts.intern(coin.script, 0, coin.script.length);
    const lo = Number(coin.value & 0xffffffffn);
    const hi = Number(coin.value >> 32n);
    this.coins.add(outpoint, 0, vout, id, lo, hi, coin.height * 2 + (coin.coinbase ? 1 : 0));
    this.scripts.add(id, lo, hi, 1);
    this.scripts.touchedAt[id] = 1;
    return true;
  }

  /**
   * Forgets everything held since the last spill and starts over from the
   * database (after `ChainState.load`): a connect that failed half-way, or a
   * disconnect that changed which scripts are registered.
   */
  async reload(state: ChainState): Promise<void> {
    this.coins.clear();
    this.scripts = new ScriptTable();
    this.spentFromDb = [];
    this.loaded.clear();
    await this.resume(state);
  }

  /**
   * Flushes the state with every coin of the tables, the database coins spent
   * since the last spill and every changed balance in the same atomic batch,
   * then empties the coin table and keeps only the stake scripts' balances.
   * A temporary index is never resumed, so there atomicity buys nothing: its
   * coins go first, in batches of CHUNK_BYTES, and the state's flush after.
   */
  async spill(state: ChainState): Promise<void> {
    // A fast temporary recount's tables hold only coins paying stakes, few
    // enough to stay: they never reach the database (its UTXO set is partial
    // anyway), and every other input can be skipped without a read. A kept
    // index gets them, so that it resumes like any other.
    if (this.onlyStakes && state.throwaway) return state.flush();
    if (state.throwaway) {
      let batch = state.db.batch();
      let bytes = 0;
      for (const [key, value] of this.rows(false)) {
        if (value === null) batch.del(key);
        else batch.put(key, value);
        bytes += key.length + (value?.length ?? 0) + BATCH_BYTES_PER_ROW;
        if (bytes < CHUNK_BYTES) continue;
        await batch.write();
        batch = state.db.batch();
        bytes = 0;
      }
      await batch.write();
      await state.flush();
    } else {
      await state.flush((sink) => {
        for (const [key, value] of this.rows(true)) {
          if (value === null) sink.del(key);
          else sink.put(key, value);
        }
      });
    }
    this.coins.clear();
    this.lastCount = 0;
    this.spentFromDb = [];
    this.scripts = this.scripts.retain((id) => this.scripts.stake[id] === 1);
    this.spilled = true;
  }

  /**
   * The rows of a spill, null for a deletion. `byScript`: a kept index also
   * keeps the script → outpoints rows ('o') in step with the coins.
   */
  private *rows(byScript: boolean): Generator<[Buffer, Buffer | null]> {
    const empty = Buffer.alloc(0);
    for (const c of this.spentFromDb) {
      yield [K.coin(c.outpoint), null];
      if (byScript) yield [K.scriptCoin(c.script, c.outpoint), null];
    }
    const { scripts } = this;
    const out: Array<[Buffer, Buffer | null]> = [];
    // `each` calls back synchronously; a block of its coins at a time keeps the generator flat.
    for (let from = 0; from < this.coins.slots; from += 4096) {
      out.length = 0;
      this.coins.each((op, script, lo, hi, code) => {
        const value = (BigInt(hi) << 32n) | BigInt(lo);
        const bytes = scripts.bytes(script);
        out.push([K.coin(op), encodeCoin({ value, height: code >>> 1, coinbase: (code & 1) === 1, script: bytes })]);
        if (byScript) out.push([K.scriptCoin(bytes, op), empty]);
      }, from, from + 4096);
      yield* out;
    }
    for (let id = 0; id < scripts.count; id++) {
      if (scripts.touchedAt[id] === 0) continue;
      const v = scripts.balance(id);
      yield [K.balance(scripts.bytes(id)), v === 0n ? null : encodeAmount(v)];
    }
  }

  /**
   * The last flush of a recount. Before any spill only the stake scripts'
   * balances are written (the 'b' rows the export reads); coins never need to
   * reach a temporary index. After a spill, and always for a kept index,
   * everything goes, so the database is a consistent state at the tip.
   */
  async finish(state: ChainState): Promise<void> {
    if (this.spilled || !state.throwaway) return this.spill(state);
    await state.flush((sink) => {
      for (let id = 0; id < this.scripts.count; id++) {
        if (this.scripts.stake[id] !== 1) continue;
        const value = this.scripts.balance(id);
        if (value !== 0n) sink.put(K.balance(this.scripts.bytes(id)), encodeAmount(value));
      }
    });
  }
}

/**
 * How many coins a table may hold while the view stays within `bytes`
 * (`footprint`): for a kept index, with the batch that spills them.
 */
export function coinsWithin(bytes: number, kept = false): number {
  const spill = kept ? BATCH_COPIES * (COIN_ROW + SCRIPT_ROW) + 2 * BATCH_BYTES_PER_ROW : 0;
  let n = 1024;
  while (coinTableBytes(n * 2) + n * 2 * spill <= bytes) n *= 2;
  return n;
}
