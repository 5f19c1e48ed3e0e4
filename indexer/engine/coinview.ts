import { isUnspendable } from '../../script/opcodes.js';
import { detectAnnouncement, isAttempt } from '../../script/carrier.js';
import { visitBlock } from '../chain/scanner.js';
import { COIN_SCRIPT_AT, coinWords, decodeAmount, encodeAmount, encodeCoinHead, encodeCoinInto, KEY_ONLY_VALUE } from '../store/codec.js';
import { K, KeyScratch, type ScriptBytes } from '../store/layout.js';
import type { ChainState, RowSink } from '../store/state.js';
import type { DB } from '../store/store.js';
import type { Coin } from '../types.js';
import type { CoinOp } from '../store/undo.js';
import type { CoinFile, CoinWrites } from '../store/coinfile.js';
import { BATCH_BYTES_PER_ROW, BATCH_COPIES, CHUNK_BYTES, CHUNK_COPIES, KEEP_SCRIPT_BYTES } from './budget.js';
import { CoinTable, coinTableBytes, ScriptTable } from './memtables.js';
import { RowOrder, wordAt } from './keyorder.js';

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/**
 * Reads with LevelDB's synchronous get on the main thread. The view awaits
 * every read before it connects anyway, and a `getMany` round trip through
 * the thread pool cost more than the reads themselves: measured on the 1M
 * bench chain, 2 000 random coins a block read in about half the time, and
 * the pool threads' own malloc arenas no longer hold freed result buffers.
 */
function readSync(db: DB, key: Buffer): Buffer | undefined {
  return db.getSync(key);
}
/*
 * Bytes of the rows a spill writes, with scripts taken as long as a taproot
 * output's (34) so that common chains are overestimated: a coin ('u' row,
 * 37-byte key, 12 bytes + script), its script-index row in a kept index
 * ('o', 39 + script, 1), a balance ('b', 3 + script, 8).
 */
const SCRIPT_BYTES = 34;
const COIN_ROW = 37 + 12 + SCRIPT_BYTES;
const SCRIPT_ROW = 39 + SCRIPT_BYTES + 1;
const BALANCE_ROW = 3 + SCRIPT_BYTES + 8;
/** What a spill's scratch (SpillScratch, RowOrder) holds per row: an outpoint, eight words, the order and its copy. */
const SCRATCH_ROW = 36 + 8 * 4 + 8;
/** What a coin read from the database and spent costs until the next spill deletes it: its outpoint and script id. */
const SPENT_COST = 40;
/** What a spill into a coin file holds a row (`CoinFile.write`'s home and order, the table's slot list), and its run of pages. */
const FILE_ROW = 12;
const FILE_RUN = 2 * 256 * 1024;

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
  coins: CoinTable;
  /**
   * The coins of the last spill made by `spillBehind`, whose write may still
   * be running (`writing`): read like database coins (a spend is a delete for
   * the next spill) until that spill, which waits for the write first.
   */
  private frozen: CoinTable | null = null;
  private writing: Promise<void> | null = null;
  /** An emptied table for the next `spillBehind` to connect into. */
  private spare: CoinTable | null = null;
  scripts = new ScriptTable();
  /** The database holds coins or balances the tables do not: blocks must be prefetched. */
  spilled = false;
  /**
   * Every script with a balance in the database is in the script table (a
   * recount from an empty index that has kept all its scripts across
   * spills): a script the table lacks has no balance yet, so blocks need
   * only their coins read, not their scripts' balances.
   */
  private allScripts: boolean;
  /**
   * Database coins spent since the last spill, deleted by the next one:
   * their outpoints (36 bytes each) and script ids, `spentCount` of them.
   */
  private spentOps = Buffer.allocUnsafe(36 * 1024);
  private spentScripts = new Int32Array(1024);
  private spentCount = 0;
  /** The current block's inputs found in the database (script ids into `scripts`). */
  private readonly loaded = new CoinTable(4096);
  /** Scripts whose balances stay in the table across spills while it is at most this big (stakes always stay). */
  keepScriptBytes = KEEP_SCRIPT_BYTES;
  private readonly keys = new KeyScratch();
  /** The order a spill writes its rows in, and the table's coins copied out for it (`rows`). */
  private readonly sorter = new RowOrder();
  private readonly scratch = new SpillScratch();
  /** `sortedRows` for a kept index's flushes: made once, so that each flush calls the same function. */
  private readonly rowsTo = (sink: RowSink): void => this.sortedRows(sink);
  /** The reads `readAhead` started for the next block, valid while `epoch` stays (a spill or reload moves it). */
  private ahead: { bytes: Buffer; epoch: number; reads: Promise<Reads> } | null = null;
  private epoch = 0;
  /**
   * Where a throwaway full recount spills its coins instead of the database
   * (store/coinfile.ts), set before the first spill; balances still go to the
   * database, whose 'b' rows the export reads.
   */
  coinFile: CoinFile | null = null;
  /**
   * The first txid of every block connected (`connecting`), or null once a
   * block was connected with no coin file to note it for. With `repeats`,
   * what lets a spill into the coin file (`fileWrites`) add most of its
   * coins without first looking for one to replace.
   */
  private firsts: TxidPrints | null = new TxidPrints();
  /**
   * Fingerprints of every txid that may have repeated: a first txid `firsts`
   * had seen, and every transaction since that spends an output of one in
   * here (connect.ts, through `repeatWatch`). Why that is all of them: see
   * `connecting`. A coin whose txid is not in here cannot be in the file
   * already, so only these coins' puts look for one to replace.
   */
  private repeats = new TxidPrints();
  /** Filled by `spendLoaded`: the spent coin's script id and value words. */
  script = 0;
  lo = 0;
  hi = 0;
  code = 0;

  /** `stakes`: every stake script (latin1) the chain's announcements name. */
  constructor(readonly onlyStakes: boolean, stakes: Iterable<string>, expectedCoins = 1024) {
    this.coins = CoinTable.forCoins(Math.min(expectedCoins, 1 << 22));
    this.allScripts = !onlyStakes;
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
    // A database that was never committed holds no coin: nothing to read through before the first spill.
    this.spilled = state.committedTip !== null;
    // Balances an earlier run stored are not in the script table: read them through.
    if (this.spilled) this.allScripts = false;
    this.ahead = null;
    this.epoch++;
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
   * the rows waiting for the flush, the undo records written ahead of it
   * (once: LevelDB's memtable holds them) — plus what the spill would briefly add
   * (the batch and LevelDB's copy of it, and a kept index's row order). A kept index's spill is one atomic
   * batch of every coin; a temporary one's goes in chunks of bounded size.
   */
  footprint(state: ChainState): number {
    const { coins, scripts } = this;
    this.blockCoins = Math.max(this.blockCoins, coins.count - this.lastCount);
    this.lastCount = coins.count;
    const table = Math.max(coins.byteSize, coinTableBytes(coins.count + this.blockCoins));
    const spent = this.spentCount;
    const held = table + (this.frozen?.byteSize ?? 0) + scripts.byteSize + this.loaded.byteSize + spent * SPENT_COST + state.cacheBytes + state.undoBytes;
    if (state.throwaway) {
      const notes = this.firsts === null ? 0 : this.firsts.byteSize + this.repeats.byteSize;
      const file = this.coinFile === null ? 0 : FILE_RUN + FILE_ROW * (coins.count + spent) + this.coinFile.readerBytes + notes;
      return held + file + CHUNK_COPIES * (CHUNK_BYTES + state.cacheBytes);
    }
    const rows = 2 * coins.count + 2 * spent + scripts.count;
    const scratch = Math.max(this.scratch.byteSize, SCRATCH_ROW * Math.max(coins.count, spent));
    const bytes = coins.count * (COIN_ROW + SCRIPT_ROW) + spent * (37 + SCRIPT_ROW) + scripts.count * BALANCE_ROW + state.cacheBytes;
    return held + scratch + BATCH_COPIES * bytes + BATCH_BYTES_PER_ROW * rows;
  }

  /**
   * Called by the connect with each block's txids before it applies it:
   * notes the first one (the coinbase's, in a valid block), into `repeats`
   * too when it was seen before. Why `repeats` then holds every txid that
   * repeats, by the time it does: a txid is the hash of its transaction, so
   * a repeated one is either (a) a coinbase's, a first txid seen before
   * (Bitcoin's BIP30 exceptions), or (b) a transaction spending the same
   * outpoints again. Its first occurrence spent those, and the connect
   * refuses a spend of a coin the index lacks, so they exist again only if
   * their own txid repeated earlier: by induction that txid was in `repeats`
   * then (the set only grows), and the connect adds every transaction
   * spending one of its outputs (`repeatWatch`). Fingerprints (8 bytes) only ever
   * err towards "may have repeated", which costs a look, never a coin. A
   * block connected with no coin file to spill into goes unnoted, so a file
   * set afterwards never trusts the notes (`fresh` false: every put looks).
   */
  connecting(txids: Uint8Array): void {
    const firsts = this.firsts;
    if (firsts === null || txids.length < 32) return;
    if (this.coinFile === null) {
      this.firsts = null;
      this.repeats = new TxidPrints();
    } else if (firsts.seen(txids, 0)) {
      this.repeats.add(txids, 0);
    }
  }

  /**
   * For the connect, each block after `connecting`: `repeats`, which it must
   * add a transaction's txid to when one of its inputs spends an output of a
   * txid in there, or null while that is needless (nothing may have repeated
   * yet, or the notes are not trusted anyway): no cost per input until Bitcoin's 91842.
   */
  get repeatWatch(): TxidPrints | null {
    return this.firsts === null || this.repeats.size === 0 ? null : this.repeats;
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
    if (this.loaded.count > 0) this.loaded.clear();
    const ahead = this.ahead;
    this.ahead = null;
    // The block prefetched before this one: the one connected since `readAhead` listed this one's inputs, if it came between.
    const before = this.prefetched;
    this.prefetched = txids;
    if (!this.spilled) return;
    if (ahead !== null && ahead.bytes === bytes && ahead.epoch === this.epoch) {
      const reads = await ahead.reads;
      if (ahead.epoch === this.epoch) return this.apply(db, reads);
    }
    const file = this.coinFile;
    if (file !== null) {
      // The coin file's reads made ahead for this block (`readAhead`): each one taken if it is there by
      // its lookup and the file has not changed since; the others are read here, never waited for.
      // First a turn of the event loop, which the wait for the reader used to
      // give: the chain pass's hashing threads get their next blocks from it.
      await new Promise<void>((resolve) => setImmediate(resolve));
      file.settle();
      const inputs = this.fileAhead;
      this.fileAhead = null;
      if (inputs !== null && inputs.bytes === bytes && this.allScripts && this.frozen === null) {
        // The block's inputs as `wants` would find them, without parsing it again.
        const { coins } = this;
        const ops = this.aheadOps;
        const asked = this.aheadAsked;
        // With no spill or reload since `askFile`, the table has gained only
        // the coins of the block connected in between: an input it lacked
        // then (asked of the file) is in it now only if that block made its
        // txid, and needs no look in the table otherwise. (A look saves only
        // a read: a coin the table holds is spent from it before any read.)
        const since = inputs.epoch === this.epoch && before !== null && inputs.after === before ? this.beforeTxids : null;
        since?.index(before!);
        const outpoints: Buffer[] = [];
        for (let i = 0, at = 0; i < inputs.n; i++, at += 36) {
          if ((since === null || asked[i] === 0 || since.has(ops, at)) && coins.has(ops, at, ops.readUInt32BE(at + 32))) continue;
          outpoints.push(ops.subarray(at, at + 36));
        }
        return this.readThrough(db, outpoints, []);
      }
    }
    const { outpoints, scripts } = this.wants(bytes, txids);
    this.readThrough(db, outpoints, scripts);
  }

  /**
   * The block `readAhead` last had the coin file read for, and how many
   * inputs it has that it does not make itself: their outpoints are in
   * `aheadOps`, and the ones the tables lacked then in `askOps`.
   */
  private fileAhead: { bytes: Buffer; n: number; epoch: number; after: Buffer | null } | null = null;
  private aheadOps = Buffer.allocUnsafe(36 * 4096);
  private askOps = Buffer.allocUnsafe(36 * 4096);
  /** Per input in `aheadOps`: 1 when the tables lacked it then (it was asked of the file). */
  private aheadAsked = new Uint8Array(4096);
  /** The txids of the block last prefetched, and an index of them (`prefetch`). */
  private prefetched: Buffer | null = null;
  private readonly beforeTxids = new BlockTxids();

  /** Lists the inputs of `bytes` it does not make itself (`fileAhead`), and asks the coin file for those the tables lack. */
  private askFile(file: CoinFile, bytes: Buffer, txids: Buffer): void {
    const made = this.made;
    made.index(txids);
    const { coins } = this;
    let n = 0;
    let asked = 0;
    const input = (b: Buffer, at: number, coinbase: boolean): void => {
      if (coinbase || made.has(b, at)) return;
      if (36 * (n + 1) > this.aheadOps.length) {
        const ops = Buffer.allocUnsafe(2 * this.aheadOps.length);
        this.aheadOps.copy(ops, 0, 0, 36 * n);
        this.aheadOps = ops;
        const ask = Buffer.allocUnsafe(2 * this.askOps.length);
        this.askOps.copy(ask, 0, 0, 36 * asked);
        this.askOps = ask;
        const flags = new Uint8Array(2 * this.aheadAsked.length);
        flags.set(this.aheadAsked.subarray(0, n));
        this.aheadAsked = flags;
      }
      const vout = u32(b, at + 32);
      const ops = this.aheadOps;
      // Byte by byte: a call to copy 32 bytes costs more than the bytes, for every input of the chain.
      const o = 36 * n;
      for (let k = 0; k < 32; k++) ops[o + k] = b[at + k]!;
      ops.writeUInt32BE(vout, o + 32);
      const had = coins.has(b, at, vout);
      this.aheadAsked[n] = had ? 0 : 1;
      n++;
      if (had) return;
      const into = this.askOps;
      const a = 36 * asked;
      for (let k = 0; k < 36; k++) into[a + k] = ops[o + k]!;
      asked++;
    };
    visitBlock(bytes, { input, output: () => undefined, txEnd() {} });
    this.fileAhead = { bytes, n, epoch: this.epoch, after: this.prefetched };
    file.preread(this.askOps, asked);
  }

  /** The txids of the block `askFile` or `wants` lists, to tell the inputs it makes itself (indexed anew by each call). */
  private readonly made = new BlockTxids();

  /**
   * Starts reading, on LevelDB's threads, what `prefetch` will need for the
   * block after the one about to be connected, so that the reads overlap that
   * connect. What it decides from the tables stays right until the next
   * spill: a script the tables lack has its current balance in the database,
   * and a coin the database holds is deleted only by a spill. Each result is
   * checked against the tables again when `prefetch` takes it (the block
   * connected meanwhile may have added scripts), and a spill or reload in
   * between makes `prefetch` read everything again.
   */
  readAhead(db: DB, bytes: Buffer, txids: Buffer): void {
    this.ahead = null;
    this.fileAhead = null;
    if (!this.spilled) return;
    if (this.coinFile !== null) {
      // A coin file has the block's coins looked up on its reader thread, all
      // in one request (fs.read on the thread pool, a promise a coin, measured
      // slower than reading on this thread); `prefetch` takes what the file
      // still holds unchanged, and reads the rest itself.
      return this.askFile(this.coinFile, bytes, txids);
    }
    const { outpoints, scripts } = this.wants(bytes, txids);
    const wanted = new Map<string, Buffer>();
    this.missing(scripts, wanted);
    const reads = (async (): Promise<Reads> => {
      const coins = outpoints.length === 0 ? [] : await db.getMany(outpoints.map((op) => K.coin(op)));
      for (const raw of coins) if (raw !== undefined && raw.length >= COIN_SCRIPT_AT) this.missing([raw.subarray(COIN_SCRIPT_AT)], wanted);
      const list = [...wanted.values()];
      const balances = list.length === 0 ? [] : await db.getMany(list.map((sc) => K.balance(sc)));
      return { outpoints, coins, scripts: list, balances };
    })();
    reads.catch(() => undefined); // a discarded read-ahead fails quietly; a taken one throws in `prefetch`
    this.ahead = { bytes, epoch: this.epoch, reads };
  }

  /**
   * The block's inputs the tables may lack (not created by the block itself)
   * and the scripts whose balances it moves; none of those while the table
   * holds every script with a stored balance (`allScripts`).
   */
  private wants(bytes: Buffer, txids: Buffer): { outpoints: Buffer[]; scripts: Uint8Array[] } {
    // The block's own txids, looked up by word rather than as a latin1 string per input.
    const created = this.made;
    created.index(txids);
    const { coins, onlyStakes, frozen } = this;
    const outpoints: Buffer[] = [];
    const scripts: Uint8Array[] = [];
    const input = (b: Buffer, at: number, coinbase: boolean): void => {
      if (coinbase) return;
      const vout = u32(b, at + 32);
      if (coins.has(b, at, vout) || frozen?.has(b, at, vout) || created.has(b, at)) return;
      const op = Buffer.allocUnsafe(36);
      b.copy(op, 0, at, at + 32);
      op.writeUInt32BE(vout, 32);
      outpoints.push(op);
    };
    const output = (b: Buffer, _vout: number, _valueAt: number, s: number, e: number): void => {
      if (isUnspendable(b, s, e)) {
        const script = b.subarray(s, e);
        const a = isAttempt(script) ? detectAnnouncement(script) : null;
        if (a?.ok) scripts.push(a.announcement.stakeScript);
        return;
      }
      if (!onlyStakes) scripts.push(b.subarray(s, e));
    };
    visitBlock(bytes, { input, output: this.allScripts ? () => undefined : output, txEnd() {} });
    return { outpoints, scripts };
  }

  /** Adds to `into` (by latin1, copied) each of `scripts` the script table lacks. */
  private missing(scripts: Iterable<Uint8Array>, into: Map<string, Buffer>): void {
    const table = this.scripts;
    for (const s of scripts) {
      if (table.find(s, 0, s.length) >= 0) continue;
      const k = latin1(s);
      if (!into.has(k)) into.set(k, Buffer.from(s));
    }
  }

  /**
   * Reads now, with synchronous gets, the database coins at `outpoints` and
   * the balances of `scripts` and of those coins' scripts that the tables do
   * not know, and takes them in (`apply`).
   */
  private readThrough(db: DB, outpoints: Buffer[], scripts: Iterable<Uint8Array>): void {
    const { keys } = this;
    const wanted = new Map<string, Buffer>();
    this.missing(scripts, wanted);
    const file = this.coinFile;
    const coins = file !== null ? outpoints.map((op) => file.get(op, 0)) : outpoints.map((op) => readSync(db, keys.coin(op, 0, op.readUInt32BE(32))));
    // The balances of the coins' scripts the tables lack are read by `apply`.
    const list = [...wanted.values()];
    const balances = list.map((sc) => readSync(db, keys.balance(sc)));
    this.apply(db, { outpoints, coins, scripts: list, balances });
  }

  /**
   * Takes in what was read: each balance of a script the tables still lack,
   * and the coins found, as `loaded` (for `spendLoaded`; a missing one stays
   * missing). A found coin whose script the tables lack and whose balance was
   * not read is read now. Every record is decoded before anything enters the
   * tables, so a corrupt one leaves the view as it was.
   */
  private apply(db: DB, r: Reads): void {
    const table = this.scripts;
    const amounts = new Map<string, bigint>();
    r.scripts.forEach((sc, i) => {
      const raw = r.balances[i];
      amounts.set(latin1(sc), raw === undefined ? 0n : decodeAmount(raw));
    });
    const found: number[] = [];
    // Each coin's script id, looked up once: interning the scripts the table lacks leaves the others' ids.
    const ids: number[] = [];
    r.coins.forEach((raw, i) => {
      if (raw === undefined) return;
      coinWords(raw);
      found.push(i);
      const id = table.find(raw, COIN_SCRIPT_AT, raw.length);
      ids.push(id);
      if (id >= 0) return;
      const sc = raw.subarray(COIN_SCRIPT_AT);
      const k = latin1(sc);
      if (!amounts.has(k)) {
        const b = readSync(db, this.keys.balance(sc));
        amounts.set(k, b === undefined ? 0n : decodeAmount(b));
      }
    });
    for (const [k, v] of amounts) {
      const sc = Buffer.from(k, 'latin1');
      if (table.find(sc, 0, sc.length) < 0) table.setBalance(table.intern(sc, 0, sc.length), v);
    }
    const loaded = this.loaded;
    for (let j = 0; j < found.length; j++) {
      const i = found[j]!;
      const raw = r.coins[i]!;
      const op = r.outpoints[i]!;
      const id = ids[j]! >= 0 ? ids[j]! : table.find(raw, COIN_SCRIPT_AT, raw.length);
      loaded.add(op, 0, op.readUInt32BE(32), id, raw.readUInt32LE(0), raw.readUInt32LE(4), raw.readUInt32LE(8));
    }
  }

  /** Records a database coin as spent, for the next spill to delete. */
  private spentFromDb(t: Uint8Array, at: number, vout: number, script: number): void {
    const n = this.spentCount;
    if ((n + 1) * 36 > this.spentOps.length) {
      const ops = Buffer.allocUnsafe(this.spentOps.length * 2);
      this.spentOps.copy(ops, 0, 0, n * 36);
      this.spentOps = ops;
      const ids = new Int32Array(this.spentScripts.length * 2);
      ids.set(this.spentScripts);
      this.spentScripts = ids;
    }
    this.spentOps.set(t.subarray(at, at + 32), n * 36);
    this.spentOps.writeUInt32BE(vout, n * 36 + 32);
    this.spentScripts[n] = script;
    this.spentCount = n + 1;
  }

  /**
   * Spends txid `b[at..at+32)`:vout from the coins `prefetch` read from the
   * database or those of a spill being written; false when neither has such
   * a coin. Fills script/lo/hi/code.
   */
  spendLoaded(b: Uint8Array, at: number, vout: number): boolean {
    // The block's coins read from the database, else those of a spill still being written.
    let loaded: CoinTable | null = this.loaded;
    if (loaded.count === 0 || !loaded.spend(b, at, vout)) {
      loaded = this.frozen;
      if (loaded === null || loaded.count === 0 || !loaded.spend(b, at, vout)) return false;
    }
    this.spentFromDb(b, at, vout, loaded.script);
    this.script = loaded.script;
    this.lo = loaded.lo;
    this.hi = loaded.hi;
    this.code = loaded.code;
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
    this.ahead = null;
    this.readThrough(db, outpoints, ops.flatMap((op) => (op.added ? [] : [op.coin.script])));
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
    if (this.coins.has(outpoint, 0, vout) || this.loaded.has(outpoint, 0, vout)) return false;
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
    await this.settle();
    this.coins.clear();
    this.scripts = new ScriptTable();
    this.epoch++;
    this.spentCount = 0;
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
    await this.settle();
    // A fast temporary recount's tables hold only coins paying stakes, few
    // enough to stay: they never reach the database (its UTXO set is partial
    // anyway), and every other input can be skipped without a read. A kept
    // index gets them, so that it resumes like any other.
    if (this.onlyStakes && state.throwaway) return state.flush();
    if (state.throwaway) {
      this.coinFile?.write(this.fileWrites());
      const out: RowsOut = { sink: state.db.batch(), bytes: 0 };
      for (const _ of this.chunkRows(out, this.coinFile === null)) {
        if (out.bytes < CHUNK_BYTES) continue;
        await (out.sink as ReturnType<DB['batch']>).write();
        out.sink = state.db.batch();
        out.bytes = 0;
      }
      await (out.sink as ReturnType<DB['batch']>).write();
      await state.flush();
    } else {
      await state.flush(this.rowsTo);
    }
    this.coins.clear();
    this.epoch++;
    this.lastCount = 0;
    this.spentCount = 0;
    const { scripts } = this;
    // Balances stay while they are few enough: most scripts are paid again soon, and each miss is a read.
    if (scripts.byteSize <= this.keepScriptBytes) {
      scripts.touchedAt.fill(0);
    } else {
      this.scripts = scripts.retain((id) => scripts.stake[id] === 1);
      this.allScripts = false;
    }
    this.spilled = true;
  }

  /**
   * A kept index's spill that lets connecting go on while LevelDB writes it:
   * the batch (coins, deletes, balances, the state's rows and tip) is built
   * now, exactly as `spill` builds it, and written while the caller connects
   * the next blocks into an empty table, the spilled coins staying readable
   * (`frozen`) until the next spill, which waits for this write before
   * building its own. Nothing reaches the database but whole batches, in
   * order, so a crash resumes from the last one written, as with `spill`.
   * Only while the script table keeps every balance: a script it dropped
   * could have its balance in the batch being written, and be read before it lands.
   */
  async spillBehind(state: ChainState): Promise<void> {
    if (state.throwaway || this.scripts.byteSize > this.keepScriptBytes) return this.spill(state);
    await this.settle();
    const write = state.flushBehind(this.rowsTo);
    write.catch(() => undefined); // taken by `settle`
    this.writing = write;
    this.frozen = this.coins;
    this.coins = this.spare ?? CoinTable.forCoins(Math.max(1024, this.frozen.count));
    this.spare = null;
    this.epoch++;
    this.lastCount = 0;
    this.spentCount = 0;
    this.scripts.touchedAt.fill(0);
    this.spilled = true;
  }

  /** Waits for the write `spillBehind` started, then forgets its coins (the database holds them now). */
  private async settle(): Promise<void> {
    const write = this.writing;
    if (write !== null) {
      this.writing = null;
      await write;
    }
    if (this.frozen !== null) {
      // Kept, emptied, for the next `spillBehind` to connect into.
      this.frozen.clear();
      this.spare = this.frozen;
      this.frozen = null;
      this.epoch++;
    }
  }

  /**
   * Writes the rows of a temporary index's spill into `out.sink` (keys and
   * values are views into reused buffers, which a batch copies at once) as
   * the table holds them, counting their bytes, and yields after every few
   * thousand so that the caller may write a chunk.
   */
  private *chunkRows(out: RowsOut, coins: boolean): Generator<void> {
    const { keys, scripts } = this;
    const ops = this.spentOps;
    for (let i = 0; coins && i < this.spentCount; i++) {
      const key = keys.coin(ops, i * 36, ops.readUInt32BE(i * 36 + 32));
      out.sink.del(key);
      out.bytes += key.length + BATCH_BYTES_PER_ROW;
      if ((i & 4095) === 4095) yield;
    }
    let value = Buffer.allocUnsafe(256);
    // `each` calls back synchronously; a range of its slots at a time keeps the generator flat.
    for (let from = 0; coins && from < this.coins.slots; from += 4096) {
      this.coins.each((op, script, lo, hi, code) => {
        const bytes = scripts.bytes(script);
        if (value.length < 12 + bytes.length) value = Buffer.allocUnsafe(12 + bytes.length);
        const key = keys.coin(op, 0, op.readUInt32BE(32));
        const row = encodeCoinInto(value, lo, hi, code, bytes);
        out.sink.put(key, row);
        out.bytes += key.length + row.length + BATCH_BYTES_PER_ROW;
      }, from, from + 4096);
      yield;
    }
    for (let id = 0; id < scripts.count; id++) {
      if (scripts.touchedAt[id] === 0) continue;
      const v = scripts.balance(id);
      const key = keys.balance(scripts.bytes(id));
      if (v === 0n) out.sink.del(key);
      else out.sink.put(key, encodeAmount(v));
      out.bytes += key.length + 8 + BATCH_BYTES_PER_ROW;
      if ((id & 4095) === 4095) yield;
    }
  }

  /**
   * A spill's coins for the coin file: the database coins spent since the
   * last spill to delete, and the table's coins to put, read by slot.
   */
  private fileWrites(): CoinWrites {
    const { coins, scripts } = this;
    const slots = new Uint32Array(coins.count);
    const puts = coins.occupied(slots);
    const ops = this.spentOps;
    const op = Buffer.allocUnsafe(36);
    const key = { buf: op as Uint8Array, at: 0 };
    let value = Buffer.allocUnsafe(256);
    // The slot last read: the file asks for a put's key, then its length or value.
    let last = -1;
    const read = (i: number): void => {
      if (i !== last) coins.readSlot(slots[i]!, op);
      last = i;
    };
    const repeats = this.repeats;
    return {
      dels: this.spentCount,
      puts,
      fresh: this.firsts !== null,
      // A put whose txid may have repeated could meet its own coin of an earlier spill in the file.
      mayRepeat: repeats.size === 0 ? undefined : (i) => {
        read(i);
        return repeats.has(op, 0);
      },
      delKey: (i) => ({ buf: ops, at: i * 36 }),
      putKey: (i) => {
        read(i);
        return key;
      },
      putLength: (i) => {
        read(i);
        return COIN_SCRIPT_AT + scripts.lengthOf(coins.script);
      },
      putValue: (i) => {
        read(i);
        const n = COIN_SCRIPT_AT + scripts.lengthOf(coins.script);
        if (value.length < n) value = Buffer.allocUnsafe(2 * n);
        encodeCoinHead(value, coins.lo, coins.hi, coins.code);
        scripts.copyTo(coins.script, value, COIN_SCRIPT_AT);
        return value.subarray(0, n);
      },
      putInto: (i, out, keyAt, valueAt) => {
        read(i);
        out.set(op, keyAt);
        encodeCoinHead(out, coins.lo, coins.hi, coins.code, valueAt);
        scripts.copyTo(coins.script, out, valueAt + COIN_SCRIPT_AT);
      },
    };
  }

  /**
   * Writes the rows of a kept index's spill into `sink`, the state's atomic
   * batch: the database coins spent are deleted with their script-index
   * rows ('o'), the table's coins put with theirs, and the changed balances
   * put. Each kind of row goes in about key order (keyorder.ts), and every
   * delete before every put, so that a coin deleted and made again (a
   * repeated txid) ends as made.
   */
  /**
   * The order of the first `n` rows' script-index keys ('o': script, then
   * outpoint), scripts from `ids` and txids already in `txidWord`: by the
   * txid's first word, then by the script's place among the spill's changed
   * balances (`rankScripts`). Every script a spill's coins name is among
   * them: connect marks the script of each coin it creates or spends as
   * touched. That is the order of the balance keys ('b', then the script),
   * not quite of these ('o', then the script's length): scripts of one
   * length and template come in key order, their groups perhaps not, which
   * is as good for the memtable (keyorder.ts) and as correct.
   */
  private byScriptCoin(ids: ArrayLike<number>, n: number, rankBytes: number): Uint32Array {
    const { sorter, scratch } = this;
    const { w0, rank } = scratch;
    for (let i = 0; i < n; i++) w0[i] = rank[ids[i]!]!;
    sorter.start(n);
    sorter.by(scratch.txidWord);
    return sorter.by(w0, rankBytes);
  }

  /**
   * Sorts the scripts whose balances changed since the last spill by their
   * balance keys ('b', then the script) into `scratch.balanceIds`, and gives
   * each its place there in `scratch.rank` (any other script: after them
   * all). The script-index rows are then sorted by that place, a word per
   * row, instead of by words read from each row's script: rows name their
   * scripts in no order, and those reads missed the cache. Returns how many
   * scripts changed, and the bytes a place takes.
   */
  private rankScripts(): { m: number; rankBytes: number } {
    const { scripts, sorter, scratch } = this;
    let m = 0;
    for (let id = 0; id < scripts.count; id++) {
      if (scripts.touchedAt[id] === 0) continue;
      if (m === scratch.size) scratch.room(m + 1);
      scratch.coinScript[m] = id;
      scratch.balanceWords(scripts, id, m);
      m++;
    }
    sorter.start(m);
    sorter.by(scratch.w2);
    sorter.by(scratch.w1);
    const order = sorter.by(scratch.w0);
    scratch.scriptRoom(scripts.count);
    const { rank, balanceIds } = scratch;
    rank.fill(m, 0, scripts.count);
    for (let k = 0; k < m; k++) {
      const id = scratch.coinScript[order[k]!]!;
      balanceIds[k] = id;
      rank[id] = k;
    }
    return { m, rankBytes: m < 0x100 ? 1 : m < 0x10000 ? 2 : m < 0x1000000 ? 3 : 4 };
  }

  /**
   * Writes the rows of a kept index's spill into `sink`, the state's atomic
   * batch: the database coins spent are deleted with their script-index
   * rows ('o'), the table's coins put with theirs, and the changed balances
   * put. Each kind of row goes in about key order (keyorder.ts), and every
   * delete before every put, so that a coin deleted and made again (a
   * repeated txid) ends as made.
   */
  private sortedRows(sink: RowSink): void {
    const { keys, scripts, sorter, scratch } = this;
    const spent = this.spentCount;
    const ops = this.spentOps;
    const ids = this.spentScripts;
    scratch.room(Math.max(spent, this.coins.count));
    const { m, rankBytes } = this.rankScripts();
    const { txidWord } = scratch;
    for (let i = 0; i < spent; i++) txidWord[i] = wordAt(ops, i * 36);
    sorter.start(spent);
    let order = sorter.by(txidWord);
    for (let k = 0; k < spent; k++) sink.del(keys.coinAt(ops, order[k]! * 36));
    order = this.byScriptCoin(ids, spent, rankBytes);
    for (let k = 0; k < spent; k++) {
      const i = order[k]!;
      sink.del(keys.scriptCoinOf(scripts, ids[i]!, ops, i * 36));
    }
    // The table's coins, copied out of it in slot order, then written by key.
    let n = 0;
    const { coinOps, coinScript, lo, hi, code } = scratch;
    // One callback for every range of slots.
    const take = (op: Buffer, script: number, l: number, h: number, c: number): void => {
      coinOps.set(op, n * 36);
      txidWord[n] = wordAt(op, 0);
      coinScript[n] = script;
      lo[n] = l;
      hi[n] = h;
      code[n] = c;
      n++;
    };
    for (let from = 0; from < this.coins.slots; from += 4096) this.coins.each(take, from, from + 4096);
    sorter.start(n);
    order = sorter.by(txidWord);
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      const id = coinScript[i]!;
      const value = scratch.value(COIN_SCRIPT_AT + scripts.lengthOf(id));
      encodeCoinHead(value, lo[i]!, hi[i]!, code[i]!);
      scripts.copyTo(id, value, COIN_SCRIPT_AT);
      sink.put(keys.coinAt(coinOps, i * 36), value);
    }
    order = this.byScriptCoin(coinScript, n, rankBytes);
    for (let k = 0; k < n; k++) {
      const i = order[k]!;
      sink.put(keys.scriptCoinOf(scripts, coinScript[i]!, coinOps, i * 36), KEY_ONLY_VALUE);
    }
    // The balances changed since the last spill, in key order (`rankScripts`).
    const amount = scratch.value(8);
    const { balanceIds } = scratch;
    for (let k = 0; k < m; k++) {
      const id = balanceIds[k]!;
      const v = scripts.balance(id);
      const key = keys.balanceOf(scripts, id);
      if (v === 0n) {
        sink.del(key);
      } else {
        amount.writeBigUInt64LE(v, 0);
        sink.put(key, amount);
      }
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

/** Per row of a spill: a coin's outpoint and words, and the words its keys are sorted by; grown, never shrunk. */
class SpillScratch {
  size = 0;
  coinOps = Buffer.alloc(0);
  coinScript: Uint32Array = new Uint32Array(0);
  lo: Uint32Array = new Uint32Array(0);
  hi: Uint32Array = new Uint32Array(0);
  code: Uint32Array = new Uint32Array(0);
  txidWord: Uint32Array = new Uint32Array(0);
  w0: Uint32Array = new Uint32Array(0);
  w1: Uint32Array = new Uint32Array(0);
  w2: Uint32Array = new Uint32Array(0);

  /** Room for `n` rows, keeping what the first rows hold. */
  room(n: number): void {
    if (n <= this.size) return;
    const size = Math.max(n, 2 * this.size, 1024);
    const grow = (a: Uint32Array): Uint32Array<ArrayBuffer> => {
      const b = new Uint32Array(size);
      b.set(a);
      return b;
    };
    const ops = Buffer.allocUnsafe(36 * size);
    this.coinOps.copy(ops);
    this.coinOps = ops;
    this.coinScript = grow(this.coinScript);
    this.lo = grow(this.lo);
    this.hi = grow(this.hi);
    this.code = grow(this.code);
    this.txidWord = grow(this.txidWord);
    this.w0 = grow(this.w0);
    this.w1 = grow(this.w1);
    this.w2 = grow(this.w2);
    this.size = size;
  }

  /** Per script of the table: its place among a spill's changed balances, and those scripts in key order (`rankScripts`). */
  rank: Uint32Array = new Uint32Array(0);
  balanceIds: Uint32Array = new Uint32Array(0);

  /** Room for `n` scripts in `rank` and `balanceIds` (contents not kept). */
  scriptRoom(n: number): void {
    if (n <= this.rank.length) return;
    const size = Math.max(n, 2 * this.rank.length, 1024);
    this.rank = new Uint32Array(size);
    this.balanceIds = new Uint32Array(size);
  }

  get byteSize(): number {
    return this.size * SCRATCH_ROW + 8 * this.rank.length;
  }

  /** The first bytes of script `id`, copied. */
  // A Buffer, as every other target of `copyTo` is: one kind of array keeps its stores monomorphic.
  private head = Buffer.alloc(64);
  private headOf(scripts: ScriptBytes, id: number): number {
    const n = scripts.lengthOf(id);
    if (this.head.length < n) this.head = Buffer.alloc(2 * n);
    scripts.copyTo(id, this.head, 0);
    return n;
  }

  /** Row `i`'s words of a balance key ('b', then the script). */
  balanceWords(scripts: ScriptBytes, id: number, i: number): void {
    const n = this.headOf(scripts, id);
    const h = this.head;
    this.w0[i] = wordAt(h, 0, n);
    this.w1[i] = wordAt(h, 4, n);
    this.w2[i] = wordAt(h, 8, n);
  }

  /** Reused values, one buffer per length (a batch copies each at once). */
  private readonly values: Buffer[] = [];
  value(n: number): Buffer {
    let b = this.values[n];
    if (b === undefined) {
      b = Buffer.allocUnsafe(n);
      if (n <= 1024) this.values[n] = b;
    }
    return b;
  }
}

/**
 * The txids of one block (a view of its txid buffer, 32 bytes each), looked
 * up by their first word: open addressing over their indices, reused block
 * after block.
 */
class BlockTxids {
  private slots = new Int32Array(1024);
  private txids: Buffer = Buffer.alloc(0);

  /** Indexes `txids` (this block's), forgetting the last block's. */
  index(txids: Buffer): void {
    const n = txids.length >>> 5;
    let size = this.slots.length;
    while (size < 2 * n) size *= 2;
    if (size !== this.slots.length) this.slots = new Int32Array(size);
    else this.slots.fill(0);
    this.txids = txids;
    const slots = this.slots;
    const mask = size - 1;
    for (let t = 0; t < n; t++) {
      let i = u32(txids, 32 * t) & mask;
      while (slots[i] !== 0) i = (i + 1) & mask;
      slots[i] = t + 1;
    }
  }

  /** Whether txid `b[at..at+32)` is one of the block's. */
  has(b: Uint8Array, at: number): boolean {
    const { slots, txids } = this;
    const mask = slots.length - 1;
    const first = u32(b, at);
    for (let i = first & mask; ; i = (i + 1) & mask) {
      const s = slots[i]!;
      if (s === 0) return false;
      const o = 32 * (s - 1);
      if (u32(txids, o) !== first) continue;
      let same = true;
      for (let k = 4; k < 32; k++) {
        if (txids[o + k] !== b[at + k]) {
          same = false;
          break;
        }
      }
      if (same) return true;
    }
  }
}

/**
 * A set of txids by fingerprint (their first eight bytes: a txid is a hash),
 * open addressing over two word arrays. A fingerprint met twice may be two
 * txids that differ: `seen` and `has` then say yes, the cautious answer for
 * their uses (`MemoryUtxo.connecting`, `fileWrites`).
 */
export class TxidPrints {
  private lo = new Uint32Array(1024);
  private hi = new Uint32Array(1024);
  private count = 0;
  /** Whether the fingerprint (0, 0) was added: it marks an empty slot, so it is held apart. */
  private zero = false;

  /** Txids (fingerprints) added. */
  get size(): number {
    return this.count + (this.zero ? 1 : 0);
  }

  /** Whether a txid with the fingerprint of `t[at..at+32)` was added before; adds it. */
  seen(t: Uint8Array, at: number): boolean {
    return !this.add(t, at);
  }

  /** Adds the txid at `t[at..]`; false when its fingerprint was there. */
  add(t: Uint8Array, at: number): boolean {
    const a = u32(t, at);
    const b = u32(t, at + 4);
    if (a === 0 && b === 0) {
      const was = this.zero;
      this.zero = true;
      return !was;
    }
    if (2 * (this.count + 1) > this.lo.length) this.grow();
    return this.put(a, b);
  }

  /** Whether a txid with the fingerprint of `t[at..at+32)` was added. */
  has(t: Uint8Array, at: number): boolean {
    const a = u32(t, at);
    const b = u32(t, at + 4);
    if (a === 0 && b === 0) return this.zero;
    const { lo, hi } = this;
    const mask = lo.length - 1;
    for (let i = (a ^ b) & mask; ; i = (i + 1) & mask) {
      const x = lo[i]!;
      const y = hi[i]!;
      if (x === a && y === b) return true;
      if (x === 0 && y === 0) return false;
    }
  }

  /** Adds fingerprint (a, b); false when it was there. */
  private put(a: number, b: number): boolean {
    const { lo, hi } = this;
    const mask = lo.length - 1;
    for (let i = (a ^ b) & mask; ; i = (i + 1) & mask) {
      if (lo[i] === 0 && hi[i] === 0) {
        lo[i] = a;
        hi[i] = b;
        this.count++;
        return true;
      }
      if (lo[i] === a && hi[i] === b) return false;
    }
  }

  private grow(): void {
    const { lo, hi } = this;
    this.lo = new Uint32Array(2 * lo.length);
    this.hi = new Uint32Array(2 * hi.length);
    this.count = 0;
    for (let i = 0; i < lo.length; i++) if (lo[i] !== 0 || hi[i] !== 0) this.put(lo[i]!, hi[i]!);
  }

  get byteSize(): number {
    return this.lo.byteLength + this.hi.byteLength;
  }
}

/** What `readThrough` or `readAhead` read for a block: coins by outpoint, balances by script (undefined: absent). */
interface Reads {
  readonly outpoints: Buffer[];
  readonly coins: Array<Buffer | undefined>;
  readonly scripts: Buffer[];
  readonly balances: Array<Buffer | undefined>;
}

/** Where `MemoryUtxo.rows` writes, and how many bytes it has written there. */
interface RowsOut {
  sink: RowSink;
  bytes: number;
}

/**
 * How many coins a table may hold while the view stays within `bytes`
 * (`footprint`): for a kept index, with the batch that spills them.
 */
export function coinsWithin(bytes: number, kept = false): number {
  const spill = kept ? BATCH_COPIES * (COIN_ROW + SCRIPT_ROW) + 2 * BATCH_BYTES_PER_ROW + SCRATCH_ROW : 0;
  let n = 1024;
  while (coinTableBytes(n * 2) + n * 2 * spill <= bytes) n *= 2;
  return n;
}
