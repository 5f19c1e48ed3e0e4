import type { Announcement, Attempt } from './carrier.js';
import type { NetworkParams } from './params.js';
import type { ContextReason, ReasonCode } from './reasons.js';

/** What the interpreter needs to know about a stake's current registration. */
export interface RegistrationView {
  /** Txid of the latest accepted announcement, internal byte order. */
  readonly tipTxid: Uint8Array;
  readonly timestamp: number;
  readonly expiryHeight: number;
  /** Expired or lapsed: terminal, whatever expiryHeight says. */
  readonly ended: boolean;
}

/**
 * The narrow window through which the interpreter sees the chain, in the
 * spirit of Core's signature checker: it answers only what the rules ask, so
 * the rules stay pure and the same code runs in the indexer, in recounts and
 * in the operator CLI's preflight.
 */
export interface InterpretContext {
  readonly height: number;
  /** The block header's time: the window is judged against it, never a clock. */
  readonly blockTime: number;
  readonly isCoinbase: boolean;
  /** Does some input of the transaction spend an output paying exactly `script`? */
  spendsScript(script: Uint8Array): boolean;
  /** Balance of `script` after the transaction's inputs and outputs are applied. */
  balanceAfter(script: Uint8Array): bigint;
  /** The script's current registration (live or ended), or null if it never had one. */
  registration(script: Uint8Array): RegistrationView | null;
}

export type Verdict =
  | { readonly accepted: true }
  | { readonly accepted: false; readonly reason: ContextReason };

const reject = (reason: ContextReason): Verdict => ({ accepted: false, reason });
const ACCEPTED: Verdict = { accepted: true };

/** A registration is live at h when it has not ended and h < expiryHeight. */
export function isLive(reg: RegistrationView, height: number): boolean {
  return !reg.ended && height < reg.expiryHeight;
}

/**
 * Whether a stake script's balance carries a registration: at least
 * minStake. The stake check of an announcement (INSUFFICIENT_STAKE, after
 * its transaction) and the lapse at the end of each block both ask this.
 */
export function hasStake(balance: bigint, params: NetworkParams): boolean {
  return balance >= params.minStake;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Applies the contextual rules of docs/spec.md §2.3 (steps 3–7) to one decoded
 * announcement, in the normative order; the first failure is the verdict.
 * Decoding (step 1) and the one-per-transaction rule (step 2) come before this,
 * see `judgeAttempts`.
 */
export function interpret(a: Announcement, ctx: InterpretContext, params: NetworkParams): Verdict {
  if (ctx.isCoinbase) return reject('COINBASE');
  if (a.timestamp > ctx.blockTime + params.futureTolerance) return reject('TIMESTAMP_IN_FUTURE');
  if (a.timestamp < ctx.blockTime - params.staleWindow) return reject('TIMESTAMP_STALE');
  if (!ctx.spendsScript(a.stakeScript)) return reject('NOT_OWNER');
  if (!hasStake(ctx.balanceAfter(a.stakeScript), params)) return reject('INSUFFICIENT_STAKE');
  const reg = ctx.registration(a.stakeScript);
  if (a.kind === 'newnode') {
    return reg !== null && isLive(reg, ctx.height) ? reject('ALREADY_REGISTERED') : ACCEPTED;
  }
  if (reg === null) return reject('UNKNOWN_NODE');
  if (!isLive(reg, ctx.height)) return reject('NOT_LIVE');
  if (!bytesEqual(reg.tipTxid, a.prevTxid)) return reject('NOT_TIP');
  if (a.timestamp <= reg.timestamp) return reject('TIMESTAMP_NOT_INCREASING');
  return ACCEPTED;
}

/** One announcement attempt of a transaction, after the per-transaction rule. */
export type JudgedAttempt =
  | { readonly vout: number; readonly announcement: Announcement; readonly reason: null }
  | { readonly vout: number; readonly announcement: Announcement | null; readonly reason: ReasonCode };

/**
 * Step 2 of §2.3: a flawed attempt keeps its decoding reason; when a
 * transaction holds several attempts, every well-formed one is rejected as
 * MULTIPLE_ANNOUNCEMENTS. A single well-formed attempt comes back with a null
 * reason, still to be interpreted.
 */
export function judgeAttempts(attempts: ReadonlyArray<{ vout: number; attempt: Attempt }>): JudgedAttempt[] {
  const several = attempts.length > 1;
  return attempts.map(({ vout, attempt }): JudgedAttempt => {
    if (!attempt.ok) return { vout, announcement: null, reason: attempt.reason };
    if (several) return { vout, announcement: attempt.announcement, reason: 'MULTIPLE_ANNOUNCEMENTS' };
    return { vout, announcement: attempt.announcement, reason: null };
  });
}
