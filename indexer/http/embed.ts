import type { FastifyInstance } from 'fastify';
import type { Indexer } from '../api.js';
import type { MountedApi, MountOptions } from './mount.js';
import type { ApiServer, ServerOptions } from './server.js';

export interface ApiServerOptions extends Pick<MountOptions, 'corsOrigin' | 'log' | 'eventRetention' | 'maxHeavyRequests'> {
  /**
   * An app of your own to mount the read API in (under `prefix`), in its
   * own encapsulated scope: its hooks, error shapes and schemas stay off
   * your other routes. Without it, a server of its own is made.
   */
  readonly app?: FastifyInstance;
  /** Where to mount the routes in `app`, e.g. '/registry'. Default: the root. */
  readonly prefix?: string;
  /** Without `app`: an access log line per request (as `--access-log`). */
  readonly accessLog?: ServerOptions['accessLog'];
}

/**
 * The read API of `nodereg serve` over an embedded indexer's database,
 * with its live event stream. With `options.app` the routes join that
 * fastify app (the dashboard only at the root, since its page uses root
 * paths); `close()` then ends the event streams and leaves your app
 * running, and closing your app does the same. Without it, `listen()`
 * starts a server of its own.
 */
export async function createApiServer(indexer: Indexer, options: ApiServerOptions = {}): Promise<ApiServer> {
  const { app, prefix = '', ...rest } = options;
  const base = { db: indexer.db, params: indexer.params, indexer, corsOrigin: rest.corsOrigin, log: rest.log, eventRetention: rest.eventRetention, maxHeavyRequests: rest.maxHeavyRequests };
  if (!app) {
    const { buildServer } = await import('./server.js');
    return buildServer({ ...base, accessLog: rest.accessLog });
  }
  const { mountApi } = await import('./mount.js');
  let api: MountedApi | null = null;
  await app.register(async (scope) => {
    api = await mountApi(scope, { ...base, prefix });
  }, { prefix });
  const mounted = api as MountedApi | null;
  if (!mounted) throw new Error('the read API did not mount');
  return {
    app, events: mounted.events, metrics: mounted.metrics,
    listen: (host, port) => app.listen({ host, port }),
    close: async () => mounted.stop(),
  };
}
