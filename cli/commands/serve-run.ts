import { createLogger, type LogLevel } from '../../indexer/log.js';
import { UsageError, type NetworkArgs } from '../common.js';
import { openIndexForRead } from '../index-access.js';
import { parseListen } from './serve.js';

/*
 * What `nodereg serve` does, loaded only when it runs. fastify itself is
 * imported later still, once the index has opened.
 */

export interface ServeArgs extends NetworkArgs {
  db: string;
  listen: string;
  cors?: string[];
  accessLog: boolean;
  explorerUrl?: string;
  logLevel: LogLevel;
  logJson: boolean;
}

export async function runServe(args: ServeArgs): Promise<void> {
  const { host, port } = parseListen(args.listen);
  const log = createLogger({ level: args.logLevel, json: args.logJson });
  const { db, params } = await openIndexForRead(args.db, args);
  const { buildServer } = await import('../../indexer/http/server.js');
  const server = await buildServer({ db, params, corsOrigin: args.cors, log, accessLog: args.accessLog, explorerUrl: args.explorerUrl ?? null });
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
