import { createLogger, type LogFn, type LogLevel } from '../../indexer/log.js';
import type { ApiServer } from '../../indexer/http/server.js';
import type { DataSource } from '../../indexer/read/source.js';
import type { DB } from '../../indexer/store/store.js';
import type { NetworkParams } from '../../script/params.js';
import { networkFrom, UsageError, UserError, type NetworkArgs } from '../common.js';
import { openIndexForRead } from '../index-access.js';
import { parseListen } from './serve.js';

/*
 * What `nodereg serve` does, loaded only when it runs. fastify itself is
 * imported later still, once the index has opened.
 */

export interface ServeArgs extends NetworkArgs {
  db?: string;
  postgres?: string;
  pool: number;
  listen: string;
  cors?: string[];
  accessLog: boolean;
  explorerUrl?: string;
  logLevel: LogLevel;
  logJson: boolean;
}

interface Store {
  readonly opts: { db: DB } | { source: DataSource };
  readonly params: NetworkParams;
  readonly from: Record<string, string>;
  /** Starts what follows the store (the mirror's notifications). */
  follow(server: ApiServer, log: LogFn): void;
  close(): Promise<void>;
}

async function openIndex(path: string, args: NetworkArgs): Promise<Store> {
  const { db, params } = await openIndexForRead(path, args);
  return { opts: { db }, params, from: { db: path }, follow: () => undefined, close: () => db.close() };
}

async function openMirror(url: string, args: ServeArgs): Promise<Store> {
  const { openMirrorSource } = await import('../../indexer/mirror/source.js');
  const { followMirror } = await import('../../indexer/mirror/listen.js');
  const { describeUrl } = await import('../../indexer/mirror/connect.js');
  let source;
  try {
    // Without --network/--params, the mirror's own network.
    source = await openMirrorSource(url, (network) => networkFrom(args.network === undefined && args.params === undefined && network ? { network } : args), { poolSize: args.pool });
  } catch (err) {
    if (err instanceof Error && (err.name === 'PostgresUnavailableError' || err.name === 'QueryError')) throw new UserError(err.message);
    throw err;
  }
  let listener: { stop(): Promise<void> } | null = null;
  return {
    opts: { source }, params: source.params, from: { postgres: describeUrl(url) },
    follow: (server, log) => {
      listener = followMirror(url, source.params, server.events, log);
    },
    close: async () => {
      await listener?.stop();
      await source.close();
    },
  };
}

export async function runServe(args: ServeArgs): Promise<void> {
  const { host, port } = parseListen(args.listen);
  const log = createLogger({ level: args.logLevel, json: args.logJson });
  const store = args.postgres !== undefined ? await openMirror(args.postgres, args) : await openIndex(args.db!, args);
  const params = store.params;
  const { buildServer } = await import('../../indexer/http/server.js');
  const server = await buildServer({ ...store.opts, params, corsOrigin: args.cors, log, accessLog: args.accessLog, explorerUrl: args.explorerUrl ?? null });
  let address: string;
  try {
    address = await server.listen(host, port);
  } catch (err) {
    await server.close();
    await store.close();
    throw new UsageError(`cannot listen on ${args.listen}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  store.follow(server, log);
  log('info', 'serving the read API', { address, ...store.from, network: params.name });
  await new Promise<void>((resolve) => {
    const stop = (sig: NodeJS.Signals): void => {
      log('info', 'stopping', { signal: sig });
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await server.close();
  await store.close();
}
