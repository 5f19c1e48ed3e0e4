import { EventEmitter } from 'node:events';
import { memoryPlan } from '../engine/budget.js';
import { MemoryUtxo } from '../engine/coinview.js';
import { connectBlock, ChainMismatchError, type BlockSummary } from '../engine/connect.js';
import { disconnectTip } from '../engine/disconnect.js';
import { K } from '../store/layout.js';
import { silent, type LogFn } from '../log.js';
import { fetchGroups, type FetchedBlock } from './fetch.js';
import { isPrunedBlock, RpcError, type RpcClient } from './rpc.js';
import { merkleTreeOf } from '../chain/pow.js';
import { BlockParseError, blockTxCount, scanHeader, walkTxidsInto } from '../chain/scanner.js';
import type { ChainState } from '../store/state.js';
import type { Tip } from '../types.js';
import type { ZmqListener, ZmqWake } from './zmq.js';

export interface ReorgInfo {
  /** Blocks disconnected. */
  readonly depth: number;
  /** Height of the last block both chains share. */
  readonly forkHeight: number;
  readonly oldTip: { height: number; hash: string };
}

export interface FollowerEvents {
  /** A block is applied (after the flush it triggered, if any); readable only from its `block` event on. For logs and progress. */
  connected: [BlockSummary];
  /** A block is flushed: readers see it. */
  block: [BlockSummary];
  reorg: [ReorgInfo];
  synced: [{ height: number; hash: string }];
  progress: [{ height: number; nodeHeight: number; blocksPerSec: number }];
}

export interface FollowerOptions {
  readonly state: ChainState;
  readonly rpc: RpcClient;
  readonly zmq?: ZmqListener;
  /** How often to ask the node for its best block when nothing wakes us. */
  readonly pollIntervalMs: number;
  readonly log?: LogFn;
  /** Keep undo data only for the last N blocks (default: every block, so any reorg can be undone). */
  readonly pruneUndoDepth?: number;
  /**
   * During catch-up, commit at least this often (ms, default 2000) and every
   * `flushBlocks` blocks (default 1000), so a crash loses little and readers
   * see progress; at the node's tip every block is committed. Catch-up's
   * commits but the last are written while the next blocks connect.
   */
  readonly flushIntervalMs?: number;
  readonly flushBlocks?: number;
  /** The coin view's budget in bytes (default: the default memory budget's, budget.ts): past it, catch-up commits. */
  readonly memoryBytes?: number;
  /** getblock requests kept in flight during catch-up. */
  readonly fetchDepth?: number;
  /** First delay (ms, default 500) before a failed sync pass is tried again; it doubles each time, up to 30 s. */
  readonly syncRetryMs?: number;
}

/** A condition the follower cannot recover from by waiting; the message says what to do. */
export class FollowerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FollowerError';
  }
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** What catch-up's `writing.tip` holds before its first commit: equal to no tip (not even null). */
const NO_TIP = Object.freeze({});

interface CheckedBlock {
  header: ReturnType<typeof scanHeader>;
  txids: Buffer;
}

/**
 * A block from the node, checked before it may connect: it is the block asked
 * for, and its transactions match its merkle root without repeats. Its txids
 * come with it. Throws a BlockParseError (retried: the block is fetched again).
 */
function checkBlock(fetched: FetchedBlock): CheckedBlock {
  const raw = fetched.raw;
  const header = scanHeader(raw);
  if (rpcHex(header.hash) !== fetched.hash) {
    throw new BlockParseError(`the node returned block ${rpcHex(header.hash)} for hash ${fetched.hash}`, 0);
  }
  const txids = Buffer.allocUnsafe(blockTxCount(raw) * 32);
  const { txs } = walkTxidsInto(raw, txids, 0, null);
  const tree = txs === 0 ? null : merkleTreeOf(txids, txs);
  if (tree === null || !tree.root.equals(header.merkleRoot)) {
    throw new BlockParseError(`block ${fetched.hash} from the node does not match its merkle root (corrupted in transit?)`, 0);
  }
  // A node never keeps such a copy in its chain (same hash, transactions
  // repeated): one that arrives was made on the way, and is fetched again.
  if (tree.mutated) {
    throw new BlockParseError(`block ${fetched.hash} from the node repeats transactions under the same merkle root (a mutated copy, CVE-2012-2459)`, 0);
  }
  return { header, txids };
}

/** `checkBlock`, its failure returned: thrown only when the block's turn to connect comes. */
function tryCheckBlock(fetched: FetchedBlock): CheckedBlock | Error {
  try {
    return checkBlock(fetched);
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/** Failures that, before the node ever answered, mean no node is at --rpc. */
const NOT_A_NODE: ReadonlySet<RpcError['kind']> = new Set(['unreachable', 'http', 'malformed', 'too-large']);

/**
 * Keeps the index equal to the node's best chain. ZMQ messages and a poll
 * timer only wake it up; every decision is taken from RPC answers: walk back
 * to the fork when the node's chain no longer holds our tip, disconnect with
 * undo data, then fetch and connect the node's blocks in order.
 */
export class Follower extends EventEmitter<FollowerEvents> {
  private stopping = false;
  private wakeUp: (() => void) | null = null;
  /** A wake-up that arrived while no one was sleeping: the next sleep returns at once. */
  private wakePending = false;
  private contacted = false;
  private nodeTip: { height: number; hash: string } | null = null;
  /** Coins and balances: read through from the database, committed with the state (engine/coinview.ts). */
  private readonly view = new MemoryUtxo(false, []);
  private viewReady = false;
  private readonly log: LogFn;
  private readonly onWake = (w: ZmqWake): void => {
    if (w.reason !== 'block') this.log('warn', 'zmq notifications may have been lost; resyncing', { reason: w.reason, detail: w.detail });
    this.wake();
  };

  constructor(private readonly opts: FollowerOptions) {
    super();
    this.log = opts.log ?? silent;
  }

  get state(): ChainState {
    return this.opts.state;
  }

  /**
   * Whether the node answers now, and when it last did (ms since the epoch,
   * null before the first answer). While it does not, the node's tip as last
   * seen says nothing about being synced.
   */
  get nodeContact(): { reachable: boolean; lastAnswer: number | null } {
    const c = this.opts.rpc.contact;
    return { reachable: c.failingSince === null, lastAnswer: c.lastAnswer };
  }

  /** The node's tip as last seen, or null before the first answer. */
  get lastNodeTip(): { height: number; hash: string } | null {
    return this.nodeTip;
  }

  /**
   * Follows until `stop()` (or, with `untilSynced`, until the index has
   * caught up with the node). Transient RPC failures are logged and retried
   * forever once the node has answered at least once. Before that, an address
   * where no node answers, or where something else answers (an HTML page, JSON
   * that is not JSON-RPC, an endless body), is reported once the client's
   * retries are spent, since the URL is the likely mistake.
   */
  async run(opts: { untilSynced?: boolean } = {}): Promise<void> {
    this.opts.zmq?.on('wake', this.onWake);
    const first = this.opts.syncRetryMs ?? 500;
    let backoff = first;
    let failedAt: number | null = null;
    let clean = true;
    try {
      while (!this.stopping) {
        let synced = false;
        try {
          synced = await this.syncOnce();
          backoff = first;
        } catch (err) {
          if (!this.retryable(err)) {
            clean = false;
            throw err;
          }
          // Progress since the last failure means the node is healthy again: start the backoff over.
          const at = this.opts.state.tip?.height ?? -1;
          if (failedAt !== null && at > failedAt) backoff = first;
          failedAt = at;
          this.log('warn', 'sync failed; will retry', { error: (err as Error).message, retryInMs: backoff });
          await this.sleep(backoff);
          backoff = Math.min(backoff * 2, Math.max(first, 30_000));
          continue;
        }
        if (synced && opts.untilSynced) return;
        if (!synced) continue;
        await this.sleep(this.opts.pollIntervalMs);
      }
    } finally {
      this.opts.zmq?.off('wake', this.onWake);
      // After a fatal error the view may hold a half-applied block: never write it.
      // Nothing to write when the state is the one last committed (catch-up ends
      // with a commit): a commit of the same tip would only wait for an fsync.
      if (clean && this.viewReady && !this.committed()) await this.view.spill(this.opts.state);
    }
  }

  /** Asks `run` to finish: the current block completes, the cache is flushed. */
  stop(): void {
    this.stopping = true;
    this.wake();
  }

  private wake(): void {
    const w = this.wakeUp;
    this.wakeUp = null;
    if (w) w();
    else this.wakePending = true;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopping || this.wakePending) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /**
   * Whether the database holds the state as it is in memory: no block
   * connected or disconnected since the last commit (each moves `tip` to a
   * new object), no row waiting. False while a commit is still being written.
   */
  private committed(): boolean {
    const state = this.opts.state;
    return state.tip === state.committedTip && state.rows.size === 0;
  }

  private retryable(err: unknown): boolean {
    if (err instanceof RpcError) {
      if (isPrunedBlock(err)) return false;
      if (err.kind === 'auth') return false;
      return this.contacted || !NOT_A_NODE.has(err.kind);
    }
    return err instanceof BlockParseError;
  }

  /** One pass: reconcile with the node's best chain. Returns true when the index ends at the node's tip. */
  async syncOnce(): Promise<boolean> {
    const state = this.opts.state;
    if (!this.viewReady) {
      await this.view.resume(state);
      this.viewReady = true;
    }
    const info = await this.opts.rpc.getBlockchainInfo();
    if (!this.contacted) {
      this.contacted = true;
      this.log('info', 'connected to node', { chain: info.chain, height: info.blocks, ibd: info.initialblockdownload ?? false });
    }
    if (info.initialblockdownload) this.log('warn', 'the node is still in initial block download; indexing what it has');
    this.nodeTip = { height: info.blocks, hash: info.bestblockhash };
    if (state.tip && rpcHex(state.tip.hash) === info.bestblockhash) {
      this.emit('synced', { height: state.tip.height, hash: info.bestblockhash });
      return true;
    }
    await this.rewindToNodeChain(info.blocks);
    await this.catchUp(info.blocks);
    const best = await this.opts.rpc.getBestBlockHash();
    const done = state.tip !== null && rpcHex(state.tip.hash) === best;
    if (done) this.emit('synced', { height: state.tip!.height, hash: best });
    return done;
  }

  private async storedHash(height: number): Promise<Buffer | undefined> {
    const key = K.blockHash(height).toString('latin1');
    const dirty = this.opts.state.rows.get(key);
    if (dirty !== undefined) return dirty ?? undefined;
    return this.opts.state.db.get(K.blockHash(height));
  }

  /** Disconnects blocks the node's best chain no longer has. */
  private async rewindToNodeChain(nodeHeight: number): Promise<void> {
    const state = this.opts.state;
    const tip: Tip | null = state.tip;
    if (tip === null) return;
    let h = Math.min(tip.height, nodeHeight);
    while (h >= 0) {
      const ours = await this.storedHash(h);
      if (ours !== undefined && rpcHex(ours) === await this.opts.rpc.getBlockHash(h)) break;
      h--;
    }
    if (h === tip.height) return;
    if (h < 0) {
      throw new FollowerError(`the node's chain shares no block with the index (not even genesis): it is another network, or --db belongs to another chain; use the right --network/--params or a fresh --db`);
    }
    const oldTip = { height: tip.height, hash: rpcHex(tip.hash) };
    const depth = tip.height - h;
    this.log('warn', 'reorg: disconnecting blocks the node no longer has', { depth, forkHeight: h, oldTip: oldTip.hash });
    while (state.tip!.height > h) {
      try {
        await disconnectTip(state, this.view);
      } catch (err) {
        throw new FollowerError(`cannot undo block ${state.tip!.height} for a reorg of depth ${depth}: ${(err as Error).message}. The index holds no undo data that deep: --prune-undo was too small, or the index was loaded from a snapshot ("nodereg snapshot load"), which carries undo data only for its last blocks. Rebuild it: "nodereg recount --db <new dir> --blocks-dir …", or load a snapshot made above the fork (docs/snapshots.md)`);
      }
    }
    this.emit('reorg', { depth, forkHeight: h, oldTip });
  }

  private async catchUp(nodeHeight: number): Promise<void> {
    const state = this.opts.state;
    const view = this.view;
    const from = state.tip === null ? 0 : state.tip.height + 1;
    if (from > nodeHeight) return;
    const started = Date.now();
    let lastFlush = Date.now();
    const flushMs = this.opts.flushIntervalMs ?? 2000;
    const flushBlocks = this.opts.flushBlocks ?? 1000;
    const budget = this.opts.memoryBytes ?? memoryPlan().tableBytes;
    // Blocks connected since the last commit: announced only once a commit makes them readable.
    let pending: BlockSummary[] = [];
    // The commit still being written behind the connects: its tip, and how many of
    // the pending blocks (the first ones) it makes readable; none while `blocks` is 0.
    // One object whose fields every block reads, never null: a path first taken at
    // the first commit would throw away this loop's optimized code (V8 recompiles it).
    const writing: { tip: unknown; blocks: number } = { tip: NO_TIP, blocks: 0 };
    const announce = (blocks: number): void => {
      for (const s of pending.splice(0, blocks)) this.emit('block', s);
    };
    /** Announces the blocks of the commit being written, once the write has ended (`committedTip` is its tip). */
    const announceWritten = (): void => {
      const written = state.committedTip === writing.tip;
      if (writing.blocks === 0 || !written) return;
      announce(writing.blocks);
      writing.blocks = 0;
    };
    // Every commit of the catch-up but the last is written behind: connecting goes
    // on while LevelDB writes it (as in `recount --db`, coinview.ts `spillBehind`);
    // its blocks are announced once the write has ended.
    const commitBehind = async (): Promise<void> => {
      const tip = state.tip;
      // Waits for the previous write first.
      await view.spillBehind(state);
      if (writing.blocks > 0) announce(writing.blocks);
      writing.tip = tip;
      writing.blocks = pending.length;
      // A view that cannot write behind commits at once.
      announceWritten();
      lastFlush = Date.now();
    };
    const commit = async (): Promise<void> => {
      await view.spill(state);
      writing.blocks = 0;
      lastFlush = Date.now();
      announce(pending.length);
    };
    // The last block connected, for progress events: at the first block, then every
    // second from a timer rather than from the loop below, since a branch the loop
    // takes once a second is one its optimized code never saw taken (V8 recompiles it).
    let connected = from - 1;
    const progress = (): void => {
      if (connected < from || connected >= nodeHeight) return;
      const rate = (connected - from + 1) / Math.max((Date.now() - started) / 1000, 0.001);
      this.emit('progress', { height: connected, nodeHeight, blocksPerSec: rate });
    };
    const ticker = setInterval(progress, 1000);
    ticker.unref();
    // A request's worth of blocks at a time: one await per group, not per block.
    try {
      fetching: for await (const group of fetchGroups(this.opts.rpc, from, nodeHeight, { depth: this.opts.fetchDepth ?? 8 })) {
        // The next block of the group, checked while this one connects (or why it is not a block).
        let ahead: CheckedBlock | Error | null = null;
        for (let i = 0; i < group.length; i++) {
          const fetched = group[i]!;
          if (this.stopping) break fetching;
          const raw = fetched.raw;
          const checked = ahead ?? checkBlock(fetched);
          ahead = null;
          if (checked instanceof Error) throw checked;
          const { header, txids } = checked;
          if (state.tip !== null && !header.prevHash.equals(state.tip.hash)) {
            this.log('info', 'the node changed its chain during catch-up; re-checking', { height: fetched.height });
            break fetching;
          }
          announceWritten();
          let summary: BlockSummary;
          try {
            await view.prefetch(state.db, raw, txids);
            // Once the view reads through, the next block's reads overlap this
            // block's connect, as in the recount (coinview.ts `readAhead`, which
            // does nothing before). The next block is checked here from the
            // first block on, not only once the view reads through: the same
            // work, and a path first taken after the first commit would throw
            // away this loop's optimized code (V8 recompiles it, some 100 ms of
            // CPU in a catch-up of a few thousand blocks).
            const after = group[i + 1];
            if (after !== undefined) {
              ahead = tryCheckBlock(after);
              if (!(ahead instanceof Error)) view.readAhead(state.db, after.raw, ahead.txids);
            }
            summary = connectBlock(state, view, raw, txids, fetched.height, header);
          } catch (err) {
            // The view and the state may hold part of this block: go back to the last
            // committed state (the blocks connected since were never announced, and
            // will be fetched again). A commit still being written ends first, so that
            // the database is not read mid-write; its blocks are then readable.
            await view.reload(state);
            announceWritten();
            pending = [];
            writing.blocks = 0;
            await state.load();
            await view.reload(state);
            if (err instanceof ChainMismatchError) throw new FollowerError(`${err.message}. The index and the node disagree; rebuild the index into a fresh --db`);
            throw err;
          }
          const prune = this.opts.pruneUndoDepth;
          if (prune !== undefined && fetched.height - prune >= 0) state.putRow(K.undo(fetched.height - prune), null);
          const behind = nodeHeight - fetched.height;
          pending.push(summary);
          const now = Date.now();
          if (behind === 0) await commit();
          else if (pending.length - writing.blocks >= flushBlocks || now - lastFlush > flushMs || view.usedBytes + state.cacheBytes > budget) await commitBehind();
          this.emit('connected', summary);
          connected = fetched.height;
          if (connected === from) progress();
        }
      }
    } finally {
      clearInterval(ticker);
    }
    // The last block was committed as it connected when it was the node's tip:
    // another commit would write the same tip again and wait for its fsync.
    if (pending.length > 0 || writing.blocks > 0 || !this.committed()) await commit();
  }
}
