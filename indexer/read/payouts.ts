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
 * Sums the weights of the registrations live in from..to by stake script,
 * one lifetime at a time, whichever store the lifetimes come from.
 */
class RecipientTally {
  private readonly byScript = new Map<string, Recipient>();

  constructor(private readonly from: number, private readonly to: number, private readonly weight: PayoutWeight, private readonly period: number) {}

  add(firstHeight: number, firstIndex: number, endedHeight: number, script: string): void {
    // Live from the end of its first block until the block it ended in (§2.4): that block's end removes it.
    const s = Math.max(this.from, firstHeight);
    const e = endedHeight === OPEN ? this.to : Math.min(this.to, endedHeight - 1);
    if (s > e) return;
    const w = this.weight === 'uptime' ? e - s + 1 : ageWeight(firstHeight, s, e, this.period);
    const seen = this.byScript.get(script);
    if (seen === undefined) {
      this.byScript.set(script, { stakeScript: script, weight: w, firstHeight, firstIndex });
      return;
    }
    seen.weight += w;
    if (firstHeight < seen.firstHeight || (firstHeight === seen.firstHeight && firstIndex < seen.firstIndex)) {
      seen.firstHeight = firstHeight;
      seen.firstIndex = firstIndex;
    }
  }

  /** The recipients in FIRST_SEEN order of their earliest registration live in the window. */
  recipients(): Recipient[] {
    return [...this.byScript.values()].sort((a, b) => a.firstHeight - b.firstHeight || a.firstIndex - b.firstIndex);
  }
}

/**
 * Every stake script live at one or more heights of from..to, with its
 * weight, in FIRST_SEEN order of its earliest registration live in the
 * window. One range scan of the lifetime rows: only registrations that ended
 * after `from` (or have not ended) are read, whatever the chain's history.
 */
export async function payoutRecipients(db: ReadDB, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Promise<Recipient[]> {
  const tally = new RecipientTally(from, to, weight, params.expiryBlocks);
  for await (const rows of rowBatches(db, K.lifetimesEndingAfter(from))) {
    for (const [k, script] of rows) {
      const { endedHeight, firstHeight, firstIndex } = parse.lifetime(k);
      tally.add(firstHeight, firstIndex, endedHeight, script.toString('hex'));
    }
  }
  return tally.recipients();
}

/** `payoutRecipients` from the lifetimes of the registrations that ended after `from` (or have not ended). */
export function recipientsOf(lifetimes: Iterable<LifetimeRow>, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Recipient[] {
  const tally = new RecipientTally(from, to, weight, params.expiryBlocks);
  for (const r of lifetimes) tally.add(r.firstHeight, r.firstIndex, r.endedHeight, r.script);
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
