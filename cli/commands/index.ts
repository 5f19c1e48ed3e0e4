import type { Argv, CommandModule } from 'yargs';
import { LOG_LEVELS, type LogLevel } from '../../indexer/log.js';
import { redact } from '../../indexer/redact.js';
import { withNetwork } from '../common.js';
import { withDatadir } from '../datadir.js';
import { DEFAULT_MEMORY_MIB } from '../../indexer/engine/budget.js';
import type { IndexArgs } from './index-run.js';

/* `nodereg index`: its flags and their checks; the work is in index-run.ts. */

// Imported when the command runs: keeps the follower and zeromq off other commands' start-up.
const run = (): Promise<typeof import('./index-run.js')> => import('./index-run.js');

export const indexCommand: CommandModule = {
  command: 'index',
  describe: 'follow a node over JSON-RPC (woken by ZMQ) and keep the index at its tip',
  builder: (y: Argv) =>
    withDatadir(withNetwork(y))
      .option('rpc', { type: 'string', describe: 'node RPC URL (default: http://127.0.0.1 on the --chain\'s standard port)' })
      .option('rpc-user', { type: 'string', describe: 'RPC user (with --rpc-password or NODEREG_RPC_PASSWORD)' })
      .option('rpc-password', { type: 'string', describe: 'RPC password; prefer the NODEREG_RPC_PASSWORD environment variable or --rpc-cookie' })
      .option('rpc-cookie', { type: 'string', describe: 'bitcoind .cookie file, re-read when the node restarts (default: the --datadir one, without --rpc-user)' })
      .option('rpc-timeout', { type: 'number', default: 30, describe: 'seconds before an RPC call is abandoned and retried' })
      .option('rpc-max-response-mb', { type: 'number', default: 128, describe: 'largest node answer read, in MiB; a larger one is an error (the largest block is 8 MB as hex)' })
      .option('zmq', { type: 'string', describe: 'ZMQ endpoint of -zmqpubsequence (or -zmqpubhashblock), e.g. tcp://127.0.0.1:28332' })
      .option('db', { type: 'string', demandOption: true, describe: 'index directory (created if missing)' })
      .option('serve', { type: 'string', describe: 'also serve the read API on host:port' })
      .option('access-log', { type: 'boolean', default: false, describe: 'with --serve: log each HTTP request as one JSON line on stderr' })
      .option('until-synced', { type: 'boolean', default: false, describe: 'exit 0 once caught up with the node' })
      .option('poll-interval', { type: 'number', describe: 'ms between best-block polls (default 5000, or 30000 with --zmq)' })
      .option('prune-undo', { type: 'number', describe: 'keep undo data only for the last N blocks (default: all blocks)' })
      .option('utxo-hash', { type: 'boolean', default: false, describe: 'keep Core\'s UTXO-set MuHash per height (new index only)' })
      .option('memory-mib', { type: 'number', default: DEFAULT_MEMORY_MIB, describe: 'memory budget, MiB: the coin view holds coins and balances up to it during catch-up, then commits (the default keeps the daemon under 512 MiB RSS)' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
      .option('log-json', { type: 'boolean', default: false, describe: 'one JSON object per log line' })
      .conflicts('rpc-cookie', 'rpc-password')
      .check((a) => {
        if (a['poll-interval'] !== undefined && (!Number.isInteger(a['poll-interval']) || (a['poll-interval'] as number) < 10)) throw new Error('--poll-interval must be a whole number of milliseconds ≥ 10');
        if (a['prune-undo'] !== undefined && (!Number.isInteger(a['prune-undo']) || (a['prune-undo'] as number) < 6)) throw new Error('--prune-undo must be a whole number of blocks ≥ 6');
        if (!(Number.isFinite(a['memory-mib']) && (a['memory-mib'] as number) > 0)) throw new Error('--memory-mib must be a positive number of MiB');
        if (!(Number.isFinite(a['rpc-timeout']) && (a['rpc-timeout'] as number) > 0)) throw new Error('--rpc-timeout must be a positive number of seconds');
        if (!(Number.isFinite(a['rpc-max-response-mb']) && (a['rpc-max-response-mb'] as number) >= 1)) throw new Error('--rpc-max-response-mb must be a number of MiB ≥ 1');
        if (a.rpc !== undefined && !/^https?:\/\/[^\s]+$/.test(String(a.rpc))) throw new Error(`--rpc must be an http(s) URL such as http://127.0.0.1:8332, got "${redact(String(a.rpc))}"`);
        if (a.zmq !== undefined && !/^(tcp|ipc):\/\/\S+$/.test(String(a.zmq))) throw new Error(`--zmq must be an endpoint such as tcp://127.0.0.1:28332, got "${String(a.zmq)}"`);
        return true;
      })
      .example('$0 index --zmq tcp://127.0.0.1:28332 --db ./index', 'follow the local mainnet bitcoind (cookie and port from ~/.bitcoin)')
      .example('$0 index --chain regtest --datadir /srv/bitcoin --db ./index', 'the regtest node of another data directory')
      .example('$0 index --network regtest --rpc http://127.0.0.1:18443 --rpc-user u --db ./index --until-synced', 'catch up once and exit'),
  handler: async (argv) => (await run()).runIndex(argv as unknown as IndexArgs),
};
