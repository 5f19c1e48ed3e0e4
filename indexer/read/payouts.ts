import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { K, OPEN, parse } from '../store/layout.js';
import { QueryError, requireTip, rowBatches } from './queries.js';
import type { ReadDB } from './snapshot.js';
import { payoutsHash, shareOut } from './payoutshares.js';
import { DEFAULT_MIN_PAYOUT, parseAmount, PAYOUT_WEIGHTS, type PayoutRequest, type PayoutRow, type PayoutTable, type PayoutWeight } from './payouttypes.js';

/*
 * The payout table of docs/spec.md §2.10: who was live in a window of
 * heights, how much each earned, and a hash of the table that two payers can
 * compare. One sequential scan of the event rows answers any window, however
 * long: each registration is live over one run of heights, from its first
 * block until the block it ended in, so a recipient's weight is a sum over
 * runs, never a loop over heights.
 */

export { payoutsHash, shareOut };
export { DEFAULT_MIN_PAYOUT, parseAmount, PAYOUT_WEIGHTS, type PayoutRequest, type PayoutRow, type PayoutTable, type PayoutWeight };

/**
 * A recipient before sharing: its stake script (hex), its weight and where it
 * stands in FIRST_SEEN order. The script stays hex from the scan to the table:
 * it is the map key, the table's `stakeScript` and the hashed text at once, so
 * a table of 100 000 rows keeps no Buffer per row alive.
 */
export interface Recipient {
  stakeScript: string;
  weight: number;
  firstHeight: number;
  firstIndex: number;
}

/** ⌊log2(x)⌋ + 1 for x ≥ 1: the number of binary digits of x. */
function bitLength(x: number): number {
  return 32 - Math.clz32(x);
}

/**
 * The age weight of one registration live over heights s..e: the sum over
 * them of 1 + ⌊log2(1 + a)⌋ with a = ⌊(h − first) / period⌋. `a` is constant
 * over each expiry period, so this steps a period at a time.
 */
function ageWeight(first: number, s: number, e: number, period: number): number {
  let total = 0;
  for (let a = Math.floor((s - first) / period); first + a * period <= e; a++) {
    const lo = Math.max(s, first + a * period);
    const hi = Math.min(e, first + (a + 1) * period - 1);
    total += (hi - lo + 1) * bitLength(1 + a);
  }
  return total;
}

/** One registration's lifetime: its id, its stake script (hex) and the block it ended in (OPEN while live). */
export interface LifetimeRow {
  firstHeight: number;
  firstIndex: number;
  endedHeight: number;
  script: string;
}

/**
 * Stake scripts by their bytes, each with its running weight and earliest
 * registration: an open-addressing hash table over one byte arena, so that a
 * scan of 100 000 lifetimes makes no string, Buffer or object per row (a Map
 * keyed by hex text cost more than reading the rows).
 */
class ScriptTable {
  private arena = Buffer.allocUnsafe(1 << 18);
  private used = 0;
  private start = new Int32Array(1 << 13);
  private length = new Int32Array(1 << 13);
  private hash = new Int32Array(1 << 13);
  weight = new Float64Array(1 << 13);
  firstHeight = new Float64Array(1 << 13);
  firstIndex = new Float64Array(1 << 13);
  count = 0;
  /** Entry number + 1 per slot, 0 when free; a power of two at least twice `count`. */
  private slots = new Int32Array(1 << 14);

  /** The entry of `script`, added with zero weight if new. */
  entry(script: Uint8Array): number {
    const n = script.length;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ script[i]!, 0x01000193);
    const mask = this.slots.length - 1;
    for (let at = h & mask; ; at = (at + 1) & mask) {
      const e = this.slots[at]! - 1;
      if (e < 0) {
        const added = this.add(script, h);
        this.slots[at] = added + 1;
        if (this.count * 2 > this.slots.length) this.rehash();
        return added;
      }
      if (this.hash[e] === (h | 0) && this.length[e] === n && this.same(e, script)) return e;
    }
  }

  /** The script of entry `e` as hex. */
  hex(e: number): string {
    return this.arena.toString('hex', this.start[e]!, this.start[e]! + this.length[e]!);
  }

  private same(e: number, script: Uint8Array): boolean {
    const a = this.arena;
    const s = this.start[e]!;
    for (let i = 0; i < script.length; i++) if (a[s + i] !== script[i]) return false;
    return true;
  }

  private add(script: Uint8Array, hash: number): number {
    const e = this.count++;
    if (e === this.start.length) {
      const grow = <T extends Int32Array | Float64Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.start = grow(this.start);
      this.length = grow(this.length);
      this.hash = grow(this.hash);
      this.weight = grow(this.weight);
      this.firstHeight = grow(this.firstHeight);
      this.firstIndex = grow(this.firstIndex);
    }
    if (this.used + script.length > this.arena.length) {
      const b = Buffer.allocUnsafe(Math.max(this.arena.length * 2, this.used + script.length));
      this.arena.copy(b, 0, 0, this.used);
      this.arena = b;
    }
    this.arena.set(script, this.used);
    this.start[e] = this.used;
    this.length[e] = script.length;
    this.hash[e] = hash;
    this.used += script.length;
    this.weight[e] = 0;
    this.firstHeight[e] = Infinity;
    this.firstIndex[e] = Infinity;
    return e;
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let at = this.hash[e]! & mask;
      while (slots[at] !== 0) at = (at + 1) & mask;
      slots[at] = e + 1;
    }
    this.slots = slots;
  }
}

/**
 * The entries 0..count-1 in (firstHeight, firstIndex) order: counted into one
 * bucket per height, then each bucket (the few registrations of one block)
 * put in order by position. Linear in the entries and the span of heights,
 * where a comparison sort of 100 000 entries cost more than the scan.
 */
function firstSeenOrder(firstHeight: Float64Array, firstIndex: Float64Array, count: number): Int32Array {
  const order = new Int32Array(count);
  if (count === 0) return order;
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < count; i++) {
    lo = Math.min(lo, firstHeight[i]!);
    hi = Math.max(hi, firstHeight[i]!);
  }
  const at = new Int32Array(hi - lo + 2);
  for (let i = 0; i < count; i++) at[firstHeight[i]! - lo + 1]!++;
  for (let b = 1; b < at.length; b++) at[b]! += at[b - 1]!;
  for (let i = 0; i < count; i++) order[at[firstHeight[i]! - lo]!++] = i;
  // Each bucket now ends where the next begins: order it by position (an insertion sort; buckets are small).
  for (let b = 0, begin = 0; b < at.length - 1; begin = at[b]!, b++) {
    for (let k = begin + 1; k < at[b]!; k++) {
      const e = order[k]!;
      let j = k - 1;
      while (j >= begin && firstIndex[order[j]!]! > firstIndex[e]!) {
        order[j + 1] = order[j]!;
        j--;
      }
      order[j + 1] = e;
    }
  }
  return order;
}

/**
 * Sums the weights of the registrations live in from..to by stake script,
 * one lifetime at a time, whichever store the lifetimes come from.
 */
class RecipientTally {
  private readonly table = new ScriptTable();

  constructor(private readonly from: number, private readonly to: number, private readonly weight: PayoutWeight, private readonly period: number) {}

  add(firstHeight: number, firstIndex: number, endedHeight: number, script: Uint8Array): void {
    // Live from the end of its first block until the block it ended in (§2.4): that block's end removes it.
    const s = Math.max(this.from, firstHeight);
    const e = endedHeight === OPEN ? this.to : Math.min(this.to, endedHeight - 1);
    if (s > e) return;
    const w = this.weight === 'uptime' ? e - s + 1 : ageWeight(firstHeight, s, e, this.period);
    const t = this.table;
    const i = t.entry(script);
    t.weight[i]! += w;
    if (firstHeight < t.firstHeight[i]! || (firstHeight === t.firstHeight[i]! && firstIndex < t.firstIndex[i]!)) {
      t.firstHeight[i] = firstHeight;
      t.firstIndex[i] = firstIndex;
    }
  }

  /** The recipients in FIRST_SEEN order of their earliest registration live in the window. */
  recipients(): Recipient[] {
    const t = this.table;
    const order = firstSeenOrder(t.firstHeight, t.firstIndex, t.count);
    const out: Recipient[] = new Array(t.count);
    for (let k = 0; k < t.count; k++) {
      const i = order[k]!;
      out[k] = { stakeScript: t.hex(i), weight: t.weight[i]!, firstHeight: t.firstHeight[i]!, firstIndex: t.firstIndex[i]! };
    }
    return out;
  }
}

/** Lifetime rows a scan asks LevelDB for at once: fewer round trips through the event loop than the default thousand. */
const LIFETIME_BATCH = 8192;

/**
 * Every stake script live at one or more heights of from..to, with its
 * weight, in FIRST_SEEN order of its earliest registration live in the
 * window. One range scan of the lifetime rows: only registrations that ended
 * after `from` (or have not ended) are read, whatever the chain's history.
 */
export async function payoutRecipients(db: ReadDB, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Promise<Recipient[]> {
  const tally = new RecipientTally(from, to, weight, params.expiryBlocks);
  for await (const rows of rowBatches(db, K.lifetimesEndingAfter(from), LIFETIME_BATCH)) {
    for (const [k, script] of rows) {
      const { endedHeight, firstHeight, firstIndex } = parse.lifetime(k);
      tally.add(firstHeight, firstIndex, endedHeight, script);
    }
  }
  return tally.recipients();
}

/** `payoutRecipients` from the lifetimes of the registrations that ended after `from` (or have not ended). */
export function recipientsOf(lifetimes: Iterable<LifetimeRow>, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Recipient[] {
  const tally = new RecipientTally(from, to, weight, params.expiryBlocks);
  for (const r of lifetimes) tally.add(r.firstHeight, r.firstIndex, r.endedHeight, Buffer.from(r.script, 'hex'));
  return tally.recipients();
}

/** Checks a request against the index: heights in order and at most the tip, a positive amount. */
async function checkRequest(db: ReadDB, q: PayoutRequest): Promise<void> {
  checkPayoutRequest((await requireTip(db)).height, q);
}

/** `checkRequest` against a tip height. */
export function checkPayoutRequest(tipHeight: number, q: PayoutRequest): void {
  for (const [name, h] of [['from', q.from], ['to', q.to]] as const) {
    if (!Number.isInteger(h) || h < 0) throw new QueryError(`${name} must be a whole number ≥ 0, got ${h}`);
    if (h > tipHeight) throw new QueryError(`${name} ${h} is above the index tip ${tipHeight}`);
  }
  if (q.from > q.to) throw new QueryError(`from (${q.from}) must not be above to (${q.to})`);
  if (q.amount <= 0n) throw new QueryError(`amount must be a whole number of base units above 0, got ${q.amount}`);
  if (q.minPayout !== undefined && q.minPayout < 0n) throw new QueryError(`minPayout must not be negative, got ${q.minPayout}`);
}

/** The payout table of docs/spec.md §2.10 for heights from..to. */
export async function payoutTable(db: ReadDB, params: NetworkParams, q: PayoutRequest): Promise<PayoutTable> {
  await checkRequest(db, q);
  return tableOf(await payoutRecipients(db, params, q.from, q.to, q.weight ?? 'uptime'), params, q);
}

/** The table of a checked request from its recipients. */
export function tableOf(recipients: readonly Recipient[], params: NetworkParams, q: PayoutRequest): PayoutTable {
  const weight = q.weight ?? 'uptime';
  const payouts = shareOut(recipients, q.amount, q.minPayout ?? DEFAULT_MIN_PAYOUT).map(({ recipient: r, amount }): PayoutRow => ({
    stakeScript: r.stakeScript, address: scriptToAddress(Buffer.from(r.stakeScript, 'hex'), params), weight: r.weight, amount,
  }));
  return { from: q.from, to: q.to, amount: q.amount.toString(), weight, payouts, payoutsHash: payoutsHash(payouts) };
}
