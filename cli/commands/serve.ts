import type { Argv, CommandModule } from 'yargs';
import { createLogger, LOG_LEVELS, type LogLevel } from '../../indexer/log.js';
import { UsageError, withNetwork, type NetworkArgs } from '../common.js';
import { openIndexForRead } from '../index-access.js';

/** Parses host:port (IPv6 in brackets); the port must be 0–65535. */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen/--serve must be host:port such as 127.0.0.1:8080, got "${value}"`);
  return { host: m[1] ?? m[2]!, port };
}

interface ServeArgs extends NetworkArgs {
  db: string;
  listen: string;
  cors?: string[];
  logLevel: LogLevel;
  logJson: boolean;
}

async function run(args: ServeArgs): Promise<void> {
  const { host, port } = parseListen(args.listen);
  const log = createLogger({ level: args.logLevel, json: args.logJson });
  const { db, params } = await openIndexForRead(args.db, args);
  const { buildServer } = await import('../../indexer/http/server.js');
  const server = await buildServer({ db, params, corsOrigin: args.cors, log });
  let address: string;
  try {
    address = await server.listen(host, port);
  } catch (err) {
    await server.close();
    await db.close();
    throw new UsageError(`cannot listen on ${args.listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  log('info', 'serving the read API', { address, db: args.db, network: params.name });
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      log('info', 'stopping', { signal: sig });
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await db.close();
}

export const serveCommand: CommandModule = {
  command: 'serve',
  describe: 'serve the read-only HTTP API (and dashboard) from an index',
  builder: (y: Argv) =>
    withNetwork(y)
      .option('db', { type: 'string', demandOption: true, describe: 'index directory' })
      .option('listen', { type: 'string', default: '127.0.0.1:8080', describe: 'host:port; bind 0.0.0.0 explicitly to expose it' })
      .option('cors', { type: 'string', array: true, describe: 'allow these browser origins (CORS is off by default)' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
      .option('log-json', { type: 'boolean', default: false })
      .example('$0 serve --db ./index --listen 127.0.0.1:8080', 'then open http://127.0.0.1:8080/'),
  handler: (argv) => run(argv as unknown as ServeArgs),
};
