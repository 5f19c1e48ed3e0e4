import type { Explanation, NodeInfo } from '../../indexer/read/queries.js';
import type { RpcClient } from '../../indexer/node/rpc.js';
import { scriptToAddress } from '../../script/address.js';
import { BUILTIN_NETWORKS, ParamsError, paramsHash, parseParams, type NetworkParams } from '../../script/params.js';
import { networkFrom, UsageError, UserError, type NetworkArgs } from '../common.js';
import type { StakeCoin } from './build.js';
import type { IndexSource, IndexTip, StakeSnapshot } from './sources.js';

/*
 * A client of a running daemon's read API (`nodereg index --serve`), for when
 * the daemon holds the index's lock. Every answer is checked against the
 * documented shapes before it is used.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isHex64 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isAmount = (v: unknown): v is string => typeof v === 'string' && /^(0|[1-9][0-9]*)$/.test(v);
const isHex = (v: unknown): v is string => typeof v === 'string' && /^([0-9a-f]{2})*$/.test(v);
const STATUSES = new Set(['active', 'expired', 'lapsed']);

export interface ApiStatus {
  readonly network: string;
  readonly paramsHash: string;
  /** The daemon's params as a --params file holds them (daemons before this field: undefined). */
  readonly params?: unknown;
  readonly tip: IndexTip;
}

export class ApiSource implements IndexSource {
  readonly label: string;

  private constructor(private readonly base: string, readonly params: NetworkParams, private readonly timeoutMs: number) {
    this.label = `the read API at ${base}`;
  }

  /**
   * Connects to the read API and settles the network: the flags if given
   * (they must match the daemon's params hash), else the params the daemon
   * serves (an older daemon: its built-in network).
   */
  static async open(url: string, args: NetworkArgs, timeoutMs = 10_000): Promise<ApiSource> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new UsageError(`--api must be a URL such as http://127.0.0.1:8080, got "${url}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new UsageError(`--api must be an http(s) URL, got "${url}"`);
    const base = parsed.href.replace(/\/+$/, '');
    const probe = new ApiSource(base, BUILTIN_NETWORKS.regtest!, timeoutMs);
    const status = await probe.status();
    let params: NetworkParams;
    if (args.network || args.params) {
      params = networkFrom(args);
    } else if (status.params !== undefined) {
      try {
        params = parseParams(status.params, `the params served by ${probe.label}`);
      } catch (err) {
        if (err instanceof ParamsError) throw new UserError(err.message);
        throw err;
      }
    } else {
      const builtin = BUILTIN_NETWORKS[status.network];
      if (!builtin) throw new UsageError(`${probe.label} serves "${status.network}", a chain described by a params file: pass the same --params <file> as the daemon`);
      params = builtin;
    }
    if (paramsHash(params) !== status.paramsHash) {
      throw new UserError(`${probe.label} indexes "${status.network}" with other params than ${params.name} (--network/--params): use the daemon's own params`);
    }
    return new ApiSource(base, params, timeoutMs);
  }

  /** GET a path; 404 resolves to null. */
  async get(path: string): Promise<unknown> {
    let res: Response;
    try {
      res = await fetch(this.base + path, { headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string; errors?: Array<{ code?: string }> } }).cause;
      const why = (err as Error).name === 'TimeoutError'
        ? `no answer within ${this.timeoutMs / 1000} s`
        : cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message;
      throw new UserError(`cannot reach ${this.label} (${why}): is "nodereg index --serve" running, and is --api right?`);
    }
    const text = await res.text();
    if (res.status === 404) return null;
    if (res.status !== 200) {
      // The read API explains its errors as {"error", "message"}.
      let why = '';
      try {
        const body = JSON.parse(text) as unknown;
        if (isObject(body) && typeof body.message === 'string') why = `: ${body.message}`;
      } catch {
        // not JSON: the status alone
      }
      throw new UserError(`${this.label} answered GET ${path} with HTTP ${res.status}${why}`);
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw this.unexpected(path);
    }
  }

  unexpected(path: string): UserError {
    return new UserError(`${this.label} answered GET ${path} with something other than the read API's JSON: is --api a nodereg read API?`);
  }

  async status(): Promise<ApiStatus> {
    const path = '/v1/status';
    const s = await this.get(path);
    if (s === null) throw new UserError(`${this.label} has no ${path}: is --api a nodereg read API?`);
    if (!isObject(s) || typeof s.network !== 'string' || typeof s.paramsHash !== 'string') throw this.unexpected(path);
    if (s.tip === null) throw new UserError(`${this.label} serves an empty index: wait for the daemon to sync`);
    if (!isObject(s.tip) || !isHeight(s.tip.height) || !isHex64(s.tip.hash)) throw this.unexpected(path);
    return { network: s.network, paramsHash: s.paramsHash, params: s.params, tip: { height: s.tip.height, hash: s.tip.hash } };
  }

  async tip(): Promise<IndexTip> {
    return (await this.status()).tip;
  }

  private address(script: Buffer): string {
    const a = scriptToAddress(script, this.params);
    if (a === null) throw new UserError(`the stake ${script.toString('hex')} has no address form, which the read API needs`);
    return encodeURIComponent(a);
  }

  async utxos(script: Buffer): Promise<{ height: number; coins: StakeCoin[] }> {
    const path = `/v1/scripts/${this.address(script)}/utxos`;
    const r = await this.get(path);
    if (r === null) return { height: (await this.tip()).height, coins: [] };
    if (!isObject(r) || !isHeight(r.height) || !Array.isArray(r.utxos)) throw this.unexpected(path);
    const coins = r.utxos.map((u: unknown): StakeCoin => {
      if (!isObject(u) || !isHex64(u.txid) || !isHeight(u.vout) || !isAmount(u.value) || !isHeight(u.height) || typeof u.coinbase !== 'boolean') {
        throw this.unexpected(path);
      }
      return { txid: u.txid, vout: u.vout, value: BigInt(u.value), height: u.height, coinbase: u.coinbase };
    });
    return { height: r.height, coins };
  }

  async info(script: Buffer): Promise<NodeInfo> {
    const path = `/v1/nodes/${this.address(script)}`;
    const r = await this.get(path);
    if (r === null) {
      // A stake the index has never seen: no registration, and its balance is its coins.
      const { height, coins } = await this.utxos(script);
      const balance = coins.reduce((s, c) => s + c.value, 0n);
      return { height, stakeScript: script.toString('hex'), balance: balance.toString(), registration: null, history: [] };
    }
    if (!isObject(r) || !isHeight(r.height) || !isAmount(r.balance) || !isHex(r.stakeScript) || !Array.isArray(r.history)) throw this.unexpected(path);
    if (r.registration !== null && !validRegistration(r.registration)) throw this.unexpected(path);
    return r as unknown as NodeInfo;
  }

  async stake(script: Buffer): Promise<StakeSnapshot> {
    // Two requests may straddle a new block; retry until both answer for the same height.
    for (let attempt = 0; attempt < 5; attempt++) {
      const { height, coins } = await this.utxos(script);
      const info = await this.info(script);
      const tip = await this.tip();
      if (info.height === height && tip.height === height) return { tip, coins, info };
    }
    throw new UserError(`${this.label} kept moving between requests; try again`);
  }

  async explain(txid: string): Promise<Explanation[]> {
    const path = `/v1/tx/${txid}`;
    const r = await this.get(path);
    if (r === null) return [];
    if (!isObject(r) || !Array.isArray(r.announcements)) throw this.unexpected(path);
    return r.announcements.map((e: unknown): Explanation => {
      if (!isObject(e) || !isHeight(e.vout) || !isHeight(e.height) || typeof e.accepted !== 'boolean'
        || (e.kind !== 'newnode' && e.kind !== 'renewal' && e.kind !== null) || !(e.reason === null || typeof e.reason === 'string')) {
        throw this.unexpected(path);
      }
      return { vout: e.vout, height: e.height, kind: e.kind, accepted: e.accepted, reason: e.reason };
    });
  }

  /** Waits (up to a minute) until the daemon has indexed the node's best block. */
  async catchUp(rpc: RpcClient, timeoutMs = 60_000): Promise<IndexTip> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const node = await rpc.getBlockchainInfo();
      const tip = await this.tip();
      if (tip.hash === node.bestblockhash) return tip;
      if (Date.now() > deadline) {
        throw new UserError(`${this.label} is at height ${tip.height} but the node is at ${node.blocks}: is the daemon following the node given with --rpc?`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  async close(): Promise<void> {
    // Nothing held open: each request is its own.
  }
}

function validRegistration(r: unknown): boolean {
  if (!isObject(r)) return false;
  return typeof r.status === 'string' && STATUSES.has(r.status)
    && isHex(r.stakeScript) && (r.address === null || typeof r.address === 'string')
    && isHeight(r.firstHeight) && isHex64(r.firstTxid) && isHeight(r.tipHeight) && isHex64(r.tipTxid)
    && isHeight(r.timestamp) && isHeight(r.renewals) && isHeight(r.expiryHeight)
    && (r.endedHeight === null || isHeight(r.endedHeight)) && isAmount(r.balance)
    && isHeight(r.age) && (r.blocksUntilExpiry === null || Number.isSafeInteger(r.blocksUntilExpiry));
}
