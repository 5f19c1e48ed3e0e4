import type { NetworkParams } from '../../script/params.js';
import { MuHash3072 } from '../../script/muhash.js';
import { proofLeaf, ProofTree } from '../../script/prooftree.js';
import { RegistryRoot } from '../../script/root.js';
import {
  decodeHeightState, decodeRegistration, encodeHeightState, encodeTip, rootElement,
} from './codec.js';
import { K, P, parse } from './layout.js';
import { readTip, type DB } from './store.js';
import type { Registration, Tip } from '../types.js';

/**
 * Memory that writing undo records ahead costs beyond the records: LevelDB
 * switches memtables and writes table files between spills, and maps more
 * of them. Measured with `recount --db` on the 10M bench chain (quiet
 * machine): peak RSS went from 466 to 497-508 MiB when undo records began
 * to be written ahead. A budget 16 MiB smaller, which gives the coin view
 * 12 MiB less (budget.ts), brought it to 478 MiB at the same speed; taking
 * 20 MiB from the view instead gave 463 MiB but took 12% longer.
 */
export const UNDO_AHEAD_RESERVE = 12 * 1024 * 1024;

/*
 * What one cached row costs in the JS heap, measured roughly (key string,
 * Buffer headers, Map slot), not just the bytes it stores.
 */
const ROW_COST = 200;

/** Where a flush's extra writers put their rows: the flush's own atomic batch. */
export interface RowSink {
  put(key: Buffer, value: Buffer): unknown;
  del(key: Buffer): unknown;
}

type ChainedBatch = ReturnType<DB['batch']>;

/**
 * Where a flush's rows go: a spill hands a chained batch a million rows,
 * and its public `put` and `del` make an operation object apiece (options
 * spread, encodings looked up, key checked) before calling the native batch.
 * Our keys and values are always Buffers on a database without hooks or
 * sublevels, so the rows go straight to the native calls (abstract-level's
 * `_put`/`_del`, what the public ones end in), unless a prewrite hook or a
 * 'write' listener would need to see them. The batch still gets at least
 * one public operation (the tip), so `write` writes it. Measured with a
 * million rows of a spill's shapes (load average 10-16): 40-80 ns a row
 * less, a fifth of the call; the 1M bench chain's spills hand over about
 * 5.8 million rows.
 */
function directSink(db: DB, batch: ChainedBatch): RowSink {
  const raw = batch as unknown as RawBatch;
  if (typeof raw._put !== 'function' || typeof raw._del !== 'function' || !(db.hooks.prewrite as unknown as { noop: boolean }).noop || db.listenerCount('write') > 0) return batch;
  return new DirectSink(raw);
}

interface RawBatch {
  _put(key: Buffer, value: Buffer): void;
  _del(key: Buffer): void;
}

/**
 * `directSink`'s sink: a class, not closures made for each batch, so that the
 * code calling `put` and `del` sees the same functions at every flush (V8
 * throws away optimized code that called one function when another comes).
 */
class DirectSink implements RowSink {
  constructor(private readonly batch: RawBatch) {}

  put(key: Buffer, value: Buffer): void {
    this.batch._put(key, value);
  }

  del(key: Buffer): void {
    this.batch._del(key);
  }
}

/** Map keys for binary values: latin1 keeps one char per byte, cheap and exact. */
export const bkey = (b: Uint8Array): string => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength)).toString('latin1');
export const unbkey = (s: string): Buffer => Buffer.from(s, 'latin1');

/**
 * The indexer's working state: the registry rows, undo records and per-height
 * rows written since the last flush, the in-memory registry index (every
 * script ever registered, and every registration not yet ended), the roots
 * and the tip. Coins and balances live in the coin view (engine/coinview.ts),
 * which hands them to `flush`. Nothing reaches the database except through
 * `flush`, which writes everything with the tip in one atomic batch — so a
 * crash at any instant resumes from the last flushed tip.
 */
export class ChainState {
  /** The tip of the state in memory, ahead of the database until the next flush. */
  tip: Tip | null = null;
  /** The tip the database holds: what readers see. Moves only in `load` and `flush`. */
  committedTip: Tip | null = null;
  root = new RegistryRoot();
  /** The proof tree over the live registrations (docs/spec.md §2.9): the open ones, one per script. */
  proofTree = new ProofTree();
  /** Core-compatible UTXO-set MuHash, when the index keeps one (`--utxo-hash`). */
  utxoHash: MuHash3072 | null = null;
  /** Dirty rows other than coins and balances, by key; null = delete. */
  readonly rows = new Map<string, Buffer | null>();
  /** Script → id of its current registration (ended or not): mirrors the 'r' rows. */
  readonly current = new Map<string, string>();
  /** Registrations not yet ended, by id: mirrors the 'x' and 'g' rows. */
  readonly open = new Map<string, Registration>();
  /** expiryHeight → ids of open registrations that expire there. */
  readonly expiring = new Map<number, Set<string>>();
  private cachedBytes = 0;

  /**
   * Write each block's undo record as soon as it is connected (`putUndo`),
   * ahead of the flush that commits its tip, instead of holding it for that
   * flush. A kept recount sets it: undo records are most of what the state
   * holds between spills (about 64% of the index's bytes on the bench
   * chains), and once written they neither count against the view's budget
   * nor weigh on the spill's batch, so the view spills less often, and
   * fewer coins are written and deleted again. A record above the committed
   * tip is never read (a disconnect reads the tip's; readers stop at the
   * tip), is written again with the same bytes when that block is connected
   * again, and `load` deletes any a crash leaves above the tip.
   */
  undoAhead = false;
  /** Settles once every undo record written ahead so far is in the database; rejects if one failed. */
  private undoWritten: Promise<unknown> = Promise.resolve();
  /** Bytes of the undo records written ahead since the last flush: held until written, then in LevelDB's memtable. */
  private undoAheadBytes = 0;
  /** Bytes of the undo records whose writes have not ended: each held twice until then (ours, and the copy the write takes). */
  private undoWritingBytes = 0;

  /**
   * `throwaway`: the index is deleted after this run (a recount without
   * --db), so nothing will ever be disconnected or funded from it: skip the
   * undo records and the script → outpoints index, about half the writes.
   */
  constructor(readonly db: DB, readonly params: NetworkParams, readonly throwaway = false) {}

  /** Loads the tip, the root at the tip and the registry index from the database. */
  async load(): Promise<void> {
    this.rows.clear();
    this.current.clear();
    this.open.clear();
    this.expiring.clear();
    this.cachedBytes = 0;
    await this.undoWritten.catch(() => undefined);
    this.undoWritten = Promise.resolve();
    this.undoAheadBytes = 0;
    this.undoWritingBytes = 0;
    this.tip = await readTip(this.db);
    this.committedTip = this.tip;
    if (!this.throwaway) await this.dropUndoAbove(this.tip === null ? 0 : this.tip.height + 1);
    const raw = this.tip ? await this.db.get(K.heightState(this.tip.height)) : undefined;
    const state = raw === undefined ? undefined : decodeHeightState(raw);
    this.root = state ? RegistryRoot.deserialize(state.registry) : new RegistryRoot();
    const withUtxo = (await this.db.get(K.meta('utxoHash')))?.toString() === '1';
    this.utxoHash = !withUtxo ? null : state?.utxo ? MuHash3072.deserialize(state.utxo) : new MuHash3072();
    for await (const [k, v] of this.db.iterator(K.all(P.current))) {
      this.current.set(bkey(parse.current(k).script), bkey(v));
    }
    const ids: Buffer[] = [];
    for await (const k of this.db.keys(K.all(P.expiry))) ids.push(parse.expiry(k).id);
    const regs = await this.db.getMany(ids.map((id) => K.registration(id)));
    regs.forEach((raw, i) => {
      if (raw === undefined) throw new Error(`index inconsistent: pending expiry without registration ${ids[i]!.toString('hex')}`);
      this.trackOpen(bkey(ids[i]!), decodeRegistration(raw));
    });
    // The tree is not stored, only its root: it is rebuilt from the live
    // registrations, which is one hash per tree node.
    this.proofTree = ProofTree.from([...this.open.values()].map((r) => proofLeaf(rootElement(r))));
  }

  /**
   * Deletes the undo records at heights `from` and above: those written
   * ahead (`undoAhead`) of a tip that a crash or an error never committed.
   * Without them the index is exactly as the last flush left it.
   */
  private async dropUndoAbove(from: number): Promise<void> {
    const stale: Buffer[] = [];
    for await (const k of this.db.keys({ gte: K.undo(from), lt: Buffer.of(P.undo + 1) })) stale.push(k);
    if (stale.length > 0) await this.db.batch(stale.map((key) => ({ type: 'del' as const, key })), { sync: true });
  }

  trackOpen(id: string, reg: Registration): void {
    this.open.set(id, reg);
    let set = this.expiring.get(reg.expiryHeight);
    if (!set) this.expiring.set(reg.expiryHeight, (set = new Set()));
    set.add(id);
  }

  untrackOpen(id: string, reg: Registration): void {
    this.open.delete(id);
    const set = this.expiring.get(reg.expiryHeight);
    set?.delete(id);
    if (set && set.size === 0) this.expiring.delete(reg.expiryHeight);
  }

  putRow(key: Buffer, value: Buffer | null): void {
    this.rows.set(bkey(key), value);
    this.cachedBytes += ROW_COST + key.length + (value?.length ?? 0);
  }

  /**
   * The undo record of the block at `height`: a row of the next flush, or
   * with `undoAhead` written now, in a write of its own that the next
   * flush's batch waits for.
   */
  putUndo(height: number, record: Buffer): void {
    const key = K.undo(height);
    if (!this.undoAhead) return this.putRow(key, record);
    // A delete of this height held for the flush (a disconnect's) would land after it.
    this.rows.delete(bkey(key));
    const bytes = key.length + record.length;
    this.undoWritingBytes += bytes;
    const write = this.db.put(key, record).finally(() => {
      this.undoWritingBytes -= bytes;
    });
    write.catch(() => undefined); // taken by the next flush
    this.undoWritten = Promise.all([this.undoWritten, write]);
    this.undoAheadBytes += bytes;
  }

  /**
   * What the undo records written ahead hold (`undoAhead`): those written
   * since the last flush once (LevelDB's memtable), and twice more those
   * whose writes have not ended, plus UNDO_AHEAD_RESERVE.
   */
  get undoBytes(): number {
    if (!this.undoAhead) return 0;
    return UNDO_AHEAD_RESERVE + this.undoAheadBytes + 2 * this.undoWritingBytes;
  }

  /**
   * Waits for the undo records written ahead while more than `max` bytes of
   * them are still being written: LevelDB may write more slowly than blocks
   * connect (while it compacts, or on a loaded machine), and each waiting
   * write holds its record twice.
   */
  async undoRoom(max: number): Promise<void> {
    if (this.undoWritingBytes > max) await this.undoWritten;
  }

  /** The per-height accumulators stored under 'S': registry root, proof root, then the UTXO hash if kept. */
  heightState(): Buffer {
    if (this.utxoHash !== null) {
      return encodeHeightState({ registry: this.root.serialize(), proofRoot: this.proofTree.root(), utxo: this.utxoHash.serialize() });
    }
    // Most blocks change neither root: their rows then share one value
    // (never written into; a batch copies it), not 800 new bytes a block.
    const registry = this.root.serialized();
    const proof = this.proofTree.rootLatin1();
    const last = this.lastHeightState;
    if (last !== null && last.registry === registry && last.proof === proof) return last.value;
    const value = encodeHeightState({ registry, proofRoot: Buffer.from(proof, 'latin1'), utxo: null });
    this.lastHeightState = { registry, proof, value };
    return value;
  }

  /** The last `heightState` without a UTXO hash, and what it was made of. */
  private lastHeightState: { registry: Buffer; proof: string; value: Buffer } | null = null;

  /** Rough size of the cached rows, for deciding when to flush. */
  get cacheBytes(): number {
    return this.cachedBytes;
  }

  /**
   * Writes every row cached since the last flush, together with the tip, in
   * one atomic batch, then empties the cache. `extra` adds rows held outside
   * this cache (the coin view's coins and balances) to the same batch, so the
   * coins and the registry on disk always belong to the same tip.
   */
  async flush(extra?: (sink: RowSink) => void): Promise<void> {
    const { batch, tip } = this.batchOf(extra);
    const undo = this.undoWritten;
    this.undoAheadBytes = 0;
    // The tip is committed only after the undo records below it are written.
    await undo;
    await batch.write({ sync: !this.throwaway });
    this.committedTip = tip;
    this.rows.clear();
    this.cachedBytes = 0;
    if (extra !== undefined) await this.releaseMemtable(tip);
  }

  /**
   * LevelDB turns its memtable into a table file only when a later write
   * finds it past writeBufferSize. A spill's batch is bigger than that, so
   * its memtable would stay in memory until the next spill, then be written
   * out while that spill's batch and memtable are built: three copies of a
   * spill at once. Writing the tip just written once more (the same value:
   * the index's content does not change, crash or not) makes LevelDB
   * switch memtables now, so the last one is written out while the view
   * connects the next blocks (budget.ts BATCH_COPIES counts on it). Under
   * writeBufferSize it only appends a row to the log. A temporary index's
   * spills go in small chunks and need none of this.
   */
  private async releaseMemtable(tip: Tip | null): Promise<void> {
    if (this.throwaway || tip === null) return;
    await this.db.put(K.tip(), encodeTip(tip));
  }

  /**
   * As `flush`, but returns once the batch is built and the cache emptied,
   * with the write still running: rows added meanwhile belong to the next
   * flush. `committedTip` moves when the returned promise resolves, after
   * the write; the next flush must not start before then.
   */
  flushBehind(extra?: (sink: RowSink) => void): Promise<void> {
    const { batch, tip } = this.batchOf(extra);
    this.rows.clear();
    this.cachedBytes = 0;
    // The tip is committed only after the undo records below it are written;
    // those written meanwhile are above it.
    const undo = this.undoWritten;
    this.undoAheadBytes = 0;
    return undo.then(() => batch.write({ sync: !this.throwaway })).then(() => {
      this.committedTip = tip;
      if (extra !== undefined) return this.releaseMemtable(tip);
    });
  }

  /** The batch a flush writes: the cached rows, `extra`'s and the tip. */
  private batchOf(extra?: (sink: RowSink) => void): { batch: ReturnType<DB['batch']>; tip: Tip | null } {
    // A chained batch hands each operation to LevelDB's native write batch as
    // it is added, so a large flush never holds an array of every operation
    // in the JS heap; it is still written atomically by one write().
    const batch = this.db.batch();
    // The cached rows take the same way as `extra`'s: a catch-up hands over a
    // few a block (its hash, height state, time and undo record).
    const sink = directSink(this.db, batch);
    for (const [k, v] of this.rows) {
      if (v === null) sink.del(unbkey(k));
      else sink.put(unbkey(k), v);
    }
    extra?.(sink);
    const tip = this.tip;
    if (tip) batch.put(K.tip(), encodeTip(tip));
    else batch.del(K.tip());
    return { batch, tip };
  }
}
