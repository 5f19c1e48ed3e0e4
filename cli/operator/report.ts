import type { Transaction } from 'bitcoinjs-lib';
import type { Explanation, NodeInfo } from '../../indexer/read/queries.js';
import { scriptToAddress } from '../../script/address.js';
import type { Announcement } from '../../script/carrier.js';
import { hasStake } from '../../script/interpreter.js';
import type { NetworkParams } from '../../script/params.js';
import { REASON_TEXT, type ReasonCode } from '../../script/reasons.js';
import { coins } from '../format.js';

/*
 * What the operator commands print. Human output goes to stdout; warnings go
 * to stderr in capitals so they stand out in a terminal and in cron mail.
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

export function warn(message: string): void {
  process.stderr.write(`WARNING: ${message}\n`);
}

export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** An announcement as JSON: the stake as address and script, the previous txid in RPC hex. */
export function announcementJson(a: Announcement, params: NetworkParams): Record<string, unknown> {
  return {
    kind: a.kind,
    stake: scriptToAddress(a.stakeScript, params),
    stakeScript: Buffer.from(a.stakeScript).toString('hex'),
    timestamp: a.timestamp,
    ...(a.kind === 'renewal' ? { prevTxid: rpcHex(a.prevTxid) } : {}),
  };
}

export interface TxSummary {
  readonly tx: Transaction;
  readonly signed: boolean;
  readonly announcement: Announcement;
  readonly fee: bigint;
  readonly feeRate: number;
  readonly feeSource: string;
  /** Why this rate: the estimate, the default, the flag, or the node's floor above them. */
  readonly feeWhy: string;
  readonly sizeNote: string;
  readonly inputs: number;
  readonly balanceAfter: bigint | null;
  readonly preflight: string;
}

export function summaryJson(s: TxSummary, params: NetworkParams): Record<string, unknown> {
  return {
    txid: s.tx.getId(),
    signed: s.signed,
    vsize: s.tx.virtualSize(),
    fee: s.fee.toString(),
    feeRate: s.feeRate,
    feeSource: s.feeSource,
    feeWhy: s.feeWhy,
    inputs: s.inputs,
    balanceAfter: s.balanceAfter === null ? null : s.balanceAfter.toString(),
    preflight: s.preflight,
    announcement: announcementJson(s.announcement, params),
    hex: s.tx.toHex(),
  };
}

/** The transaction, what it announces and what it costs. */
export function summaryText(s: TxSummary, params: NetworkParams): string {
  const a = s.announcement;
  const stake = scriptToAddress(a.stakeScript, params) ?? Buffer.from(a.stakeScript).toString('hex');
  const vsize = s.tx.virtualSize();
  return [
    `announce   ${a.kind === 'newnode' ? 'OP_NEWNODE' : 'OP_RENEWAL'} for ${stake}, timestamp ${a.timestamp}${a.kind === 'renewal' ? `, previous ${rpcHex(a.prevTxid)}` : ''}`,
    `txid       ${s.tx.getId()}${s.signed ? '' : ' (unsigned: final once signed for segwit inputs, not for legacy ones)'}`,
    `size       ${vsize} vB${s.signed ? '' : ` unsigned; fee sized for ${s.sizeNote} inputs`}, ${s.inputs} input(s) of the stake`,
    `fee        ${coins(s.fee)} (${s.fee} base units, ${s.feeRate} sat/vB from ${s.feeSource}: ${s.feeWhy})`,
    `stake      ${s.balanceAfter === null ? '?' : coins(s.balanceAfter)} after this transaction (minimum ${coins(params.minStake)})`,
    `preflight  ${s.preflight}`,
    `hex        ${s.tx.toHex()}`,
  ].join('\n');
}

/** One line per outcome of a transaction's announcement attempts. */
export function outcomeText(txid: string, list: readonly Explanation[]): string {
  return list.map((o) => `${txid}:${o.vout} ${o.kind ?? 'flawed attempt'} at height ${o.height}: ${o.accepted ? 'accepted' : `rejected, ${o.reason} (${REASON_TEXT[o.reason as ReasonCode] ?? 'unknown reason'})`}`).join('\n');
}

/** How `status` judges a stake; also its exit status (see STATUS_EXIT). */
export type Health = 'ok' | 'warning' | 'not-live';

/** `status` exit codes, for cron and monitoring: 0 fine, 3 needs attention soon, 4 off the registry. */
export const STATUS_EXIT: Readonly<Record<Health, number>> = { ok: 0, warning: 3, 'not-live': 4 };

/** A stake within this share of minStake (in percent) is a warning: fees or a small spend make it lapse. */
export const LOW_BALANCE_PERCENT = 5n;

/** The default warning window: a tenth of the registration's lifetime. */
export function defaultWarnBlocks(params: NetworkParams): number {
  return Math.ceil(params.expiryBlocks / 10);
}

export interface Assessment {
  readonly health: Health;
  /** Active and expiring within the window: what `renew --all` renews. */
  readonly expiringSoon: boolean;
  readonly lowBalance: boolean;
  /** One line per problem, saying what to do. */
  readonly warnings: string[];
}

/**
 * The one rule for "is this node fine": `status` turns it into an exit code and
 * `renew --all` renews what it calls expiring soon. Not live: never
 * registered, expired or lapsed. A warning: active but expiring within
 * `warnBlocks`, or a stake balance within 5% of minStake.
 */
export function assess(info: NodeInfo, params: NetworkParams, warnBlocks: number, label: string): Assessment {
  const warnings: string[] = [];
  const r = info.registration;
  const balance = BigInt(info.balance);
  if (r === null) {
    warnings.push(`${label} has never been registered (balance ${coins(balance)} at height ${info.height}): announce it with "nodereg announce"`);
    return { health: 'not-live', expiringSoon: false, lowBalance: false, warnings };
  }
  const active = r.status === 'active';
  const expiringSoon = active && r.blocksUntilExpiry !== null && r.blocksUntilExpiry <= warnBlocks;
  if (!active) {
    warnings.push(`the registration of ${label} ${r.status} at height ${r.endedHeight}: the node is off the registry; announce it again with "nodereg announce"`);
  } else if (expiringSoon) {
    warnings.push(`the registration of ${label} expires in ${r.blocksUntilExpiry} block(s), at height ${r.expiryHeight}: renew it now with "nodereg renew --stake ${label}"`);
  }
  const lowBalance = balance < params.minStake + (params.minStake * LOW_BALANCE_PERCENT) / 100n;
  if (!hasStake(balance, params)) {
    warnings.push(`the stake balance ${coins(balance)} is below the minimum ${coins(params.minStake)}: send at least ${coins(params.minStake - balance)} to ${label}`);
  } else if (lowBalance) {
    warnings.push(`the stake balance ${coins(balance)} is within ${LOW_BALANCE_PERCENT}% of the minimum ${coins(params.minStake)}: fees will make the node lapse; top up ${label}`);
  }
  const health: Health = !active ? 'not-live' : expiringSoon || lowBalance ? 'warning' : 'ok';
  return { health, expiringSoon, lowBalance, warnings };
}

/** The registration as `status` prints it. */
export function registrationText(info: NodeInfo, params: NetworkParams, label: string): string {
  const r = info.registration!;
  const expiry = r.status === 'active'
    ? `height ${r.expiryHeight}, in ${r.blocksUntilExpiry} block(s)`
    : `height ${r.expiryHeight} (ended: ${r.status} at height ${r.endedHeight})`;
  return [
    `stake      ${label}`,
    `status     ${r.status}`,
    `age        ${r.age} block(s), first seen at height ${r.firstHeight}`,
    `renewals   ${r.renewals}`,
    `balance    ${coins(info.balance)} (minimum ${coins(params.minStake)})`,
    `expiry     ${expiry}`,
    `tip        ${r.tipTxid} at height ${r.tipHeight}`,
    `index      height ${info.height}`,
  ].join('\n');
}
