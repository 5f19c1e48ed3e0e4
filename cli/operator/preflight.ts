import type { Transaction } from 'bitcoinjs-lib';
import { scriptToAddress } from '../../script/address.js';
import { detectAnnouncement, type Announcement } from '../../script/carrier.js';
import { interpret, judgeAttempts, type InterpretContext, type RegistrationView } from '../../script/interpreter.js';
import type { NetworkParams } from '../../script/params.js';
import { REASON_TEXT, type ReasonCode } from '../../script/reasons.js';
import { coins } from '../format.js';

/*
 * The preflight runs the indexer's own rules (judgeAttempts, then interpret)
 * on the transaction exactly as it will be mined, against the index's state at
 * its tip. Only what cannot be known yet is assumed: the block is the next one
 * (tip + 1) and its time is now.
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** What a transaction announces, decoded exactly as the indexer decodes it. */
export type Found =
  | { readonly kind: 'none' }
  | { readonly kind: 'refused'; readonly vout: number; readonly code: ReasonCode }
  | { readonly kind: 'announcement'; readonly vout: number; readonly announcement: Announcement };

/** Finds the transaction's announcement attempts and applies the decoding and one-per-transaction rules. */
export function findAnnouncement(tx: Transaction): Found {
  const attempts = [];
  for (let vout = 0; vout < tx.outs.length; vout++) {
    const attempt = detectAnnouncement(tx.outs[vout]!.script);
    if (attempt) attempts.push({ vout, attempt });
  }
  if (attempts.length === 0) return { kind: 'none' };
  const judged = judgeAttempts(attempts);
  const first = judged[0]!;
  if (first.reason !== null) return { kind: 'refused', vout: first.vout, code: first.reason };
  return { kind: 'announcement', vout: first.vout, announcement: first.announcement };
}

/** A stake's current registration as the index reports it, with what the messages need. */
export interface RegistrationState extends RegistrationView {
  readonly status: 'active' | 'expired' | 'lapsed';
  readonly endedHeight: number | null;
}

/** The index's view of the stake at its tip. */
export interface StakeState {
  readonly tipHeight: number;
  /** Sum of the stake's unspent outputs. */
  readonly balance: bigint;
  /** The stake's unspent outputs, "txid:vout" (RPC hex) → value. */
  readonly coins: ReadonlyMap<string, bigint>;
  readonly registration: RegistrationState | null;
}

export type Verdict =
  | { readonly ok: true; readonly balanceAfter: bigint; readonly height: number }
  | { readonly ok: false; readonly code: ReasonCode; readonly message: string };

const bytesEqual = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));

/**
 * Judges one announcement of `tx` as the indexer will when the transaction is
 * mined in the next block at time `now`. A refusal carries the reason code
 * and a message with the numbers behind it.
 */
export function preflight(tx: Transaction, a: Announcement, stake: StakeState, params: NetworkParams, now: number): Verdict {
  const height = stake.tipHeight + 1;
  const spent = tx.ins
    .map((i) => stake.coins.get(`${rpcHex(i.hash)}:${i.index}`))
    .filter((v): v is bigint => v !== undefined);
  const balanceAfter = stake.balance
    - spent.reduce((s, v) => s + v, 0n)
    + tx.outs.filter((o) => bytesEqual(o.script, a.stakeScript)).reduce((s, o) => s + o.value, 0n);
  const ctx: InterpretContext = {
    height,
    blockTime: now,
    isCoinbase: tx.isCoinbase(),
    spendsScript: (s) => bytesEqual(s, a.stakeScript) && spent.length > 0,
    balanceAfter: (s) => {
      if (!bytesEqual(s, a.stakeScript)) throw new Error('preflight knows the balance of the stake only');
      return balanceAfter;
    },
    registration: (s) => (bytesEqual(s, a.stakeScript) ? stake.registration : null),
  };
  const v = interpret(a, ctx, params);
  if (v.accepted) return { ok: true, balanceAfter, height };
  return { ok: false, code: v.reason, message: `${v.reason}: ${explain(v.reason, a, stake, params, now, balanceAfter, height)}` };
}

/** The message for a decoding refusal found by `findAnnouncement`. */
export function decodeRefusal(code: ReasonCode, vout: number): string {
  return `${code}: output ${vout}: ${REASON_TEXT[code]}`;
}

function explain(code: ReasonCode, a: Announcement, stake: StakeState, params: NetworkParams, now: number, balanceAfter: bigint, height: number): string {
  const label = scriptToAddress(a.stakeScript, params) ?? Buffer.from(a.stakeScript).toString('hex');
  const reg = stake.registration;
  switch (code) {
    case 'COINBASE':
      return 'an announcement in a coinbase transaction never counts';
    case 'TIMESTAMP_IN_FUTURE':
      return `timestamp ${a.timestamp} is ${a.timestamp - now} s after the expected block time ${now} (at most ${params.futureTolerance} s allowed): check the clock or --timestamp`;
    case 'TIMESTAMP_STALE':
      return `timestamp ${a.timestamp} is ${now - a.timestamp} s before the expected block time ${now} (at most ${params.staleWindow} s allowed): check the clock or --timestamp`;
    case 'NOT_OWNER':
      return `no input spends an unspent output of ${label}; the transaction must spend one of the stake's own coins`;
    case 'INSUFFICIENT_STAKE':
      return `balance after this transaction would be ${coins(balanceAfter)} < ${coins(params.minStake)}; send at least ${coins(params.minStake - balanceAfter)} more to ${label}`;
    case 'ALREADY_REGISTERED':
      return `${label} already has a live registration (expires at height ${reg!.expiryHeight}, in ${reg!.expiryHeight - stake.tipHeight} blocks): keep it alive with "nodereg renew"`;
    case 'UNKNOWN_NODE':
      return `${label} has never been registered: announce it with "nodereg announce"`;
    case 'NOT_LIVE':
      return reg!.status === 'active'
        ? `the registration of ${label} expires at height ${reg!.expiryHeight}, before the next block ${height}: announce it again with "nodereg announce"`
        : `the registration of ${label} ${reg!.status} at height ${reg!.endedHeight}: announce it again with "nodereg announce"`;
    case 'NOT_TIP':
      return `previous txid ${rpcHex((a as { prevTxid: Uint8Array }).prevTxid)} is not the registration's tip ${rpcHex(reg!.tipTxid)}`;
    case 'TIMESTAMP_NOT_INCREASING':
      return `timestamp ${a.timestamp} is not after the tip's timestamp ${reg!.timestamp}`;
    default:
      return REASON_TEXT[code];
  }
}
