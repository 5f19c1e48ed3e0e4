import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { withJson, withNetwork } from '../common.js';
import { withDatadir } from '../datadir.js';
import { checkFeeRate } from '../operator/feerate.js';
import { looksLikeWif } from '../operator/wif.js';
import type { BroadcastArgs, OperatorArgs, StatusArgs } from './operator-run.js';

/*
 * The operator commands: announce, renew (one stake or --all), broadcast and
 * status. Flags are parsed and checked here; the work is in operator-run.ts
 * and cli/operator/.
 */

// Imported when a handler runs: keeps the signing stack off other commands' start-up.
const run = (): Promise<typeof import('./operator-run.js')> => import('./operator-run.js');

/** Refuses what must never be on a command line, without echoing it. */
export function refuseSecrets(a: Record<string, unknown>, positionals: number): true {
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

export function rpcOptions<T>(y: Argv<T>, byDefault: boolean): Argv<T> {
  return withDatadir(y)
    .option('rpc', { type: 'string', describe: byDefault ? 'node RPC URL (default: http://127.0.0.1 on the chain\'s standard port)' : 'node RPC URL: catch up with this node first' })
    .option('rpc-user', { type: 'string', describe: 'RPC user (with --rpc-password or NODEREG_RPC_PASSWORD)' })
    .option('rpc-password', { type: 'string', describe: 'RPC password; prefer NODEREG_RPC_PASSWORD or --rpc-cookie' })
    .option('rpc-cookie', { type: 'string', describe: 'bitcoind .cookie file (default: the --datadir one, without --rpc-user)' })
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
      .option('within', { type: 'number', describe: 'with --all: renew those expiring within this many blocks (default: as status --warn-blocks, 10% of expiryBlocks)' })
      .check((a) => {
        if (a.all) {
          const clash = ['stake', 'prev', 'key-file', 'psbt-out'].filter((k) => a[k] !== undefined);
          if (clash.length > 0) throw new Error(`--all renews from --key-dir; it does not go with ${clash.map((k) => `--${k}`).join(', ')}`);
        }
        if (a.all && a['key-dir'] === undefined) throw new Error('--all needs --key-dir <dir>');
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

export const announceCommand: CommandModule = {
  ...LISTED.announce,
  builder: (y) => announceOptions(y, false)
    .example('$0 announce --stake bcrt1q... --key-file stake.wif --rpc http://127.0.0.1:18443 --rpc-cookie ~/.bitcoin/regtest/.cookie --db ./index --wait', 'announce and wait for the registration')
    .example('$0 announce --stake bc1q... --psbt-out announce.psbt --api http://127.0.0.1:8080 --rpc http://127.0.0.1:8332', 'write a PSBT for another signer'),
  handler: async (argv) => (await run()).runAnnounce(argv as unknown as OperatorArgs, 'newnode'),
};

export const renewCommand: CommandModule = {
  ...LISTED.renew,
  builder: (y) => announceOptions(y, true)
    .example('$0 renew --stake bcrt1q... --key-file stake.wif --rpc http://127.0.0.1:18443 --db ./index', 'renew one node')
    .example('$0 renew --all --key-dir ~/.nodereg/keys --within 500 --api http://127.0.0.1:8080 --rpc http://127.0.0.1:8332', 'from cron: renew every node that expires soon'),
  handler: async (argv) => {
    const a = argv as unknown as OperatorArgs;
    const m = await run();
    return a.all ? m.runRenewAll(a) : m.runAnnounce(a, 'renewal');
  },
};

export const broadcastCommand: CommandModule = {
  ...LISTED.broadcast,
  builder: (y) => rpcOptions(sourceOptions(y, false), true)
    .positional('tx', { type: 'string', demandOption: true, describe: 'a PSBT file (base64, hex or binary), or a raw transaction in hex' })
    .option('wif', { type: 'string', hidden: true })
    .option('wait', { type: 'boolean', default: false, describe: 'wait until the index has the announcement confirmed' })
    .option('wait-timeout', { type: 'number', describe: 'with --wait: give up after this many seconds' })
    .option('force', { type: 'boolean', default: false, describe: 'send even when the preflight says the indexer will reject it' })
    .check((a) => refuseSecrets(a, 1))
    .example('$0 broadcast signed.psbt --rpc http://127.0.0.1:18443 --db ./index --wait', 'send a PSBT signed elsewhere'),
  handler: async (argv) => (await run()).runBroadcast(argv as unknown as BroadcastArgs),
};

export const statusCommand: CommandModule = {
  ...LISTED.status,
  builder: (y) => rpcOptions(sourceOptions(y, true), false)
    .option('stake', { type: 'string', demandOption: true, describe: 'staking address (or its output script in hex)' })
    .option('warn-blocks', { type: 'number', alias: 'warn-within', describe: 'warn when expiry is this many blocks away or fewer (default: 10% of expiryBlocks)' })
    .check((a) => {
      refuseSecrets(a, 1);
      if (a['warn-blocks'] !== undefined && (!Number.isInteger(a['warn-blocks']) || (a['warn-blocks'] as number) < 0)) throw new Error('--warn-blocks must be a whole number of blocks ≥ 0');
      return true;
    })
    .example('$0 status --stake bcrt1q... --db ./index', 'how is my node doing?')
    .epilog([
      'Exit status:',
      '  0  active, and not expiring within --warn-blocks',
      '  3  a warning: expires within --warn-blocks, or the stake balance is within 5% of minStake (or below it)',
      '  4  not live: expired, lapsed, or never registered',
      '  1  the index, the API or the node could not answer; 2 a usage error',
      '"renew --all" renews exactly what status calls expiring.',
    ].join('\n')),
  handler: async (argv) => (await run()).runStatus(argv as unknown as StatusArgs),
};
