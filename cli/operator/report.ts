import type { Transaction } from 'bitcoinjs-lib';
import type { Explanation, NodeInfo } from '../../indexer/read/queries.js';
import { scriptToAddress } from '../../script/address.js';
import type { Announcement } from '../../script/carrier.js';
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

/** Warnings about a registration: ended, expiring soon, or a stake close to the minimum. */
export function statusWarnings(info: NodeInfo, params: NetworkParams, warnWithin: number, label: string): string[] {
  const out: string[] = [];
  const r = info.registration;
  if (r === null) return out;
  if (r.status !== 'active') {
    out.push(`the registration of ${label} ${r.status} at height ${r.endedHeight}: the node is off the registry; announce it again with "nodereg announce"`);
  } else if (r.blocksUntilExpiry !== null && r.blocksUntilExpiry <= warnWithin) {
    out.push(`the registration of ${label} expires in ${r.blocksUntilExpiry} block(s), at height ${r.expiryHeight}: renew it now with "nodereg renew --stake ${label}"`);
  }
  const balance = BigInt(info.balance);
  if (balance < params.minStake) {
    out.push(`the stake balance ${coins(balance)} is below the minimum ${coins(params.minStake)}: send at least ${coins(params.minStake - balance)} to ${label}`);
  } else if (balance < params.minStake + params.minStake / 100n) {
    out.push(`the stake balance ${coins(balance)} is within 1% of the minimum ${coins(params.minStake)}: fees will make the node lapse; top up ${label}`);
  }
  return out;
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
