import { writeFileSync } from 'node:fs';
import type { Psbt, Transaction } from 'bitcoinjs-lib';
import type { RpcClient } from '../../indexer/node/rpc.js';
import { EncodeError, encodeCarrier, type Announcement } from '../../script/carrier.js';
import type { NetworkParams } from '../../script/params.js';
import { UsageError, UserError } from '../common.js';
import { buildPsbt, planSpend, selectCoins, signPsbt, unsignedTx, type Selection, type StakeSpend } from './build.js';
import { toNetwork, type StakeKey } from './keys.js';
import { fetchPrevTxs, sendTransaction, type FeeRate } from './node.js';
import { findAnnouncement, preflight, type Verdict } from './preflight.js';
import { summaryText, warn, type TxSummary } from './report.js';
import { stakeState, type IndexSource, type StakeSnapshot } from './sources.js';

/** What one operator command works with: the index, the node, the chain and the clock. */
export interface Session {
  readonly source: IndexSource;
  readonly rpc: RpcClient;
  readonly params: NetworkParams;
  readonly json: boolean;
  /** Unix seconds: the expected block time of the next block. */
  readonly now: () => number;
}

export interface AnnounceRequest {
  readonly kind: 'newnode' | 'renewal';
  readonly stake: Buffer;
  /** The stake as the operator wrote it (its address), for messages. */
  readonly label: string;
  readonly key: StakeKey | null;
  /** Renewal: the previous tip txid in internal byte order; default the registration's tip. */
  readonly prev?: Buffer;
  readonly timestamp?: number;
  readonly feeRate: FeeRate;
  readonly redeemScript?: Buffer;
  readonly witnessScript?: Buffer;
  readonly inputVsize?: number;
  readonly dryRun: boolean;
  readonly psbtOut?: string;
  readonly force: boolean;
}

export interface Prepared {
  readonly announcement: Announcement;
  readonly psbt: Psbt;
  readonly unsigned: Transaction;
  readonly spend: StakeSpend;
  readonly selection: Selection;
  readonly verdict: Verdict;
  readonly snapshot: StakeSnapshot;
}

export interface Outcome {
  readonly summary: TxSummary;
  readonly txid: string;
  readonly sent: boolean;
  readonly psbtFile: string | null;
}

/** The announcement the request asks for, with the timestamp and previous txid filled in. */
function announcementFor(s: Session, r: AnnounceRequest, snap: StakeSnapshot): Announcement {
  const now = s.now();
  if (r.kind === 'newnode') return { kind: 'newnode', stakeScript: r.stake, timestamp: r.timestamp ?? now };
  const reg = snap.info.registration;
  let prevTxid = r.prev;
  if (prevTxid === undefined) {
    if (reg === null) throw new UserError(`UNKNOWN_NODE: ${r.label} has never been registered: announce it with "nodereg announce"`);
    prevTxid = Buffer.from(reg.tipTxid, 'hex').reverse();
  }
  // Renewal timestamps must increase; a clock that has not moved past the tip's gets one second more.
  const timestamp = r.timestamp ?? (reg ? Math.max(now, reg.timestamp + 1) : now);
  return { kind: 'renewal', stakeScript: r.stake, timestamp, prevTxid };
}

/**
 * Builds the unsigned transaction for an announcement and judges it with the
 * indexer's own rules, from the index's state at its tip. Nothing is signed
 * or sent here.
 */
export async function prepare(s: Session, r: AnnounceRequest): Promise<Prepared> {
  const spend = planSpend(r.stake, { key: r.key, redeemScript: r.redeemScript, witnessScript: r.witnessScript, inputVsize: r.inputVsize, label: r.label });
  const snapshot = await s.source.stake(r.stake);
  const announcement = announcementFor(s, r, snapshot);
  let carrier: Buffer;
  try {
    carrier = encodeCarrier(announcement);
  } catch (err) {
    if (err instanceof EncodeError) throw new UsageError(err.message);
    throw err;
  }
  const nextHeight = snapshot.tip.height + 1;
  const selection = selectCoins(snapshot.coins, spend, carrier, r.feeRate.rate, nextHeight, r.label);
  const prevTxs = spend.needsPrevTx ? await fetchPrevTxs(s.rpc, selection.inputs) : new Map<string, Buffer>();
  // nLockTime at the tip, as wallets do against fee sniping.
  const psbt = buildPsbt(spend, selection, carrier, prevTxs, snapshot.tip.height, toNetwork(s.params));
  const unsigned = unsignedTx(psbt);
  const found = findAnnouncement(unsigned);
  if (found.kind !== 'announcement') throw new Error(`the built transaction does not decode as one announcement (${found.kind})`);
  const verdict = preflight(unsigned, found.announcement, stakeState(snapshot), s.params, s.now());
  return { announcement, psbt, unsigned, spend, selection, verdict, snapshot };
}

function preflightLine(v: Verdict, forced: boolean): string {
  if (v.ok) return `accepted in block ${v.height} (judged at the index tip with the indexer's rules)`;
  return `${forced ? 'REFUSED, sent anyway with --force' : 'REFUSED'}: ${v.message}`;
}

/**
 * Acts on a prepared announcement: refuses a doomed one (unless --force),
 * writes the PSBT, or signs, prints and (unless --dry-run) sends it.
 */
export async function execute(s: Session, r: AnnounceRequest, p: Prepared): Promise<Outcome> {
  if (!p.verdict.ok) {
    if (!r.force) throw new UserError(p.verdict.message);
    warn(`--force: the indexer will reject this announcement and the fee is wasted: ${p.verdict.message}`);
  }
  let tx = p.unsigned;
  let signed = false;
  if (!r.psbtOut && p.spend.key) {
    tx = signPsbt(p.psbt, p.spend.key);
    signed = true;
  } else if (!r.psbtOut && !r.dryRun) {
    throw new UsageError('no key to sign with: give --key-file <file> or NODEREG_WIF, or write a PSBT with --psbt-out <file>');
  }
  const summary: TxSummary = {
    tx, signed, announcement: p.announcement, fee: p.selection.fee, feeRate: r.feeRate.rate, feeSource: r.feeRate.source, feeWhy: r.feeRate.why,
    sizeNote: p.spend.sizeNote, inputs: p.selection.inputs.length,
    balanceAfter: p.verdict.ok ? p.verdict.balanceAfter : null, preflight: preflightLine(p.verdict, r.force),
  };
  const txid = tx.getId();
  if (!s.json) process.stdout.write(summaryText(summary, s.params) + '\n');
  if (r.psbtOut) {
    try {
      writeFileSync(r.psbtOut, p.psbt.toBase64() + '\n');
    } catch (err) {
      throw new UserError(`cannot write the PSBT to ${r.psbtOut} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (!s.json) process.stdout.write(`psbt       written to ${r.psbtOut} (unsigned): sign it, then run "nodereg broadcast ${r.psbtOut} --rpc …"\n`);
    return { summary, txid, sent: false, psbtFile: r.psbtOut };
  }
  if (r.dryRun) {
    if (!s.json) process.stdout.write('dry run    nothing sent\n');
    return { summary, txid, sent: false, psbtFile: null };
  }
  await sendTransaction(s.rpc, tx.toHex(), txid);
  if (!s.json) process.stdout.write(`sent       ${txid} is in the node's mempool\n`);
  return { summary, txid, sent: true, psbtFile: null };
}

