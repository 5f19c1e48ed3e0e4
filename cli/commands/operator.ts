import type { Argv, CommandModule } from 'yargs';
import type { NodeInfo } from '../../indexer/queries.js';
import { AddressError, parseStake } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { hexArg, printJson, UsageError, UserError, withJson, withNetwork, type NetworkArgs } from '../common.js';
import { coins } from '../format.js';
import { ApiSource } from '../operator/api-source.js';
import { execute, prepare, type AnnounceRequest, type Session } from '../operator/announce.js';
import { judgeForBroadcast, readTransactionArg } from '../operator/broadcast.js';
import { renewAll, type BulkLine } from '../operator/bulk.js';
import { loadKey, looksLikeWif } from '../operator/keys.js';
import { checkChain, checkFeeRate, resolveFeeRate, rpcFrom, sendTransaction, type RpcArgs } from '../operator/node.js';
import { outcomeText, registrationText, statusWarnings, summaryJson, warn } from '../operator/report.js';
import { asOperatorError, DbSource, type IndexSource } from '../operator/sources.js';
import { waitForOutcome } from '../operator/wait.js';

/*
 * The operator commands: announce, renew (one stake or --all), broadcast and
 * status. Flags are parsed and checked here; the work is in cli/operator/.
 */

interface SourceArgs extends NetworkArgs {
  db?: string;
  api?: string;
  json: boolean;
}

interface OperatorArgs extends SourceArgs, RpcArgs {
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

/** Refuses what must never be on a command line, without echoing it. */
function refuseSecrets(a: Record<string, unknown>, positionals: number): true {
  if (a.wif !== undefined) {
    throw new Error('a private key is never accepted as a command-line argument (it stays in shell history and shows in ps): put the WIF in a file with mode 600 and pass --key-file, or set NODEREG_WIF');
  }
  const extra = (a._ as unknown[]).slice(positionals);
  if (extra.length > 0) {
    const secret = extra.some((x) => looksLikeWif(String(x)));
    throw new Error(secret
      ? 'unexpected argument that looks like a private key: keys are never accepted on the command line; use --key-file <file> (mode 600) or NODEREG_WIF'
      : `unexpected argument(s): ${extra.join(' ')}`);
  }
  return true;
}

function sourceOptions<T>(y: Argv<T>, required: boolean): Argv<T> {
  // Unknown flags stay errors, but stray positionals reach refuseSecrets, which
  // does not echo them: yargs' own message would print a pasted key.
  return withJson(withNetwork(y.strict(false).strictOptions(true)))
    .option('db', { type: 'string', describe: 'index directory (when no daemon holds it; this process then follows the node itself)' })
    .option('api', { type: 'string', describe: 'read API of a running daemon, e.g. http://127.0.0.1:8080' })
    .conflicts('db', 'api')
    .check((a) => {
      if (required && a.db === undefined && a.api === undefined) throw new Error('give --db <dir> (no daemon running) or --api <url> (a running daemon)');
      return true;
    }) as unknown as Argv<T>;
}

function rpcOptions<T>(y: Argv<T>, required: boolean): Argv<T> {
  return y
    .option('rpc', { type: 'string', demandOption: required, describe: 'node RPC URL, e.g. http://127.0.0.1:8332' })
    .option('rpc-user', { type: 'string', describe: 'RPC user (with --rpc-password or NODEREG_RPC_PASSWORD)' })
    .option('rpc-password', { type: 'string', describe: 'RPC password; prefer NODEREG_RPC_PASSWORD or --rpc-cookie' })
    .option('rpc-cookie', { type: 'string', describe: 'bitcoind .cookie file' })
    .option('rpc-timeout', { type: 'number', default: 30, describe: 'seconds before an RPC call is abandoned' })
    .conflicts('rpc-cookie', 'rpc-password') as unknown as Argv<T>;
}

function announceOptions(y: Argv, renew: boolean): Argv {
  let b = rpcOptions(sourceOptions(y, true), true)
    .option('stake', { type: 'string', describe: 'staking address (or its output script in hex)' })
    .option('key-file', { type: 'string', describe: 'file holding the stake\'s WIF key, mode 600 (or set NODEREG_WIF)' })
    .option('wif', { type: 'string', hidden: true })
    .option('fee-rate', { type: 'number', describe: `sat/vB (default: the node's estimatesmartfee, else 2)` })
    .option('timestamp', { type: 'number', describe: 'unix seconds to announce (default: now)' })
    .option('dry-run', { type: 'boolean', default: false, describe: 'build, check and print the transaction; send nothing' })
    .option('psbt-out', { type: 'string', describe: 'write an unsigned PSBT (base64) for another signer instead of signing' })
    .option('wait', { type: 'boolean', default: false, describe: 'wait until the index has the transaction confirmed, then print the registration' })
    .option('wait-timeout', { type: 'number', describe: 'with --wait: give up after this many seconds (default: no limit)' })
    .option('force', { type: 'boolean', default: false, describe: 'send even when the preflight says the indexer will reject it (the fee is wasted)' })
    .option('redeem-script', { type: 'string', describe: 'P2SH stake: its redeem script in hex (for the PSBT and an exact fee)' })
    .option('witness-script', { type: 'string', describe: 'P2WSH stake: its witness script in hex (for the PSBT and an exact fee)' })
    .option('input-vsize', { type: 'number', describe: 'P2SH/P2WSH stake without scripts: vbytes per signed input' });
  if (renew) {
    b = b
      .option('prev', { type: 'string', describe: 'txid (RPC hex) of the registration\'s tip (default: read from the index)' })
      .option('all', { type: 'boolean', describe: 'renew every registration whose key is in --key-dir' })
      .option('key-dir', { type: 'string', describe: 'with --all: directory of key files, one WIF per file, each mode 600' })
      .option('within', { type: 'number', describe: 'with --all: renew those expiring within this many blocks' })
      .check((a) => {
        if (a.all) {
          const clash = ['stake', 'prev', 'key-file', 'psbt-out'].filter((k) => a[k] !== undefined);
          if (clash.length > 0) throw new Error(`--all renews from --key-dir; it does not go with ${clash.map((k) => `--${k}`).join(', ')}`);
        }
        if (a.all && (a['key-dir'] === undefined || a.within === undefined)) throw new Error('--all needs --key-dir <dir> and --within <blocks>');
        if (!a.all && (a['key-dir'] !== undefined || a.within !== undefined)) throw new Error('--key-dir and --within go with --all');
        if (a.within !== undefined && (!Number.isInteger(a.within) || (a.within as number) < 0)) throw new Error('--within must be a whole number of blocks ≥ 0');
        return true;
      });
  }
  return b.check((a) => {
    refuseSecrets(a, 1);
    if (!a.all && a.stake === undefined) throw new Error('give --stake <address>');
    if (a['fee-rate'] !== undefined) checkFeeRate(a['fee-rate'] as number);
    if (a.timestamp !== undefined && (!Number.isSafeInteger(a.timestamp) || (a.timestamp as number) <= 0)) throw new Error('--timestamp must be a positive whole number of unix seconds');
    if (a['input-vsize'] !== undefined && (!Number.isInteger(a['input-vsize']) || (a['input-vsize'] as number) < 41)) throw new Error('--input-vsize must be a whole number of vbytes ≥ 41');
    if (a['wait-timeout'] !== undefined && !((a['wait-timeout'] as number) > 0)) throw new Error('--wait-timeout must be a positive number of seconds');
    if (a.wait && (a['dry-run'] || a['psbt-out'] !== undefined)) throw new Error('--wait needs a transaction that is sent: drop --dry-run/--psbt-out');
    return true;
  });
}

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
    const rpc = rpcFrom(a);
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

async function runAnnounce(a: OperatorArgs, kind: 'newnode' | 'renewal'): Promise<void> {
  await withSession(a, async (s) => {
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

async function runRenewAll(a: OperatorArgs): Promise<void> {
  const failed = await withSession(a, async (s) => {
    const feeRate = await resolveFeeRate(s.rpc, a.feeRate);
    await s.source.catchUp(s.rpc);
    const show = (l: BulkLine): void => {
      if (!a.json) process.stdout.write(`${l.result.padEnd(15)} ${l.subject}: ${l.detail}\n`);
    };
    const lines = await renewAll(s, { feeRate, force: a.force, dryRun: a.dryRun, timestamp: a.timestamp }, {
      keyDir: a.keyDir!, within: a.within!, wait: a.wait, waitOptions: waitOptions(a),
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

interface BroadcastArgs extends OperatorArgs { tx: string }

async function runBroadcast(a: BroadcastArgs): Promise<void> {
  const tx = readTransactionArg(a.tx);
  const txid = tx.getId();
  const source = a.db !== undefined || a.api !== undefined ? await openSource(a) : null;
  try {
    const rpc = rpcFrom(a);
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

interface StatusArgs extends OperatorArgs { warnWithin?: number }

async function runStatus(a: StatusArgs): Promise<void> {
  const source = await openSource(a);
  try {
    const params = source.params;
    const stake = stakeArg(a.stake!, params);
    if (a.rpc !== undefined) {
      const rpc = rpcFrom(a);
      await checkChain(rpc, params);
      await source.catchUp(rpc);
    }
    const info = await source.info(stake);
    if (info.registration === null) {
      throw new UserError(`${a.stake} has never been registered (balance ${coins(info.balance)} at height ${info.height}): announce it with "nodereg announce"`);
    }
    const warnWithin = a.warnWithin ?? Math.ceil(params.expiryBlocks / 10);
    const warnings = statusWarnings(info, params, warnWithin, a.stake!);
    if (a.json) printJson({ ...info, warnings });
    else process.stdout.write(registrationText(info, params, a.stake!) + '\n');
    for (const w of warnings) warn(w);
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await source.close();
  }
}

export const announceCommand: CommandModule = {
  command: 'announce',
  describe: 'announce a staked node (OP_NEWNODE), refusing what the indexer would reject',
  builder: (y) => announceOptions(y, false)
    .example('$0 announce --stake bcrt1q... --key-file stake.wif --rpc http://127.0.0.1:18443 --rpc-cookie ~/.bitcoin/regtest/.cookie --db ./index --wait', 'announce and wait for the registration')
    .example('$0 announce --stake bc1q... --psbt-out announce.psbt --api http://127.0.0.1:8080 --rpc http://127.0.0.1:8332', 'write a PSBT for another signer'),
  handler: (argv) => runAnnounce(argv as unknown as OperatorArgs, 'newnode'),
};

export const renewCommand: CommandModule = {
  command: 'renew',
  describe: 'keep a registration alive (OP_RENEWAL), or renew every due one with --all',
  builder: (y) => announceOptions(y, true)
    .example('$0 renew --stake bcrt1q... --key-file stake.wif --rpc http://127.0.0.1:18443 --db ./index', 'renew one node')
    .example('$0 renew --all --key-dir ~/.nodereg/keys --within 500 --api http://127.0.0.1:8080 --rpc http://127.0.0.1:8332', 'from cron: renew every node that expires soon'),
  handler: (argv) => {
    const a = argv as unknown as OperatorArgs;
    return a.all ? runRenewAll(a) : runAnnounce(a, 'renewal');
  },
};

export const broadcastCommand: CommandModule = {
  command: 'broadcast <tx>',
  describe: 'finalize and send a signed PSBT, or send a raw transaction (announcements are checked first)',
  builder: (y) => rpcOptions(sourceOptions(y, false), true)
    .positional('tx', { type: 'string', demandOption: true, describe: 'a PSBT file (base64, hex or binary), or a raw transaction in hex' })
    .option('wif', { type: 'string', hidden: true })
    .option('wait', { type: 'boolean', default: false, describe: 'wait until the index has the announcement confirmed' })
    .option('wait-timeout', { type: 'number', describe: 'with --wait: give up after this many seconds' })
    .option('force', { type: 'boolean', default: false, describe: 'send even when the preflight says the indexer will reject it' })
    .check((a) => refuseSecrets(a, 1))
    .example('$0 broadcast signed.psbt --rpc http://127.0.0.1:18443 --db ./index --wait', 'send a PSBT signed elsewhere'),
  handler: (argv) => runBroadcast(argv as unknown as BroadcastArgs),
};

export const statusCommand: CommandModule = {
  command: 'status',
  describe: 'a staked node\'s status, age, renewals, balance and expiry, with warnings',
  builder: (y) => rpcOptions(sourceOptions(y, true), false)
    .option('stake', { type: 'string', demandOption: true, describe: 'staking address (or its output script in hex)' })
    .option('warn-within', { type: 'number', describe: 'warn when expiry is this many blocks away or fewer (default: 10% of expiryBlocks)' })
    .check((a) => {
      refuseSecrets(a, 1);
      if (a['warn-within'] !== undefined && (!Number.isInteger(a['warn-within']) || (a['warn-within'] as number) < 0)) throw new Error('--warn-within must be a whole number of blocks ≥ 0');
      return true;
    })
    .example('$0 status --stake bcrt1q... --db ./index', 'how is my node doing?'),
  handler: (argv) => runStatus(argv as unknown as StatusArgs),
};

