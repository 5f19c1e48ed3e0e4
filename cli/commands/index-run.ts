import { openIndexer, type Indexer } from '../../indexer/api.js';
import { FollowerError } from '../../indexer/node/follower.js';
import { snapshotOrigin } from '../../indexer/snapshot/rows.js';
import { createLogger, type LogFn, type LogLevel } from '../../indexer/log.js';
import { RpcError } from '../../indexer/node/rpc.js';
import { UserError, type NetworkArgs } from '../common.js';
import { resolveRpc, type RpcFlags } from '../datadir.js';
import { asUserError, indexParams } from '../index-access.js';
import type { ApiServer } from '../../indexer/http/server.js';
import { parseListen } from './serve.js';
import type { MirrorFollower } from '../../indexer/mirror/follow.js';
import { startWebhooks, webhookOptions } from './index-webhooks.js';
import type { Webhooks } from '../../indexer/notify/webhooks.js';

/*
 * What `nodereg index` does, loaded only when it runs: following a node brings
 * in the follower and zeromq.
 */

export interface IndexArgs extends NetworkArgs, RpcFlags {
  zmq?: string;
  db: string;
  serve?: string;
  explorerUrl?: string;
  accessLog: boolean;
  untilSynced: boolean;
  pollInterval?: number;
  logLevel: LogLevel;
  logJson: boolean;
  pruneUndo?: number;
  utxoHash: boolean;
  memoryMib: number;
  rpcTimeout: number;
  rpcBackoffMs: number;
  syncRetryMs: number;
  rpcMaxResponseMb: number;
  postgres?: string;
  postgresRebuild: boolean;
  webhook?: string;
  webhookSecretFile?: string;
  webhookRetries: number;
  webhookBackoffMs: number;
  expiringWindow?: number;
}

function describeEvents(ix: Indexer, log: LogFn, level: LogLevel): void {
  // Logged when applied in memory, not when flushed: the log shows the work as it happens.
  // Only listened to at debug level: building the line costs time on every block of a catch-up.
  if (level === 'debug') ix.follower.on('connected', (b) => log('debug', 'connected block', { height: b.height, hash: Buffer.from(b.hash).reverse().toString('hex'), txs: b.txCount }));
  ix.on('reorg', (r) => log('warn', 'reorg done', { depth: r.depth, forkHeight: r.forkHeight, oldTip: r.oldTip.hash }));
  for (const kind of ['registered', 'renewed', 'expired', 'lapsed'] as const) {
    ix.on(kind, (c) => log('info', kind, { height: c.height, stakeScript: c.stakeScript, txid: c.txid }));
  }
  ix.on('rejected', (r) => log('info', 'rejected announcement', { height: r.height, txid: r.txid, vout: r.vout, reason: r.reason }));
  let lastSynced = '';
  ix.on('synced', (t) => {
    if (t.hash === lastSynced) return;
    lastSynced = t.hash;
    log('info', 'synced with node', { height: t.height, hash: t.hash });
  });
  ix.follower.on('progress', (p) => {
    const eta = p.blocksPerSec > 0 ? Math.round((p.nodeHeight - p.height) / p.blocksPerSec) : null;
    log('info', 'catching up', { height: p.height, nodeHeight: p.nodeHeight, blocksPerSec: Math.round(p.blocksPerSec), etaSeconds: eta });
  });
}

/** A failed undo, said definitely for an index loaded from a snapshot. */
async function withOrigin(ix: Indexer, message: string): Promise<string> {
  const origin = await snapshotOrigin(ix.db).catch(() => null);
  if (origin === null) return message;
  return `${message} [this index was loaded from a snapshot at height ${origin.height}: it has undo data from height ${origin.undoFrom} on, and the reorg reaches below it]`;
}

export async function runIndex(args: IndexArgs): Promise<void> {
  const params = await indexParams(args.db, args);
  const log = createLogger({ level: args.logLevel, json: args.logJson });
  const node = resolveRpc(args, params);
  const webhooks = await webhookOptions(params, args, log);
  let ix: Indexer;
  try {
    ix = await openIndexer({
      db: args.db,
      network: params,
      rpc: {
        url: node.url,
        user: node.user,
        password: node.password ?? process.env.NODEREG_RPC_PASSWORD,
        cookieFile: node.cookieFile,
        timeoutMs: args.rpcTimeout * 1000,
        backoffMs: args.rpcBackoffMs,
        maxResponseBytes: Math.round(args.rpcMaxResponseMb * 1024 * 1024),
      },
      zmq: args.zmq,
      pollIntervalMs: args.pollInterval,
      syncRetryMs: args.syncRetryMs,
      log,
      pruneUndoDepth: args.pruneUndo,
      utxoHash: args.utxoHash,
      memoryMiB: args.memoryMib,
    });
  } catch (err) {
    throw asUserError(err, args.db);
  }
  describeEvents(ix, log, args.logLevel);
  let mirror: MirrorFollower | null = null;
  if (args.postgres) {
    // Loaded on demand: pg is only needed when mirroring.
    const { MirrorFollower: Follower } = await import('../../indexer/mirror/follow.js');
    const { mirrorUserError } = await import('./mirror-run.js');
    mirror = new Follower({ url: args.postgres, db: ix.db, params, log, rebuild: args.postgresRebuild });
    try {
      await mirror.open();
    } catch (err) {
      await ix.stop();
      throw mirrorUserError(err);
    }
    // Each committed block and reorg asks for a pass; the mirror reads the committed rows itself.
    ix.on('block', () => mirror!.kick());
    ix.on('reorg', () => mirror!.kick());
    mirror.kick();
  }
  let hooks: Webhooks | null = null;
  try {
    if (webhooks) hooks = await startWebhooks(ix, params, webhooks, log);
  } catch (err) {
    await mirror?.stop();
    await ix.stop();
    throw err;
  }
  // The queue lives in the index's database: the webhooks stop before it closes.
  // The mirror first too: its pass reads the index, which stop() closes.
  const stopAll = async (): Promise<void> => {
    await mirror?.stop();
    await hooks?.stop();
    await ix.stop();
  };
  let server: ApiServer | null = null;
  if (args.serve) {
    const { host, port } = parseListen(args.serve);
    // Loaded on demand: fastify is only needed when serving.
    const { buildServer } = await import('../../indexer/http/server.js');
    server = await buildServer({ db: ix.db, params, indexer: ix, log, accessLog: args.accessLog, explorerUrl: args.explorerUrl ?? null });
    if (hooks) {
      const counters = hooks.counters;
      (await import('../../indexer/http/metrics.js')).webhookMetrics(server.metrics, () => counters);
    }
    try {
      log('info', 'serving the read API', { address: await server.listen(host, port) });
    } catch (err) {
      await server.close();
      await stopAll();
      throw new UserError(`cannot listen on ${args.serve}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      log('warn', 'second signal: exiting now (the index stays consistent at its last flush)', { signal: sig });
      process.exit(1);
    }
    log('info', 'stopping: finishing the current block and flushing', { signal: sig });
    void server?.close();
    void stopAll();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tip = ix.tip();
  log('info', 'starting', { network: params.name, db: args.db, tip: tip?.height ?? null, rpc: node.url, zmq: args.zmq ?? null });
  try {
    await ix.start({ untilSynced: args.untilSynced });
    await ix.done();
    log('info', 'stopped', { height: ix.tip()?.height ?? null });
  } catch (err) {
    if (err instanceof FollowerError && /^cannot undo/.test(err.message)) throw new UserError(await withOrigin(ix, err.message));
    if (err instanceof RpcError || err instanceof FollowerError) throw new UserError(err.message);
    throw asUserError(err, args.db);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server?.close();
    await mirror?.finish();
    await stopAll();
    log.flush();
  }
}
