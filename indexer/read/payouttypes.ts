/*
 * The shapes of a payout request and its table (docs/spec.md §2.10), apart
 * from the scan that computes them: the CLI's option parsing and the HTTP
 * schema need these without loading the index readers.
 */

export type PayoutWeight = 'uptime' | 'age';
export const PAYOUT_WEIGHTS: readonly PayoutWeight[] = ['uptime', 'age'];
export const DEFAULT_MIN_PAYOUT = 546n;

export interface PayoutRequest {
  from: number;
  to: number;
  /** The total to share, in base units (> 0). */
  amount: bigint;
  weight?: PayoutWeight;
  /** Shares below this are dust (§2.10); default 546. */
  minPayout?: bigint;
}

export interface PayoutRow {
  stakeScript: string;
  address: string | null;
  weight: number;
  /** Base units, decimal. */
  amount: string;
}

export interface PayoutTable {
  from: number;
  to: number;
  amount: string;
  weight: PayoutWeight;
  payouts: PayoutRow[];
  payoutsHash: string;
}

/** Reads a decimal amount of base units; null unless it is a whole number ≥ 0 (no sign, no exponent). */
export function parseAmount(text: string): bigint | null {
  return /^\d{1,40}$/.test(text) ? BigInt(text) : null;
}
