import type { Follower } from '../../indexer/node/follower.js';
import {
  explainTx, nodeInfo, requireTip, utxosOf, type Explanation, type NodeInfo, type ScriptUtxo,
} from '../../indexer/read/queries.js';
import { RpcError, type RpcClient } from '../../indexer/node/rpc.js';
import type { DB } from '../../indexer/store/store.js';
import type { NetworkParams } from '../../script/params.js';
import { UserError, type NetworkArgs } from '../common.js';
import { asUserError, openIndexForRead } from '../index-access.js';
import type { StakeCoin } from './build.js';
import type { RegistrationState, StakeState } from './preflight.js';

export interface IndexTip {
  readonly height: number;
  /** RPC hex. */
  readonly hash: string;
}

/** A stake's coins and registration, both as of one index tip. */
export interface StakeSnapshot {
  readonly tip: IndexTip;
  readonly coins: StakeCoin[];
  readonly info: NodeInfo;
}

/**
 * Where the operator commands read the registry: an index directory opened
 * in this process (`--db`, when no daemon holds it), or a running daemon's
 * read API (`--api`). Preflight and building see only this interface.
 */
export interface IndexSource {
  /** "the index at ./index", "the read API at http://…", for messages. */
  readonly label: string;
  readonly params: NetworkParams;
  tip(): Promise<IndexTip>;
  stake(script: Buffer): Promise<StakeSnapshot>;
  /** The stake's current registration and history; registration null if it never had one. */
  info(script: Buffer): Promise<NodeInfo>;
  /** Outcomes of a transaction's announcement attempts; empty while the index has not seen it confirmed. */
  explain(txidRpcHex: string): Promise<Explanation[]>;
  /**
   * Brings the index to the node's best block (following it with the
   * Follower for --db, waiting for the daemon for --api) and returns its tip.
   */
  catchUp(rpc: RpcClient): Promise<IndexTip>;
  close(): Promise<void>;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

export const toStakeCoin = (u: ScriptUtxo): StakeCoin => ({ txid: u.txid, vout: u.vout, value: BigInt(u.value), height: u.height, coinbase: u.coinbase });

/** The preflight's view of a snapshot. */
export function stakeState(s: StakeSnapshot): StakeState {
  const r = s.info.registration;
  const registration: RegistrationState | null = r === null ? null : {
    tipTxid: Buffer.from(r.tipTxid, 'hex').reverse(),
    timestamp: r.timestamp,
    expiryHeight: r.expiryHeight,
    ended: r.status !== 'active',
    status: r.status,
    endedHeight: r.endedHeight,
  };
  return {
    tipHeight: s.tip.height,
    balance: BigInt(s.info.balance),
    coins: new Map(s.coins.map((c) => [`${c.txid}:${c.vout}`, c.value])),
    registration,
  };
}

/**
 * The follower and the engine behind it, imported when an index first catches
 * up with the node (--db with --rpc): status, announce and renew on an index
 * alone never load them. A FollowerError can only come after that import.
 */
let following: typeof import('../../indexer/node/follower.js') | null = null;

/** Turns node and follower failures into one-line errors. */
export function asOperatorError(err: unknown): unknown {
  if (err instanceof RpcError || (following !== null && err instanceof following.FollowerError)) return new UserError(err.message);
  return asUserError(err);
}

/** An index directory opened by this process; it follows the node itself when asked to catch up. */
export class DbSource implements IndexSource {
  private follower: Follower | null = null;

  private constructor(readonly db: DB, readonly params: NetworkParams, readonly label: string) {}

  static async open(dir: string, args: NetworkArgs): Promise<DbSource> {
    const { db, params } = await openIndexForRead(dir, args);
    return new DbSource(db, params, `the index at ${dir}`);
  }

  async tip(): Promise<IndexTip> {
    const t = await requireTip(this.db);
    return { height: t.height, hash: rpcHex(t.hash) };
  }

  async stake(script: Buffer): Promise<StakeSnapshot> {
    const tip = await this.tip();
    const coins = (await utxosOf(this.db, script)).map(toStakeCoin);
    return { tip, coins, info: await nodeInfo(this.db, this.params, script) };
  }

  info(script: Buffer): Promise<NodeInfo> {
    return nodeInfo(this.db, this.params, script);
  }

  explain(txid: string): Promise<Explanation[]> {
    return explainTx(this.db, txid);
  }

  async catchUp(rpc: RpcClient): Promise<IndexTip> {
    if (!this.follower) {
      const [{ ChainState }, follow] = await Promise.all([import('../../indexer/store/state.js'), import('../../indexer/node/follower.js')]);
      following = follow;
      const { Follower } = follow;
      const state = new ChainState(this.db, this.params);
      await state.load();
      this.follower = new Follower({ state, rpc, pollIntervalMs: 1000 });
    }
    // The node may move on while we catch up; a few passes settle it.
    for (let pass = 0; pass < 5; pass++) {
      if (await this.follower.syncOnce()) return this.tip();
    }
    throw new UserError(`${this.label} could not catch up with the node, whose chain keeps changing; try again`);
  }

  async close(): Promise<void> {
    if (this.db.status === 'open') await this.db.close();
  }
}
