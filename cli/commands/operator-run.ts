import type { NodeInfo } from '../../indexer/read/queries.js';
import { AddressError, parseStake } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { hexArg, networkFrom, printJson, UsageError, UserError, type NetworkArgs } from '../common.js';
import { coins } from '../format.js';
import { ApiSource } from '../operator/api-source.js';
import type { AnnounceRequest, Session } from '../operator/announce.js';
import type { BulkLine } from '../operator/bulk.js';
import { checkChain, resolveFeeRate, rpcFrom, sendTransaction, type RpcArgs } from '../operator/node.js';
import { assess, defaultWarnBlocks, outcomeText, registrationText, STATUS_EXIT, summaryJson, warn } from '../operator/report.js';
import { asOperatorError, DbSource, type IndexSource } from '../operator/sources.js';
import { waitForOutcome } from '../operator/wait.js';
import { looksLikeWif } from '../operator/wif.js';

/*
 * What the operator commands do once their flags have been checked (in
 * operator.ts). Loaded only when one of them runs; the signing stack
 * (bitcoinjs-lib's PSBTs, ecpair, secp256k1) is imported by the commands that
 * build or send a transaction, not by `status`.
 */

interface SourceArgs extends NetworkArgs {
  db?: string;
  api?: string;
  json: boolean;
}

export interface OperatorArgs extends SourceArgs, RpcArgs {
  stake?: string;
  keyFile?: string;
  feeRate?: number;
  timestamp?: number;
  dryRun: boolean;
  psbtOut?: string;
  wait: boolean;
  waitTimeout?: number;
  force: boolean;
  redeemScript?: string;
  witnessScript?: string;
  inputVsize?: number;
  prev?: string;
  all?: boolean;
  keyDir?: string;
  within?: number;
  _: Array<string | number>;
}

const now = (): number => Math.floor(Date.now() / 1000);

async function openSource(a: SourceArgs): Promise<IndexSource> {
  try {
    return a.db !== undefined ? await DbSource.open(a.db, a) : await ApiSource.open(a.api!, a);
  } catch (err) {
    throw asOperatorError(err);
  }
}

/** Opens the index and the node, runs `fn`, and closes both; expected failures become one-line errors. */
async function withSession<T>(a: OperatorArgs, fn: (s: Session) => Promise<T>): Promise<T> {
  const source = await openSource(a);
  try {
    const rpc = rpcFrom(a, source.params);
    const s: Session = { source, rpc, params: source.params, json: a.json, now };
    await checkChain(rpc, s.params);
    return await fn(s);
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await source.close();
  }
}

function stakeArg(value: string, params: NetworkParams): Buffer {
  if (looksLikeWif(value)) throw new UsageError('--stake looks like a private key, not an address: keys are never accepted on the command line; use --key-file <file> (mode 600)');
  try {
    return parseStake(value, params);
  } catch (err) {
    if (err instanceof AddressError) throw new UsageError(`--stake: ${err.message}`);
    throw err;
  }
}

function scriptArg(value: string | undefined, flag: string): Buffer | undefined {
  return value === undefined ? undefined : hexArg(value, flag);
}

function txidArg(value: string, flag: string): Buffer {
  const b = hexArg(value, flag);
  if (b.length !== 32) throw new UsageError(`${flag} must be a txid of 64 hex digits`);
  return b.reverse();
}

const waitOptions = (a: OperatorArgs): { timeoutSec?: number } => (a.waitTimeout ? { timeoutSec: a.waitTimeout } : {});

async function printRegistration(s: Session, stake: Buffer, label: string): Promise<NodeInfo> {
  const info = await s.source.info(stake);
  if (!s.json && info.registration) process.stdout.write(`\n${registrationText(info, s.params, label)}\n`);
  return info;
}

export async function runAnnounce(a: OperatorArgs, kind: 'newnode' | 'renewal'): Promise<void> {
  await withSession(a, async (s) => {
    // The signing stack (bitcoinjs-lib, secp256k1) loads once the index and the node are open and agree on the chain.
    const [{ execute, prepare }, { loadKey }] = await Promise.all([import('../operator/announce.js'), import('../operator/keys.js')]);
    const stake = stakeArg(a.stake!, s.params);
    const key = loadKey(a.keyFile, s.params);
    if (!key && !a.psbtOut && !a.dryRun) {
      throw new UsageError('no key to sign with: give --key-file <file> or NODEREG_WIF, or write a PSBT with --psbt-out <file>');
    }
    const feeRate = await resolveFeeRate(s.rpc, a.feeRate);
    await s.source.catchUp(s.rpc);
    const req: AnnounceRequest = {
      kind, stake, label: a.stake!, key, feeRate, force: a.force, dryRun: a.dryRun, psbtOut: a.psbtOut,
      timestamp: a.timestamp, prev: a.prev === undefined ? undefined : txidArg(a.prev, '--prev'),
      redeemScript: scriptArg(a.redeemScript, '--redeem-script'), witnessScript: scriptArg(a.witnessScript, '--witness-script'),
      inputVsize: a.inputVsize,
    };
    const out = await execute(s, req, await prepare(s, req));
    const result: Record<string, unknown> = { ...summaryJson(out.summary, s.params), sent: out.sent, psbtFile: out.psbtFile };
    if (a.wait && out.sent) {
      if (!a.json) process.stderr.write(`waiting for ${out.txid} to confirm…\n`);
      const outcome = await waitForOutcome(s.source, s.rpc, out.txid, waitOptions(a));
      if (!a.json) process.stdout.write(`\n${outcomeText(out.txid, outcome)}\n`);
      result.outcome = outcome;
      result.registration = (await printRegistration(s, stake, a.stake!)).registration;
      const rejected = outcome.find((o) => !o.accepted);
      if (rejected) {
        if (a.json) printJson(result);
        throw new UserError(`the indexer rejected the announcement: ${rejected.reason}`);
      }
    }
    if (a.json) printJson(result);
  });
}

export async function runRenewAll(a: OperatorArgs): Promise<void> {
  const { renewAll } = await import('../operator/bulk.js');
  const failed = await withSession(a, async (s) => {
    const feeRate = await resolveFeeRate(s.rpc, a.feeRate);
    await s.source.catchUp(s.rpc);
    const show = (l: BulkLine): void => {
      if (!a.json) process.stdout.write(`${l.result.padEnd(15)} ${l.subject}: ${l.detail}\n`);
    };
    const lines = await renewAll(s, { feeRate, force: a.force, dryRun: a.dryRun, timestamp: a.timestamp }, {
      keyDir: a.keyDir!, within: a.within ?? defaultWarnBlocks(s.params), wait: a.wait, waitOptions: waitOptions(a),
    }, show);
    const count = (r: BulkLine['result']): number => lines.filter((l) => l.result === r).length;
    const failures = count('failed');
    if (a.json) printJson({ results: lines });
    else {
      const dry = count('would-renew') > 0 ? `, ${count('would-renew')} would be renewed (dry run)` : '';
      process.stdout.write(`\n${count('renewed')} renewed${dry}, ${count('not-due')} not due, ${count('ended')} ended, ${failures} failed\n`);
    }
    for (const l of lines) if (l.result === 'ended') warn(`${l.subject}: ${l.detail}`);
    return failures;
  });
  if (failed > 0) throw new UserError(`${failed} renewal(s) failed (see above)`);
}

export interface BroadcastArgs extends OperatorArgs { tx: string }

export async function runBroadcast(a: BroadcastArgs): Promise<void> {
  const { judgeForBroadcast, readTransactionArg } = await import('../operator/broadcast.js');
  const tx = readTransactionArg(a.tx);
  const txid = tx.getId();
  const source = a.db !== undefined || a.api !== undefined ? await openSource(a) : null;
  try {
    const rpc = rpcFrom(a, source?.params ?? networkFrom(a));
    let judged = null;
    if (source) {
      await checkChain(rpc, source.params);
      await source.catchUp(rpc);
    }
    if (source || !a.force) judged = await judgeForBroadcast(tx, source, now());
    else warn('--force without --db/--api: any announcement in this transaction is sent unchecked');
    if (a.wait && (!source || !judged)) {
      throw new UsageError('--wait follows announcements in the index: it needs --db or --api and a transaction that announces');
    }
    if (judged && !judged.verdict.ok) {
      if (!a.force) throw new UserError(judged.verdict.message);
      warn(`--force: the indexer will reject this announcement and the fee is wasted: ${judged.verdict.message}`);
    }
    await sendTransaction(rpc, tx.toHex(), txid);
    if (!a.json) process.stdout.write(`sent ${txid} (${tx.virtualSize()} vB) to the node's mempool\n`);
    const result: Record<string, unknown> = { txid, vsize: tx.virtualSize(), sent: true, hex: tx.toHex() };
    if (a.wait && source && judged) {
      if (!a.json) process.stderr.write(`waiting for ${txid} to confirm…\n`);
      const outcome = await waitForOutcome(source, rpc, txid, waitOptions(a));
      result.outcome = outcome;
      if (!a.json) process.stdout.write(`\n${outcomeText(txid, outcome)}\n`);
      // A carrier that does not decode names no stake, so there is no registration to show.
      const info = judged.stake.length > 0 ? await source.info(judged.stake) : null;
      result.registration = info?.registration ?? null;
      if (!a.json && info?.registration) {
        process.stdout.write(`\n${registrationText(info, source.params, info.registration.address ?? info.stakeScript)}\n`);
      }
      const rejected = outcome.find((o) => !o.accepted);
      if (rejected) {
        if (a.json) printJson(result);
        throw new UserError(`the indexer rejected the announcement: ${rejected.reason}`);
      }
    }
    if (a.json) printJson(result);
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await source?.close();
  }
}

export interface StatusArgs extends OperatorArgs { warnBlocks?: number }

/** `status`: prints the registration and its warnings, and exits with STATUS_EXIT of its health. */
export async function runStatus(a: StatusArgs): Promise<void> {
  const source = await openSource(a);
  try {
    const params = source.params;
    const stake = stakeArg(a.stake!, params);
    if (a.rpc !== undefined) {
      const rpc = rpcFrom(a, params);
      await checkChain(rpc, params);
      await source.catchUp(rpc);
    }
    const info = await source.info(stake);
    const verdict = assess(info, params, a.warnBlocks ?? defaultWarnBlocks(params), a.stake!);
    if (a.json) printJson({ ...info, health: verdict.health, warnings: verdict.warnings });
    else if (info.registration === null) process.stdout.write(`stake      ${a.stake}\nstatus     never registered\nbalance    ${coins(info.balance)} (minimum ${coins(params.minStake)})\nindex      height ${info.height}\n`);
    else process.stdout.write(registrationText(info, params, a.stake!) + '\n');
    for (const w of verdict.warnings) warn(w);
    process.exitCode = STATUS_EXIT[verdict.health];
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await source.close();
  }
}
