import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { LOG_LEVELS, type LogLevel } from '../../indexer/loglevel.js';
import { explorerUrlProblem } from '../../indexer/http/explorer-url.js';
import { UsageError, withNetwork } from '../common.js';
import { checkPostgresUrl } from './mirror.js';
import type { ServeArgs } from './serve-run.js';

/* `nodereg serve`: its flags and their checks; the work is in serve-run.ts. */

// Imported when the command runs: keeps the index and HTTP code off other commands' start-up.
const run = (): Promise<typeof import('./serve-run.js')> => import('./serve-run.js');

/** Parses host:port (IPv6 in brackets); the port must be 0–65535. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen/--serve must be host:port such as 127.0.0.1:8080, got "${value}"`);
  return { host: m[1] ?? m[2]!, port };
}

export const serveCommand: CommandModule = {
  ...LISTED.serve,
  builder: (y: Argv) =>
    withNetwork(y)
      .option('db', { type: 'string', describe: 'index directory' })
      .option('postgres', { type: 'string', describe: 'serve from this PostgreSQL mirror instead of an index (no LevelDB): a connection URL such as postgresql://nodereg@db.example/registry' })
      .option('pool', { type: 'number', default: 10, describe: 'with --postgres: connections to PostgreSQL' })
      .option('listen', { type: 'string', default: '127.0.0.1:8080', describe: 'host:port; bind 0.0.0.0 explicitly to expose it' })
      .option('cors', { type: 'string', array: true, describe: 'allow these browser origins (CORS is off by default)' })
      .option('access-log', { type: 'boolean', default: false, describe: 'log each HTTP request as one JSON line on stderr' })
      .option('explorer-url', { type: 'string', describe: 'the dashboard links each txid here, {txid} standing for it (https://…/tx/{txid})' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
      .option('log-json', { type: 'boolean', default: false })
      .check((a) => {
        if ((a.db === undefined) === (a.postgres === undefined)) throw new Error('give one of --db (an index directory) or --postgres (a mirror\'s connection URL)');
        checkPostgresUrl(a.postgres);
        if (!Number.isInteger(a.pool) || (a.pool as number) < 1) throw new Error('--pool must be a whole number of connections ≥ 1');
        if (Array.isArray(a['explorer-url'])) throw new Error('--explorer-url was given more than once; give it once');
        const problem = a['explorer-url'] === undefined ? null : explorerUrlProblem(String(a['explorer-url']));
        if (problem) throw new Error(problem);
        return true;
      })
      .example('$0 serve --db ./index --listen 127.0.0.1:8080', 'then open http://127.0.0.1:8080/')
      .example('$0 serve --db ./index --explorer-url \'https://mempool.space/tx/{txid}\'', 'link the dashboard\'s txids to an explorer')
      .example('$0 serve --postgres postgresql://nodereg@db.example/registry --listen 0.0.0.0:8080', 'one of many API servers of one mirror'),
  handler: async (argv) => (await run()).runServe(argv as unknown as ServeArgs),
};
