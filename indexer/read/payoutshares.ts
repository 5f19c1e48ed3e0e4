import { createHash } from 'node:crypto';
import type { PayoutRow } from './payouttypes.js';

/*
 * The arithmetic of docs/spec.md §2.10 once the weights are known: floor
 * shares, dust rounds, the remainder, and the hash of the table. Amounts are
 * BigInts at the edges; inside, a table whose every product stays below 2^53
 * is shared in Numbers, which give the same integers without a BigInt per row
 * (at 100 000 rows the BigInts alone cost more than the whole scan).
 */

/** What sharing needs of a recipient. */
export interface Weighted {
  weight: number;
}

/** A kept recipient and its amount in base units (decimal). */
export interface Share<R extends Weighted> {
  recipient: R;
  amount: string;
}

/**
 * ⌊amount · w / W⌋ for each weight w of `kept`, W their sum. With
 * amount = q·W + r, that is q·w + ⌊r·w / W⌋: when amount and W·(max w + 1)
 * are at most 2^53 − 1 every term is an exact Number, and the float quotient
 * r·w / W is off by at most one, which the two comparisons correct.
 */
function floorShares(kept: readonly Weighted[], amount: bigint): number[] | bigint[] {
  let total = 0;
  let max = 0;
  for (const k of kept) {
    total += k.weight;
    if (k.weight > max) max = k.weight;
  }
  if (amount <= BigInt(Number.MAX_SAFE_INTEGER) && total * (max + 1) <= Number.MAX_SAFE_INTEGER) {
    const q = Number(amount / BigInt(total));
    const r = Number(amount % BigInt(total));
    return kept.map(({ weight: w }) => {
      const x = r * w;
      let f = Math.floor(x / total);
      if (f * total > x) f--;
      else if ((f + 1) * total <= x) f++;
      return q * w + f;
    });
  }
  let big = 0n;
  for (const k of kept) big += BigInt(k.weight);
  return kept.map((k) => (amount * BigInt(k.weight)) / big);
}

/**
 * Shares `amount` over `recipients` (already in FIRST_SEEN order) by §2.10:
 * floor shares by weight, dust dropped and the rest shared again until no
 * share is below `minPayout`, then the remainder one base unit each to the
 * first recipients. Returns the kept recipients with their amounts.
 */
export function shareOut<R extends Weighted>(recipients: readonly R[], amount: bigint, minPayout: bigint): Array<Share<R>> {
  let kept = recipients;
  let shares: number[] | bigint[] = [];
  while (kept.length > 0) {
    shares = floorShares(kept, amount);
    const keep = (_: R, i: number): boolean => shares[i]! >= minPayout;
    if (kept.every(keep)) break;
    const next = kept.filter(keep);
    kept = next;
    shares = [];
  }
  if (typeof shares[0] === 'number') {
    const ns = shares as number[];
    let remainder = Number(amount);
    for (const s of ns) remainder -= s;
    return kept.map((recipient, i) => ({ recipient, amount: String(ns[i]! + (i < remainder ? 1 : 0)) }));
  }
  const bs = shares as bigint[];
  let remainder = amount;
  for (const s of bs) remainder -= s;
  return kept.map((recipient, i) => ({ recipient, amount: (bs[i]! + (BigInt(i) < remainder ? 1n : 0n)).toString() }));
}

/**
 * SHA256 of the minified table of §2.10: `[{"stakeScript":…,"weight":…,"amount":…},…]`,
 * those members in that order, no address. Hex and decimal digits need no
 * JSON escaping, so the text is written out directly, and hashed a thousand
 * rows at a time rather than as one string of megabytes.
 */
export function payoutsHash(rows: ReadonlyArray<Pick<PayoutRow, 'stakeScript' | 'weight' | 'amount'>>): string {
  const hash = createHash('sha256').update('[');
  let part = '';
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i]!;
    part += `${i === 0 ? '' : ','}{"stakeScript":"${r.stakeScript}","weight":${r.weight},"amount":"${r.amount}"}`;
    if (i % 1000 === 999) {
      hash.update(part, 'latin1');
      part = '';
    }
  }
  return hash.update(part + ']', 'latin1').digest('hex');
}
