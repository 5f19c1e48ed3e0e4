import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { LOG_LEVELS, type LogLevel } from '../../indexer/loglevel.js';
import { redact } from '../../indexer/redact.js';
import { withNetwork } from '../common.js';
import { withDatadir } from '../datadir.js';
import { DEFAULT_MEMORY_MIB } from '../../indexer/engine/budget.js';
import type { IndexArgs } from './index-run.js';
import { explorerUrlProblem } from '../../indexer/http/explorer-url.js';
import { checkPostgresUrl } from './mirror.js';

/* `nodereg index`: its flags and their checks; the work is in index-run.ts. */

// Imported when the command runs: keeps the follower and zeromq off other commands' start-up.
const run = (): Promise<typeof import('./index-run.js')> => import('./index-run.js');

/** Webhook flags: one URL (a repeated flag is a mistake, not a list), whole numbers. */
function checkWebhookFlags(a: Record<string, unknown>): void {
  for (const name of ['webhook', 'webhook-secret-file', 'webhook-retries', 'webhook-backoff-ms', 'expiring-window']) {
    if (Array.isArray(a[name])) throw new Error(`--${name} was given ${(a[name] as unknown[]).length} times; give it once`);
  }
  if (a.webhook !== undefined) {
    let url: URL | null = null;
    try {
      url = new URL(String(a.webhook));
    } catch { /* reported below */ }
    if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      throw new Error(`--webhook must be an http(s) URL such as https://tracker.example/nodereg, got "${redact(String(a.webhook))}"`);
    }
  }
  const retries = a['webhook-retries'] as number;
  if (!Number.isInteger(retries) || retries < 0) throw new Error('--webhook-retries must be a whole number ≥ 0');
  const backoff = a['webhook-backoff-ms'] as number;
  if (!Number.isInteger(backoff) || backoff < 1) throw new Error('--webhook-backoff-ms must be a whole number of milliseconds ≥ 1');
  const w = a['expiring-window'];
  if (w !== undefined && (!Number.isInteger(w) || (w as number) < 1)) throw new Error('--expiring-window must be a whole number of blocks ≥ 1');
}

export const indexCommand: CommandModule = {
  ...LISTED.index,
  builder: (y: Argv) =>
    withDatadir(withNetwork(y))
      .option('rpc', { type: 'string', describe: 'node RPC URL (default: http://127.0.0.1 on the --chain\'s standard port)' })
      .option('rpc-user', { type: 'string', describe: 'RPC user (with --rpc-password or NODEREG_RPC_PASSWORD)' })
      .option('rpc-password', { type: 'string', describe: 'RPC password; prefer the NODEREG_RPC_PASSWORD environment variable or --rpc-cookie' })
      .option('rpc-cookie', { type: 'string', describe: 'bitcoind .cookie file, re-read when the node restarts (default: the --datadir one, without --rpc-user)' })
      .option('rpc-timeout', { type: 'number', default: 30, describe: 'seconds before an RPC call is abandoned and retried' })
      .option('rpc-backoff-ms', { type: 'number', default: 250, describe: 'delay before the first retry of a failed RPC call; doubles each time, up to 10 s (five retries before the node first answers: about 8 s by default)' })
      .option('sync-retry-ms', { type: 'number', default: 500, describe: 'delay before a failed sync with the node (it went away, sent a bad block) is tried again; doubles each time, up to 30 s' })
      .option('rpc-max-response-mb', { type: 'number', default: 128, describe: 'largest node answer read, in MiB; a larger one is an error (the largest block is 8 MB as hex)' })
      .option('zmq', { type: 'string', describe: 'ZMQ endpoint of -zmqpubsequence (or -zmqpubhashblock), e.g. tcp://127.0.0.1:28332' })
      .option('db', { type: 'string', demandOption: true, describe: 'index directory (created if missing)' })
      .option('serve', { type: 'string', describe: 'also serve the read API on host:port' })
      .option('access-log', { type: 'boolean', default: false, describe: 'with --serve: log each HTTP request as one JSON line on stderr' })
      .option('explorer-url', { type: 'string', describe: 'with --serve: the dashboard links each txid here, {txid} standing for it (https://…/tx/{txid})' })
      .implies('explorer-url', 'serve')
      .option('until-synced', { type: 'boolean', default: false, describe: 'exit 0 once caught up with the node' })
      .option('poll-interval', { type: 'number', describe: 'ms between best-block polls (default 5000, or 30000 with --zmq)' })
      .option('prune-undo', { type: 'number', describe: 'keep undo data only for the last N blocks (default: all blocks)' })
      .option('utxo-hash', { type: 'boolean', default: false, describe: 'keep Core\'s UTXO-set MuHash per height (new index only)' })
      .option('memory-mib', { type: 'number', default: DEFAULT_MEMORY_MIB, describe: 'memory budget, MiB: the coin view holds coins and balances up to it during catch-up, then commits (the default keeps the daemon under 512 MiB RSS)' })
      .option('postgres', { type: 'string', describe: 'also mirror the registry into PostgreSQL at this URL, one transaction per block (docs/operations.md, "Scaling out")' })
      .option('postgres-rebuild', { type: 'boolean', default: false, describe: 'with --postgres: empty a mirror of another network, params or chain instead of refusing it' })
      .option('webhook', { type: 'string', describe: 'POST each registry event as JSON to this http(s) URL (docs/api.md, Webhooks)' })
      .option('webhook-secret-file', { type: 'string', describe: 'file holding the HMAC-SHA256 key that signs each webhook body (mode 600, like key files)' })
      .option('webhook-retries', { type: 'number', default: 15, describe: 'retries of a failing webhook delivery before the event is given up (kept in the index)' })
      .option('webhook-backoff-ms', { type: 'number', default: 1000, describe: 'delay before the first webhook retry; doubles each time, with jitter, up to 5 minutes' })
      .option('expiring-window', { type: 'number', describe: 'send "expiring" when a live node has this many blocks left (default: a tenth of expiryBlocks)' })
      .implies('webhook-secret-file', 'webhook')
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
      .option('log-json', { type: 'boolean', default: false, describe: 'one JSON object per log line' })
      .conflicts('rpc-cookie', 'rpc-password')
      .check((a) => {
        if (a['poll-interval'] !== undefined && (!Number.isInteger(a['poll-interval']) || (a['poll-interval'] as number) < 10)) throw new Error('--poll-interval must be a whole number of milliseconds ≥ 10');
        if (a['prune-undo'] !== undefined && (!Number.isInteger(a['prune-undo']) || (a['prune-undo'] as number) < 6)) throw new Error('--prune-undo must be a whole number of blocks ≥ 6');
        if (!(Number.isFinite(a['memory-mib']) && (a['memory-mib'] as number) > 0)) throw new Error('--memory-mib must be a positive number of MiB');
        if (!(Number.isFinite(a['rpc-timeout']) && (a['rpc-timeout'] as number) > 0)) throw new Error('--rpc-timeout must be a positive number of seconds');
        if (!Number.isInteger(a['rpc-backoff-ms']) || (a['rpc-backoff-ms'] as number) < 1) throw new Error('--rpc-backoff-ms must be a whole number of milliseconds ≥ 1');
        if (!Number.isInteger(a['sync-retry-ms']) || (a['sync-retry-ms'] as number) < 1) throw new Error('--sync-retry-ms must be a whole number of milliseconds ≥ 1');
        if (!(Number.isFinite(a['rpc-max-response-mb']) && (a['rpc-max-response-mb'] as number) >= 1)) throw new Error('--rpc-max-response-mb must be a number of MiB ≥ 1');
        if (a.rpc !== undefined && !/^https?:\/\/[^\s]+$/.test(String(a.rpc))) throw new Error(`--rpc must be an http(s) URL such as http://127.0.0.1:8332, got "${redact(String(a.rpc))}"`);
        checkPostgresUrl(a.postgres);
        if (a.zmq !== undefined && !/^(tcp|ipc):\/\/\S+$/.test(String(a.zmq))) throw new Error(`--zmq must be an endpoint such as tcp://127.0.0.1:28332, got "${String(a.zmq)}"`);
        checkWebhookFlags(a);
        const explorer = a['explorer-url'] === undefined ? null : explorerUrlProblem(String(a['explorer-url']));
        if (explorer) throw new Error(explorer);
        return true;
      })
      .example('$0 index --zmq tcp://127.0.0.1:28332 --db ./index', 'follow the local mainnet bitcoind (cookie and port from ~/.bitcoin)')
      .example('$0 index --chain regtest --datadir /srv/bitcoin --db ./index', 'the regtest node of another data directory')
      .example('$0 index --network regtest --rpc http://127.0.0.1:18443 --rpc-user u --db ./index --until-synced', 'catch up once and exit'),
  handler: async (argv) => (await run()).runIndex(argv as unknown as IndexArgs),
};
