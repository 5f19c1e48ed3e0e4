import { UsageError } from '../common.js';

/* The --fee-rate check, apart from node.ts so that checking flags loads no RPC client. */

/** Fee rate bounds (sat/vB). An announcement needs no priority, so anything above the cap is a typo. */
export const MAX_FEE_RATE = 1000;

/** Validates a --fee-rate value. */
export function checkFeeRate(rate: number): void {
  if (!Number.isFinite(rate) || rate <= 0) throw new UsageError(`--fee-rate must be a positive number of sat/vB, got ${rate}`);
  if (rate > MAX_FEE_RATE) {
    throw new UsageError(`--fee-rate ${rate} sat/vB is absurd (the limit is ${MAX_FEE_RATE} sat/vB); an announcement needs no priority`);
  }
}
