import type { Argv, CommandModule } from 'yargs';
import { openIndexer, type Indexer } from '../../indexer/api.js';
import { FollowerError } from '../../indexer/follower.js';
import { createLogger, LOG_LEVELS, type LogFn, type LogLevel } from '../../indexer/log.js';
import { RpcError } from '../../indexer/rpc.js';
import { networkFrom, UserError, withNetwork, type NetworkArgs } from '../common.js';
import { asUserError } from '../index-access.js';
import type { ApiServer } from '../../indexer/http/server.js';
import { parseListen } from './serve.js';

interface IndexArgs extends NetworkArgs {
  rpc: string;
  rpcUser?: string;
  rpcPassword?: string;
  rpcCookie?: string;
  zmq?: string;
  db: string;
  serve?: string;
  untilSynced: boolean;
  pollInterval?: number;
  logLevel: LogLevel;
  logJson: boolean;
  pruneUndo?: number;
  utxoHash: boolean;
  rpcTimeout: number;
}

function describeEvents(ix: Indexer, log: LogFn): void {
  ix.on('block', (b) => log('debug', 'connected block', { height: b.height, hash: b.hash, txs: b.txCount }));
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

async function run(args: IndexArgs): Promise<void> {
  const params = networkFrom(args);
  const log = createLogger({ level: args.logLevel, json: args.logJson });
  let ix: Indexer;
  try {
    ix = await openIndexer({
      db: args.db,
      network: params,
      rpc: {
        url: args.rpc,
        user: args.rpcUser,
        password: args.rpcPassword ?? process.env.NODEREG_RPC_PASSWORD,
        cookieFile: args.rpcCookie,
        timeoutMs: args.rpcTimeout * 1000,
      },
      zmq: args.zmq,
      pollIntervalMs: args.pollInterval,
      log,
      pruneUndoDepth: args.pruneUndo,
      utxoHash: args.utxoHash,
    });
  } catch (err) {
    throw asUserError(err);
  }
  describeEvents(ix, log);
  let server: ApiServer | null = null;
  if (args.serve) {
    const { host, port } = parseListen(args.serve);
    // Loaded on demand: fastify is only needed when serving.
    const { buildServer } = await import('../../indexer/http/server.js');
    server = await buildServer({ db: ix.db, params, indexer: ix, log });
    try {
      log('info', 'serving the read API', { address: await server.listen(host, port) });
    } catch (err) {
      await server.close();
      await ix.stop();
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
    void ix.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const tip = ix.tip();
  log('info', 'starting', { network: params.name, db: args.db, tip: tip?.height ?? null, rpc: args.rpc, zmq: args.zmq ?? null });
  try {
    await ix.start({ untilSynced: args.untilSynced });
    await ix.done();
    log('info', 'stopped', { height: ix.tip()?.height ?? null });
  } catch (err) {
    if (err instanceof RpcError || err instanceof FollowerError) throw new UserError(err.message);
    throw asUserError(err);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await server?.close();
    await ix.stop();
  }
}

export const indexCommand: CommandModule = {
  command: 'index',
  describe: 'follow a node over JSON-RPC (woken by ZMQ) and keep the index at its tip',
  builder: (y: Argv) =>
    withNetwork(y)
      .option('rpc', { type: 'string', demandOption: true, describe: 'node RPC URL, e.g. http://127.0.0.1:8332' })
      .option('rpc-user', { type: 'string', describe: 'RPC user (with --rpc-password or NODEREG_RPC_PASSWORD)' })
      .option('rpc-password', { type: 'string', describe: 'RPC password; prefer the NODEREG_RPC_PASSWORD environment variable or --rpc-cookie' })
      .option('rpc-cookie', { type: 'string', describe: 'bitcoind .cookie file (re-read when the node restarts)' })
      .option('rpc-timeout', { type: 'number', default: 30, describe: 'seconds before an RPC call is abandoned and retried' })
      .option('zmq', { type: 'string', describe: 'ZMQ endpoint of -zmqpubsequence (or -zmqpubhashblock), e.g. tcp://127.0.0.1:28332' })
      .option('db', { type: 'string', demandOption: true, describe: 'index directory (created if missing)' })
      .option('serve', { type: 'string', describe: 'also serve the read API on host:port' })
      .option('until-synced', { type: 'boolean', default: false, describe: 'exit 0 once caught up with the node' })
      .option('poll-interval', { type: 'number', describe: 'ms between best-block polls (default 5000, or 30000 with --zmq)' })
      .option('prune-undo', { type: 'number', describe: 'keep undo data only for the last N blocks (default: all blocks)' })
      .option('utxo-hash', { type: 'boolean', default: false, describe: 'keep Core\'s UTXO-set MuHash per height (new index only)' })
      .option('log-level', { choices: LOG_LEVELS, default: 'info' as LogLevel })
      .option('log-json', { type: 'boolean', default: false, describe: 'one JSON object per log line' })
      .conflicts('rpc-cookie', 'rpc-password')
      .check((a) => {
        if (a['poll-interval'] !== undefined && (!Number.isInteger(a['poll-interval']) || (a['poll-interval'] as number) < 10)) throw new Error('--poll-interval must be a whole number of milliseconds ≥ 10');
        if (a['prune-undo'] !== undefined && (!Number.isInteger(a['prune-undo']) || (a['prune-undo'] as number) < 6)) throw new Error('--prune-undo must be a whole number of blocks ≥ 6');
        if (!(Number.isFinite(a['rpc-timeout']) && (a['rpc-timeout'] as number) > 0)) throw new Error('--rpc-timeout must be a positive number of seconds');
        if (!/^https?:\/\/[^\s]+$/.test(String(a.rpc))) throw new Error(`--rpc must be an http(s) URL such as http://127.0.0.1:8332, got "${String(a.rpc)}"`);
        if (a.zmq !== undefined && !/^(tcp|ipc):\/\/\S+$/.test(String(a.zmq))) throw new Error(`--zmq must be an endpoint such as tcp://127.0.0.1:28332, got "${String(a.zmq)}"`);
        return true;
      })
      .example('$0 index --rpc http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie --zmq tcp://127.0.0.1:28332 --db ./index', 'follow a local bitcoind')
      .example('$0 index --network regtest --rpc http://127.0.0.1:18443 --rpc-user u --db ./index --until-synced', 'catch up once and exit'),
  handler: (argv) => run(argv as unknown as IndexArgs),
};
