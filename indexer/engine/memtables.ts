/**
 * Compact in-memory UTXO set and script balances for a recount into a
 * temporary index (see memconnect.ts): typed arrays with open addressing
 * instead of a JS object per coin, so a million-transaction chain costs tens
 * of megabytes and almost no garbage collection.
 */

import { OUTPOINT_SEED, outpointHash } from '../store/coinfile.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const TWO_32 = 0x1_0000_0000;
/** A value with a high word at or above this does not fit a double exactly. */
const HI_SAFE = 0x20_0000;
const LOAD = 0.7;

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;

function pow2AtLeast(n: number): number {
  let c = 16;
  while (c < n) c *= 2;
  return c;
}

/** Script bytes → dense id, with each script's balance in satoshis. */
export class ScriptTable {
  /**
   * Open addressing, two words a slot: the script's hash, then where its
   * entry starts in `words` + 1 (0: empty). An entry is the script's id, its
   * length in bytes, then its bytes: a lookup reads the slot and one entry,
   * mostly one cache line each, and not the per-id arrays.
   */
  private slots: Int32Array;
  private mask: number;
  /** Every script's entry (id, length, then its bytes zero-padded to whole words); `start` points at the bytes. */
  private words = new Int32Array(1 << 14);
  private used = 0;
  /** The script `hash` last read, as words. */
  private key = new Int32Array(64);
  private start = new Uint32Array(1024);
  private len = new Uint32Array(1024);
  private balances = new Float64Array(1024);
  /** Balances that left the exact range of a double, kept as bigint from then on. */
  private readonly big = new Map<number, bigint>();
  /** Per id: 1 when the script is named by an announcement (its balance matters to the registry). */
  stake = new Uint8Array(1024);
  /** Per id: a caller's stamp of when the balance last changed (the in-memory connect uses height + 1). */
  touchedAt = new Uint32Array(1024);
  count = 0;

  constructor() {
    this.slots = new Int32Array(2 * 1024);
    this.mask = 1023;
  }

  /**
   * Hashes `b[s..e)` and copies it into `key` as little-endian words (the
   * last one zero-padded), so that `same` compares words of two typed arrays
   * instead of bytes of a block buffer.
   */
  private hash(b: Uint8Array, s: number, e: number): number {
    const n = e - s;
    if (n > 4 * this.key.length) this.key = new Int32Array(2 * Math.ceil(n / 4));
    const key = this.key;
    let h = Math.imul(n, 0x9e3779b1);
    let p = s;
    let k = 0;
    for (; p + 4 <= e; p += 4) {
      const x = b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24);
      key[k++] = x;
      h = Math.imul(h ^ x, 0x85ebca6b) ^ (h >>> 13);
    }
    if (p < e) {
      let x = 0;
      for (let q = 0; p < e; p++, q += 8) x |= b[p]! << q;
      key[k] = x;
      h = Math.imul(h ^ x, 0xc2b2ae35);
    }
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Whether the entry at `at` holds the script `hash` last copied into `key`, `n` bytes long. */
  private same(at: number, n: number): boolean {
    const a = this.words;
    if (a[at + 1] !== n) return false;
    const key = this.key;
    const o = at + 2;
    for (let k = 0, m = (n + 3) >>> 2; k < m; k++) if (a[o + k] !== key[k]) return false;
    return true;
  }

  /** The id of the script `b[s..e)`, or -1. */
  find(b: Uint8Array, s: number, e: number): number {
    const h = this.hash(b, s, e) | 0;
    const n = e - s;
    const slots = this.slots;
    for (let i = h & this.mask; ; i = (i + 1) & this.mask) {
      const v = slots[2 * i + 1]!;
      if (v === 0) return -1;
      if (slots[2 * i] === h && this.same(v - 1, n)) return this.words[v - 1]!;
    }
  }

  /** The id of the script `b[s..e)`, adding it with a zero balance if new. */
  intern(b: Uint8Array, s: number, e: number): number {
    const h = this.hash(b, s, e) | 0;
    const n = e - s;
    const slots = this.slots;
    let i = h & this.mask;
    for (; ; i = (i + 1) & this.mask) {
      const v = slots[2 * i + 1]!;
      if (v === 0) break;
      if (slots[2 * i] === h && this.same(v - 1, n)) return this.words[v - 1]!;
    }
    const id = this.count++;
    if (id === this.start.length) this.growIds();
    const m = 2 + ((n + 3) >>> 2);
    if (this.used + m > this.words.length) {
      const bigger = new Int32Array(Math.max(this.words.length * 2, this.used + m));
      bigger.set(this.words.subarray(0, this.used));
      this.words = bigger;
    }
    const at = this.used;
    const words = this.words;
    words[at] = id;
    words[at + 1] = n;
    for (let k = 0; k < m - 2; k++) words[at + 2 + k] = this.key[k]!;
    this.start[id] = at + 2;
    this.len[id] = n;
    this.used += m;
    this.balances[id] = 0;
    this.stake[id] = 0;
    this.touchedAt[id] = 0;
    slots[2 * i] = h;
    slots[2 * i + 1] = at + 1;
    if (this.count > (this.mask + 1) * LOAD) this.rehash();
    return id;
  }

  private growIds(): void {
    const n = this.start.length * 2;
    const grow = <T extends Uint32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.start = grow(this.start, (k) => new Uint32Array(k));
    this.len = grow(this.len, (k) => new Uint32Array(k));
    this.balances = grow(this.balances, (k) => new Float64Array(k));
    this.stake = grow(this.stake, (k) => new Uint8Array(k));
    this.touchedAt = grow(this.touchedAt, (k) => new Uint32Array(k));
  }

  private rehash(): void {
    const cap = (this.mask + 1) * 2;
    const slots = new Int32Array(2 * cap);
    const mask = cap - 1;
    const old = this.slots;
    for (let j = 0; j < old.length; j += 2) {
      const v = old[j + 1]!;
      if (v === 0) continue;
      let i = old[j]! & mask;
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
      slots[2 * i] = old[j]!;
      slots[2 * i + 1] = v;
    }
    this.slots = slots;
    this.mask = mask;
  }

  /** The script's bytes, a view valid until the next `intern`. */
  bytes(id: number): Buffer {
    return Buffer.from(this.words.buffer, this.words.byteOffset + 4 * this.start[id]!, this.len[id]!);
  }

  /** The length in bytes of script `id`. */
  lengthOf(id: number): number {
    return this.len[id]!;
  }

  /** Copies the bytes of script `id` into `out` at `at`, without making a view (a spill does this by the hundred thousand). */
  copyTo(id: number, out: Uint8Array, at: number): void {
    const words = this.words;
    const end = at + this.len[id]!;
    let w = this.start[id]!;
    let p = at;
    for (; p + 4 <= end; p += 4, w++) {
      const x = words[w]!;
      out[p] = x;
      out[p + 1] = x >>> 8;
      out[p + 2] = x >>> 16;
      out[p + 3] = x >>> 24;
    }
    if (p < end) {
      const x = words[w]!;
      for (let q = 0; p < end; p++, q += 8) out[p] = x >>> q;
    }
  }

  /** Adds `sign` × (hi·2³² + lo) to the balance of `id`. */
  add(id: number, lo: number, hi: number, sign: 1 | -1): void {
    if (hi < HI_SAFE) {
      const v = this.balances[id]! + sign * (hi * TWO_32 + lo);
      if (v >= 0 && v <= MAX_SAFE && (this.big.size === 0 || !this.big.has(id))) {
        this.balances[id] = v;
        return;
      }
    }
    const delta = (BigInt(hi) << 32n) | BigInt(lo);
    const v = this.balance(id) + (sign > 0 ? delta : -delta);
    if (v < 0n) throw new Error('negative balance: the index is inconsistent');
    this.big.set(id, v);
  }

  balance(id: number): bigint {
    return this.big.get(id) ?? BigInt(this.balances[id]!);
  }

  /** Sets the balance of `id`, e.g. to the one read from the database. */
  setBalance(id: number, v: bigint): void {
    if (v <= BigInt(MAX_SAFE)) {
      this.balances[id] = Number(v);
      this.big.delete(id);
    } else {
      this.big.set(id, v);
    }
  }

  /**
   * A new table holding only the scripts `keep` accepts, with their balances
   * and stake flags, all stamped clean (touchedAt 0). Ids change, so every
   * coin table pointing into this one must be emptied first.
   */
  retain(keep: (id: number) => boolean): ScriptTable {
    const t = new ScriptTable();
    for (let id = 0; id < this.count; id++) {
      if (!keep(id)) continue;
      const b = this.bytes(id);
      const n = t.intern(b, 0, b.length);
      t.setBalance(n, this.balance(id));
      t.stake[n] = this.stake[id]!;
    }
    return t;
  }

  get byteSize(): number {
    return this.slots.byteLength + this.words.byteLength + this.start.length * 21;
  }
}

/*
 * One coin per slot of 13 words: txid (8 words, as stored in the block), vout,
 * script id + 1, the value's low and high words, and height·2 + coinbase (the
 * stored coin's code, so a spilled coin is a complete database row). A separate array holds
 * one 32-bit tag per slot (the key's hash with the top bit set; 0 marks an
 * empty slot): probing walks the tags, 12 times denser than the slots, and
 * reads a slot only on a likely match, which keeps a lookup to about one
 * cache miss in a table of hundreds of megabytes.
 */
const STRIDE = 13;
const VOUT = 8;
const SCRIPT = 9;
const LO = 10;
const HI = 11;
const CODE = 12;
const TAG_BIT = 0x8000_0000;
/** Txids are copied a word at a time from an aligned view where the host reads words as `u32` does. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Bytes a CoinTable holding `n` coins occupies at most. */
export function coinTableBytes(n: number): number {
  return pow2AtLeast(Math.ceil(n / LOAD) + 1) * (STRIDE + 1) * 4;
}

/** Outpoint → (script id, value): the unspent coins, with linear probing and backward-shift deletion. */
export class CoinTable {
  /** A table that holds `n` coins without growing. */
  static forCoins(n: number): CoinTable {
    return new CoinTable(Math.ceil(n / LOAD) + 1);
  }

  private w: Uint32Array;
  private tags: Uint32Array;
  private mask: number;
  /** 32 less the bits of a slot number (`homeOf`). */
  private shift: number;
  count = 0;
  /** Filled by `spend`: the spent coin's script id and value words. */
  script = 0;
  lo = 0;
  hi = 0;
  code = 0;

  /** The txids buffer `add` last saw, and a word view of it when it is aligned (else null). */
  private lastTxids: Uint8Array | null = null;
  private txidWords: Uint32Array | null = null;

  constructor(capacity = 1024) {
    const cap = pow2AtLeast(capacity);
    this.w = new Uint32Array(cap * STRIDE);
    this.tags = new Uint32Array(cap);
    this.mask = cap - 1;
    this.shift = Math.clz32(cap) + 1;
  }

  /**
   * The slot tag of txid (first words `w0`, `w1`):vout: its `outpointHash`
   * less the lowest bit, under TAG_BIT. The hash's high bits are the home
   * slot (`homeOf`), as they are the coin file's page: the slots, read in
   * order, hold their coins in the order of the file's pages.
   */
  private static tagOf(w0: number, w1: number, vout: number): number {
    return ((outpointHash(OUTPOINT_SEED, w0, w1, vout) >>> 1) | TAG_BIT) >>> 0;
  }

  /** The home slot of tag `g`: the high bits of its hash. */
  private homeOf(g: number): number {
    return (g << 1) >>> this.shift;
  }

  private sameKey(o: number, t: Uint8Array, tp: number, vout: number): boolean {
    const w = this.w;
    if (w[o + VOUT] !== vout) return false;
    for (let k = 0; k < 8; k++) if (w[o + k] !== u32(t, tp + 4 * k)) return false;
    return true;
  }

  /** The slot holding txid `t[tp..tp+32)`:vout, or -1. */
  private find(t: Uint8Array, tp: number, vout: number): number {
    const tags = this.tags;
    const tag = CoinTable.tagOf(u32(t, tp), u32(t, tp + 4), vout);
    for (let i = this.homeOf(tag); ; i = (i + 1) & this.mask) {
      const g = tags[i]!;
      if (g === 0) return -1;
      if (g === tag && this.sameKey(i * STRIDE, t, tp, vout)) return i;
    }
  }

  /** Whether txid `t[tp..tp+32)`:vout is in the table. */
  has(t: Uint8Array, tp: number, vout: number): boolean {
    return this.find(t, tp, vout) >= 0;
  }

  /** A word view of `t` when its bytes sit at a word boundary (txids from the chain pass do), else null. */
  private wordsOf(t: Uint8Array): Uint32Array | null {
    if (t !== this.lastTxids) {
      this.lastTxids = t;
      this.txidWords = LITTLE_ENDIAN && t.byteOffset % 4 === 0 && t.byteLength % 4 === 0
        ? new Uint32Array(t.buffer, t.byteOffset, t.byteLength / 4)
        : null;
    }
    return this.txidWords;
  }

  /** Adds (or, for a repeated txid, overwrites) the coin txid:vout. `code`: height·2 + coinbase. */
  add(t: Uint8Array, tp: number, vout: number, script: number, lo: number, hi: number, code: number): void {
    if (this.count + 1 > (this.mask + 1) * LOAD) this.grow();
    const w = this.w;
    const tags = this.tags;
    const mask = this.mask;
    const words = (tp & 3) === 0 ? this.wordsOf(t) : null;
    const tag = words !== null ? CoinTable.tagOf(words[tp >>> 2]!, words[(tp >>> 2) + 1]!, vout) : CoinTable.tagOf(u32(t, tp), u32(t, tp + 4), vout);
    let o: number;
    // One probe run: it ends at the same coin, to overwrite, or at the empty slot to fill.
    for (let i = this.homeOf(tag); ; i = (i + 1) & mask) {
      const g = tags[i]!;
      o = i * STRIDE;
      if (g === 0) {
        tags[i] = tag;
        if (words !== null) {
          const q = tp >>> 2;
          for (let k = 0; k < 8; k++) w[o + k] = words[q + k]!;
        } else {
          for (let k = 0; k < 8; k++) w[o + k] = u32(t, tp + 4 * k);
        }
        w[o + VOUT] = vout;
        this.count++;
        break;
      }
      if (g === tag && this.sameKey(o, t, tp, vout)) break;
    }
    w[o + SCRIPT] = script + 1;
    w[o + LO] = lo;
    w[o + HI] = hi;
    w[o + CODE] = code;
  }

  /** Removes txid:vout; returns false when there is no such coin, else fills script/lo/hi. */
  spend(t: Uint8Array, tp: number, vout: number): boolean {
    const at = this.find(t, tp, vout);
    if (at < 0) return false;
    const w = this.w;
    const tags = this.tags;
    const o = at * STRIDE;
    this.script = w[o + SCRIPT]! - 1;
    this.lo = w[o + LO]!;
    this.hi = w[o + HI]!;
    this.code = w[o + CODE]!;
    this.count--;
    // Backward-shift deletion: pull later members of the probe run into the gap.
    const mask = this.mask;
    let gap = at;
    for (let i = (at + 1) & mask; ; i = (i + 1) & mask) {
      const g = tags[i]!;
      if (g === 0) break;
      const home = this.homeOf(g);
      // Move slot i into the gap unless its home lies cyclically in (gap, i].
      const stays = gap <= i ? home > gap && home <= i : home > gap || home <= i;
      if (stays) continue;
      tags[gap] = g;
      // By hand: 13 words copy faster than a call into copyWithin.
      const to = gap * STRIDE;
      const from = i * STRIDE;
      for (let k = 0; k < STRIDE; k++) w[to + k] = w[from + k]!;
      gap = i;
    }
    tags[gap] = 0;
    return true;
  }

  private grow(): void {
    const oldW = this.w;
    const oldTags = this.tags;
    const cap = (this.mask + 1) * 2;
    this.w = new Uint32Array(cap * STRIDE);
    this.tags = new Uint32Array(cap);
    this.mask = cap - 1;
    this.shift = Math.clz32(cap) + 1;
    for (let j = 0; j < oldTags.length; j++) {
      const g = oldTags[j]!;
      if (g === 0) continue;
      let i = this.homeOf(g);
      while (this.tags[i] !== 0) i = (i + 1) & this.mask;
      this.tags[i] = g;
      this.w.set(oldW.subarray(j * STRIDE, j * STRIDE + STRIDE), i * STRIDE);
    }
  }

  /** Slots in the table: `each` takes a range of them. */
  get slots(): number {
    return this.tags.length;
  }

  /** Calls `fn` for every coin in slots [from, to) with its outpoint (txid | u32be vout, one reused buffer). */
  each(fn: (outpoint: Buffer, script: number, lo: number, hi: number, code: number) => void, from = 0, to = this.tags.length): void {
    const op = Buffer.allocUnsafe(36);
    const w = this.w;
    for (let i = from; i < Math.min(to, this.tags.length); i++) {
      if (this.tags[i] === 0) continue;
      const o = i * STRIDE;
      for (let k = 0; k < 8; k++) op.writeUInt32LE(w[o + k]!, 4 * k);
      op.writeUInt32BE(w[o + VOUT]!, 32);
      fn(op, w[o + SCRIPT]! - 1, w[o + LO]!, w[o + HI]!, w[o + CODE]!);
    }
  }

  /** Writes the slots holding a coin into `into` (room for `count`), in slot order; returns how many. */
  occupied(into: Uint32Array): number {
    let n = 0;
    const tags = this.tags;
    for (let i = 0; i < tags.length; i++) if (tags[i] !== 0) into[n++] = i;
    return n;
  }

  /** The coin in `slot` (from `occupied`): its outpoint into `op` (txid | u32be vout), script/lo/hi/code filled. */
  readSlot(slot: number, op: Buffer): void {
    const w = this.w;
    const o = slot * STRIDE;
    for (let k = 0; k < 8; k++) op.writeUInt32LE(w[o + k]!, 4 * k);
    op.writeUInt32BE(w[o + VOUT]!, 32);
    this.script = w[o + SCRIPT]! - 1;
    this.lo = w[o + LO]!;
    this.hi = w[o + HI]!;
    this.code = w[o + CODE]!;
  }

  /** Empties the table, keeping its arrays: a spill refills it to about the same size. */
  clear(): void {
    this.tags.fill(0);
    this.count = 0;
  }

  get byteSize(): number {
    return this.w.byteLength + this.tags.byteLength;
  }

  /** What the table would take if sized for the coins it holds now: the budget counts this, not arrays kept after a spill. */
  get usedBytes(): number {
    return coinTableBytes(this.count);
  }
}
