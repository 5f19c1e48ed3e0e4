import { EventEmitter } from 'node:events';
import { parseStake } from '../script/address.js';
import { builtinNetwork, type NetworkParams } from '../script/params.js';
import type { BlockSummary } from './engine/connect.js';
import { Follower, type ReorgInfo } from './node/follower.js';
import { silent, type LogFn } from './log.js';
import {
  explainTx, exportAt, exportNode, nodeInfo, resolveHeight, rootAt, utxoHashAt,
  type Explanation, type ExportJson, type ExportNode, type NodeInfo,
} from './read/queries.js';
import type { ReasonCode } from '../script/reasons.js';
import { listNodes, type ListedNode, type StatusFilter } from './read/listing.js';
import type { BlockEvent } from './engine/registry.js';
import { RpcClient, type RpcOptions } from './node/rpc.js';
import { ChainState } from './store/state.js';
import { openStore, type DB } from './store/store.js';
import { memoryPlan } from './engine/budget.js';
import { ZmqListener, type ZmqTopic } from './node/zmq.js';

export interface IndexerOptions {
  /** Index directory; created if missing. */
  readonly db: string;
  /** A built-in network name, or full params (e.g. from `loadParamsFile`). Default mainnet. */
  readonly network?: string | NetworkParams;
  readonly rpc: RpcOptions;
  /** A ZMQ endpoint such as `tcp://127.0.0.1:28332` (bitcoind's -zmqpubsequence). */
  readonly zmq?: string;
  readonly zmqTopics?: ZmqTopic[];
  /** Largest ZMQ frame accepted (default 64 MiB); a larger one drops the connection, which is then rebuilt. */
  readonly zmqMaxMessageBytes?: number;
  /** Default 5000 ms without ZMQ, 30 000 ms with it. */
  readonly pollIntervalMs?: number;
  /** First delay before a failed sync with the node is tried again (default 500 ms); it doubles each time, up to 30 s. */
  readonly syncRetryMs?: number;
  readonly log?: LogFn;
  /** Keep undo data for the last N blocks only (default: all). */
  readonly pruneUndoDepth?: number;
  /** Keep Core's UTXO-set MuHash per height (new indexes only). */
  readonly utxoHash?: boolean;
  /** Memory budget in MiB (default DEFAULT_MEMORY_MIB, 256): how much the coin view may hold between commits during catch-up (`--memory-mib` of `nodereg index`). */
  readonly memoryMiB?: number;
}

/** A registration as the export and the API show it (hex in RPC order), without the balance. */
export type RegistrationJson = Omit<ExportNode, 'balance'>;

/** A registry event. Hashes and txids are RPC-order hex, as bitcoind prints them. */
export interface RegistryChange {
  readonly height: number;
  readonly blockHash: string;
  readonly stakeScript: string;
  /** The stake's address on this network, or null for a script without one. */
  readonly address: string | null;
  /** The announcing transaction; null for the end-of-block `expired` and `lapsed`. */
  readonly txid: string | null;
  readonly registration: RegistrationJson;
}

export interface Rejection {
  readonly height: number;
  readonly blockHash: string;
  readonly txid: string;
  readonly vout: number;
  readonly reason: ReasonCode;
  readonly stakeScript: string | null;
}

/** The typed events of an embedded indexer. */
export interface IndexerEvents {
  block: [{ height: number; hash: string; txCount: number }];
  reorg: [ReorgInfo];
  registered: [RegistryChange];
  renewed: [RegistryChange];
  expired: [RegistryChange];
  lapsed: [RegistryChange];
  rejected: [Rejection];
  synced: [{ height: number; hash: string }];
  /** A failed RPC call (it is retried); for metrics. */
  rpcError: [Error];
  error: [Error];
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/**
 * A live index embedded in another program (an explorer, a tracker): it
 * follows a node like `nodereg index` and answers the registry queries from
 * the same database.
 */
export class Indexer extends EventEmitter<IndexerEvents> {
  private running: Promise<void> | null = null;

  constructor(readonly db: DB, readonly params: NetworkParams, readonly follower: Follower, private readonly zmq: ZmqListener | null) {
    super();
    follower.on('block', (s) => this.relay(s));
    follower.on('reorg', (r) => this.emit('reorg', r));
    follower.on('synced', (t) => this.emit('synced', t));
  }

  private relay(s: BlockSummary): void {
    // Most blocks of a catch-up have no registry event, and a daemon without
    // a webhook or a mirror does not listen for 'block': nothing to format then.
    if (s.events.length === 0 && this.listenerCount('block') === 0) return;
    const blockHash = rpcHex(s.hash);
    this.emit('block', { height: s.height, hash: blockHash, txCount: s.txCount });
    for (const e of s.events) this.relayEvent(e, s.height, blockHash);
  }

  private relayEvent(e: BlockEvent, height: number, blockHash: string): void {
    if (e.type === 'rejected') {
      this.emit('rejected', { height, blockHash, txid: rpcHex(e.txid), vout: e.vout, reason: e.reason, stakeScript: e.stakeScript?.toString('hex') ?? null });
    } else {
      const { balance: _balance, ...registration } = exportNode(e.registration, 0n, this.params);
      this.emit(e.type, { height, blockHash, stakeScript: registration.stakeScript, address: registration.address, txid: e.txid ? rpcHex(e.txid) : null, registration });
    }
  }

  /**
   * Starts following in the background. With `untilSynced`, the returned
   * promise resolves once the index has caught up with the node and the
   * follower has stopped; otherwise it resolves as soon as following began.
   * Fatal errors are emitted as 'error' (and reject `done()`).
   */
  async start(opts: { untilSynced?: boolean } = {}): Promise<void> {
    if (this.running) throw new Error('the indexer is already running');
    await this.zmq?.start();
    this.running = this.follower.run({ untilSynced: opts.untilSynced }).catch((err: Error) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
      throw err;
    });
    if (opts.untilSynced) await this.running;
  }

  /** Resolves when the follow loop ends (after `stop()`, or when synced with `untilSynced`). */
  done(): Promise<void> {
    return this.running ?? Promise.resolve();
  }

  /** Stops following, flushes and closes the database. Safe to call twice. */
  async stop(): Promise<void> {
    this.follower.stop();
    try {
      await this.running?.catch(() => undefined);
    } finally {
      await this.zmq?.stop();
      if (this.db.status === 'open') await this.db.close();
    }
  }

  /** ZMQ listener counters, or null when not subscribed. */
  get zmqCounters(): { garbage: number; gaps: number; restarts: number; messages: number } | null {
    return this.zmq ? this.zmq.counters : null;
  }

  /**
   * Whether the node answers RPC now, and when it last did (ISO time, null
   * before its first answer). While it does not, the index may be behind
   * without knowing it: /v1/status says `node-unreachable` instead of `synced`.
   */
  nodeContact(): { reachable: boolean; lastAnswer: string | null } {
    const c = this.follower.nodeContact;
    return { reachable: c.reachable, lastAnswer: c.lastAnswer === null ? null : new Date(c.lastAnswer).toISOString() };
  }

  /** The followed node's tip as last seen. */
  nodeTip(): { height: number; hash: string } | null {
    return this.follower.lastNodeTip;
  }

  /** The tip the database holds: it moves only after the flush that makes a block readable. */
  tip(): { height: number; hash: string } | null {
    const t = this.follower.state.committedTip;
    return t ? { height: t.height, hash: rpcHex(t.hash) } : null;
  }

  nodes(opts: { status?: StatusFilter; at?: number } = {}): Promise<{ height: number; nodes: ListedNode[] }> {
    return listNodes(this.db, this.params, opts);
  }

  /** `stake` is an address of the network or an output script in hex. */
  node(stake: string): Promise<NodeInfo> {
    return nodeInfo(this.db, this.params, parseStake(stake, this.params));
  }

  explain(txid: string): Promise<Explanation[]> {
    return explainTx(this.db, txid);
  }

  async root(height?: number): Promise<string> {
    return rootAt(this.db, await resolveHeight(this.db, height));
  }

  async utxoHash(height?: number): Promise<string | null> {
    return utxoHashAt(this.db, await resolveHeight(this.db, height));
  }

  export(height?: number): Promise<ExportJson> {
    return exportAt(this.db, this.params, height);
  }
}

/** Opens (or creates) an index and prepares it to follow a node; call `start()` next. */
export async function openIndexer(options: IndexerOptions): Promise<Indexer> {
  if (options.memoryMiB !== undefined && !(Number.isFinite(options.memoryMiB) && options.memoryMiB > 0)) {
    throw new RangeError(`memoryMiB must be a positive number of MiB, got ${options.memoryMiB}`);
  }
  if (options.syncRetryMs !== undefined && !(Number.isInteger(options.syncRetryMs) && options.syncRetryMs >= 1)) {
    throw new RangeError(`syncRetryMs must be a whole number of milliseconds ≥ 1, got ${options.syncRetryMs}`);
  }
  const params = typeof options.network === 'object' ? options.network : builtinNetwork(options.network ?? 'mainnet');
  const log = options.log ?? silent;
  const db = await openStore(options.db, params, { create: true, utxoHash: options.utxoHash });
  try {
    const state = new ChainState(db, params);
    await state.load();
    const zmq = options.zmq ? new ZmqListener({ endpoint: options.zmq, topics: options.zmqTopics, maxMessageBytes: options.zmqMaxMessageBytes, log }) : null;
    let indexer: Indexer | null = null;
    const rpc = new RpcClient({
      ...options.rpc,
      onRetry: (i) => {
        indexer?.emit('rpcError', i.error);
        if (options.rpc.onRetry) options.rpc.onRetry(i);
        else log('warn', 'rpc call failed; retrying', { method: i.method, attempt: i.attempt, delayMs: i.delayMs, error: i.error.message });
      },
    });
    const follower = new Follower({
      state, rpc, zmq: zmq ?? undefined, log,
      pollIntervalMs: options.pollIntervalMs ?? (zmq ? 30_000 : 5000),
      pruneUndoDepth: options.pruneUndoDepth,
      memoryBytes: memoryPlan(options.memoryMiB).tableBytes,
      syncRetryMs: options.syncRetryMs,
    });
    indexer = new Indexer(db, params, follower, zmq);
    return indexer;
  } catch (err) {
    await db.close();
    throw err;
  }
}
