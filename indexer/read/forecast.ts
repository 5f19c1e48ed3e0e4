import type { NetworkParams } from '../../script/params.js';
import { K } from '../store/layout.js';
import type { ReadDB } from './snapshot.js';
import type { Registration } from '../types.js';

/*
 * Renewal forecasts (docs/spec.md §2.11): when a registration runs out, the
 * last block a renewal can go into, and how far its stake is above minStake.
 * Answers at a height h are about the chain as of h.
 */

/** How many of the latest blocks date the forecasts. */
export const INTERVAL_WINDOW = 144;

export interface Forecast {
  /** expiryHeight − h while active; null once ended. */
  blocksUntilExpiry: number | null;
  /** Estimated time (unix seconds) of block expiryHeight, whose end expires the registration; null once ended or with no interval to go by. */
  expiresAt: number | null;
  /** expiryHeight − 1: the last block whose renewal keeps the registration live without a gap; null once ended. */
  renewBy: number | null;
  /** balance − minStake in base units, decimal (negative below the stake). */
  stakeMargin: string;
}

/** What dating a forecast needs about block h: its time and the median block interval up to it. */
export interface Clock {
  height: number;
  time: number | null;
  /** Median of the last INTERVAL_WINDOW block intervals (seconds), or null before block 1 or in an index without block times. */
  interval: number | null;
}

/**
 * The clock at block `height`: the intervals between consecutive header times
 * of blocks height − 144 … height (fewer near genesis), sorted, and the lower
 * middle one taken (an even count takes the smaller of the two middle ones).
 * A median, so one block with a wild timestamp moves it little.
 */
export async function clockAt(db: ReadDB, height: number): Promise<Clock> {
  const times: number[] = [];
  for await (const [, v] of db.iterator(K.blockTimes(Math.max(0, height - INTERVAL_WINDOW), height))) times.push(v.readUInt32LE(0));
  return clockOf(height, times);
}

/** The clock at `height` from the header times of the blocks of its window, oldest first. */
export function clockOf(height: number, times: readonly number[]): Clock {
  const last = times.length > 0 ? times[times.length - 1]! : null;
  const gaps = times.slice(1).map((t, i) => t - times[i]!).sort((a, b) => a - b);
  return { height, time: last, interval: gaps.length > 0 ? gaps[Math.floor((gaps.length - 1) / 2)]! : null };
}

/** The forecast fields of one registration at the clock's height. */
export function forecast(r: Registration, balance: bigint, clock: Clock, params: NetworkParams): Forecast {
  const active = r.status === 'active';
  const left = r.expiryHeight - clock.height;
  return {
    blocksUntilExpiry: active ? left : null,
    expiresAt: active && clock.time !== null && clock.interval !== null ? clock.time + left * clock.interval : null,
    renewBy: active ? r.expiryHeight - 1 : null,
    stakeMargin: (balance - params.minStake).toString(),
  };
}
