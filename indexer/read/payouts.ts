import { createHash } from 'node:crypto';
import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { K, OPEN, parse } from '../store/layout.js';
import { QueryError, requireTip, rowBatches } from './queries.js';
import type { ReadDB } from './snapshot.js';
import { DEFAULT_MIN_PAYOUT, parseAmount, PAYOUT_WEIGHTS, type PayoutRequest, type PayoutRow, type PayoutTable, type PayoutWeight } from './payouttypes.js';

/*
 * The payout table of docs/spec.md §2.10: who was live in a window of
 * heights, how much each earned, and a hash of the table that two payers can
 * compare. One sequential scan of the event rows answers any window, however
 * long: each registration is live over one run of heights, from its first
 * block until the block it ended in, so a recipient's weight is a sum over
 * runs, never a loop over heights.
 */

export { DEFAULT_MIN_PAYOUT, parseAmount, PAYOUT_WEIGHTS, type PayoutRequest, type PayoutRow, type PayoutTable, type PayoutWeight };

/** A recipient before sharing: its weight and where it stands in FIRST_SEEN order. */
export interface Recipient {
  stakeScript: Buffer;
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

/**
 * Every stake script live at one or more heights of from..to, with its
 * weight, in FIRST_SEEN order of its earliest registration live in the
 * window. One range scan of the lifetime rows: only registrations that ended
 * after `from` (or have not ended) are read, whatever the chain's history.
 */
export async function payoutRecipients(db: ReadDB, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Promise<Recipient[]> {
  async function* lifetimes(): AsyncGenerator<LifetimeRow[]> {
    for await (const rows of rowBatches(db, K.lifetimesEndingAfter(from))) yield rows.map(([k, script]) => ({ ...parse.lifetime(k), script }));
  }
  return recipientsOf(lifetimes(), params, from, to, weight);
}

/** One registration's lifetime: its id, its script and the block it ended in (OPEN while live). */
export interface LifetimeRow {
  firstHeight: number;
  firstIndex: number;
  endedHeight: number;
  script: Buffer;
}

/** `payoutRecipients` from the lifetimes (in batches) of the registrations that ended after `from` (or have not ended). */
export async function recipientsOf(lifetimes: AsyncIterable<LifetimeRow[]> | Iterable<LifetimeRow[]>, params: NetworkParams, from: number, to: number, weight: PayoutWeight): Promise<Recipient[]> {
  const byScript = new Map<string, Recipient>();
  for await (const batch of lifetimes) for (const r of batch) {
    // Live from the end of its first block until the block it ended in (§2.4): that block's end removes it.
    const s = Math.max(from, r.firstHeight);
    const e = r.endedHeight === OPEN ? to : Math.min(to, r.endedHeight - 1);
    if (s > e) continue;
    const w = weight === 'uptime' ? e - s + 1 : ageWeight(r.firstHeight, s, e, params.expiryBlocks);
    const key = r.script.toString('latin1');
    const seen = byScript.get(key);
    if (seen === undefined) {
      byScript.set(key, { stakeScript: r.script, weight: w, firstHeight: r.firstHeight, firstIndex: r.firstIndex });
      continue;
    }
    seen.weight += w;
    if (r.firstHeight < seen.firstHeight || (r.firstHeight === seen.firstHeight && r.firstIndex < seen.firstIndex)) {
      seen.firstHeight = r.firstHeight;
      seen.firstIndex = r.firstIndex;
    }
  }
  return [...byScript.values()].sort((a, b) => a.firstHeight - b.firstHeight || a.firstIndex - b.firstIndex);
}

/**
 * Shares `amount` over `recipients` (already in FIRST_SEEN order) by §2.10:
 * floor shares by weight, dust dropped and the rest shared again until no
 * share is below `minPayout`, then the remainder one base unit each to the
 * first recipients. Returns the kept recipients with their amounts.
 */
export function shareOut(recipients: readonly Recipient[], amount: bigint, minPayout: bigint): Array<{ recipient: Recipient; amount: bigint }> {
  let kept = recipients.map((recipient) => ({ recipient, w: BigInt(recipient.weight), share: 0n }));
  for (;;) {
    let total = 0n;
    for (const k of kept) total += k.w;
    let dust = false;
    for (const k of kept) {
      k.share = (amount * k.w) / total;
      if (k.share < minPayout) dust = true;
    }
    if (!dust) break;
    kept = kept.filter((k) => k.share >= minPayout);
  }
  let remainder = amount;
  for (const k of kept) remainder -= k.share;
  return kept.map((k) => {
    const extra = remainder > 0n ? 1n : 0n;
    remainder -= extra;
    return { recipient: k.recipient, amount: k.share + extra };
  });
}

/**
 * SHA256 of the minified table of §2.10: `[{"stakeScript":…,"weight":…,"amount":…},…]`,
 * those members in that order, no address. Hashed a thousand rows at a time
 * rather than as one string of megabytes.
 */
export function payoutsHash(rows: ReadonlyArray<Pick<PayoutRow, 'stakeScript' | 'weight' | 'amount'>>): string {
  const hash = createHash('sha256').update('[');
  for (let i = 0; i < rows.length; i += 1000) {
    const part = rows.slice(i, i + 1000).map((r) => JSON.stringify({ stakeScript: r.stakeScript, weight: r.weight, amount: r.amount })).join(',');
    hash.update(i === 0 ? part : `,${part}`, 'utf8');
  }
  return hash.update(']').digest('hex');
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
  const payouts = shareOut(recipients, q.amount, q.minPayout ?? DEFAULT_MIN_PAYOUT).map(({ recipient: r, amount }) => ({
    stakeScript: r.stakeScript.toString('hex'), address: scriptToAddress(r.stakeScript, params), weight: r.weight, amount: amount.toString(),
  }));
  return { from: q.from, to: q.to, amount: q.amount.toString(), weight, payouts, payoutsHash: payoutsHash(payouts) };
}
