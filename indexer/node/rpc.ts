import { readFile } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { addSecret, redact } from '../redact.js';
import { basicAuth, mib, notJson, postCapped, sleep, type PostFailure } from './http.js';
import { duration, isMuhashUnsupported, RpcError, snippet, socketCode } from './rpcerror.js';

export { isMuhashUnsupported, isPrunedBlock, MUHASH_UNSUPPORTED, RpcError, type RpcErrorKind } from './rpcerror.js';

/**
 * JSON-RPC client for bitcoind-compatible nodes (Bitcoin Core, zend-style forks,
 * Namecoin Core, bcoin). The node is the source of truth for the live indexer, so
 * this module owns everything that can go wrong between us and it: auth (password
 * or cookie), timeouts, retries of transient failures, and the two JSON-RPC error
 * shapes. Every response is validated here; callers get typed values or an
 * {@link RpcError} whose message a user can act on.
 */

export interface RpcOptions {
  /** e.g. `http://127.0.0.1:8332`; credentials in the URL are used as user/password. */
  url: string;
  user?: string;
  password?: string;
  /** bitcoind's `.cookie` (`__cookie__:<secret>`), used when no password is given. */
  cookieFile?: string;
  /** Per request; default 30 000. */
  timeoutMs?: number;
  /** Transient-failure retries per call; default 5; `Infinity` allowed. */
  retries?: number;
  /** First retry delay, doubling each time; default 250. */
  backoffMs?: number;
  /** Cap on the retry delay; default 10 000. */
  maxBackoffMs?: number;
  /**
   * Largest answer read, in bytes; default {@link DEFAULT_MAX_RESPONSE_BYTES}. A
   * larger one is cut off while it streams in, so a hostile or broken endpoint
   * cannot fill the memory.
   */
  maxResponseBytes?: number;
  onRetry?: (info: { method: string; attempt: number; delayMs: number; error: RpcError }) => void;
}

/**
 * 128 MiB: the largest Bitcoin block (4 MB) is 8 MB as hex, a 32 MB block of
 * a big-block fork 64 MB; catch-up batches aim at 1 MiB of blocks.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 128 * 1024 * 1024;

/** Per-call overrides. */
export interface CallOptions {
  timeoutMs?: number;
  /** Aborts the request and any pending retry; the call then rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Transient-failure retries for this call, at most the client's own `retries`. */
  retries?: number;
}

export interface BlockchainInfo {
  chain?: string;
  blocks: number;
  headers?: number;
  bestblockhash: string;
  initialblockdownload?: boolean;
  pruned?: boolean;
  pruneheight?: number;
}

export interface TxOutSetMuhash {
  height: number;
  bestblock: string;
  muhash: string;
}

export interface FeeEstimate {
  /** Satoshis per 1000 virtual bytes; null when the node has no estimate yet. */
  satPerKvB: bigint | null;
  blocks: number;
}

interface Call { method: string; params?: unknown[] }
type Json = Record<string, unknown>;

const HEX64 = /^[0-9a-f]{64}$/;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHeight = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

export class RpcClient {
  /** The URL without credentials, for messages. */
  readonly url: string;
  private readonly endpoint: URL;
  /** Kept-alive connections to the node, one per request in flight. */
  private readonly agent: HttpAgent;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly maxResponseBytes: number;
  private readonly onRetry: RpcOptions['onRetry'];
  private readonly cookieFile: string | undefined;
  private readonly staticAuth: string | undefined;
  private cookieAuth: string | undefined;
  private nextId = 0;
  /** getblock's "raw" argument: 0 on current nodes, `false` on nodes that predate verbosity levels. */
  private rawVerbosity: 0 | false | undefined;
  private lastAnswer: number | null = null;
  private failingSince: number | null = null;

  constructor(opts: RpcOptions) {
    let parsed: URL;
    try {
      parsed = new URL(opts.url);
    } catch {
      throw new RpcError('unreachable', `--rpc ${redact(opts.url)} is not a URL: use e.g. http://127.0.0.1:8332`, { transient: false });
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new RpcError('unreachable', `--rpc must be an http:// or https:// URL, not ${parsed.protocol}`, { transient: false });
    }
    const user = opts.user ?? decodeURIComponent(parsed.username);
    const password = opts.password ?? (parsed.password ? decodeURIComponent(parsed.password) : undefined);
    if (password !== undefined) addSecret(password);
    // Credentials go in the Authorization header, and messages must not show them.
    parsed.username = '';
    parsed.password = '';
    this.endpoint = parsed;
    this.agent = parsed.protocol === 'https:' ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
    this.url = parsed.pathname === '/' ? parsed.origin : `${parsed.origin}${parsed.pathname}`;
    if (password !== undefined) this.staticAuth = basicAuth(`${user}:${password}`, true);
    else if (opts.cookieFile === undefined && user) this.staticAuth = basicAuth(`${user}:`);
    this.cookieFile = password === undefined ? opts.cookieFile : undefined;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.retries = opts.retries ?? 5;
    this.backoffMs = opts.backoffMs ?? 250;
    this.maxBackoffMs = opts.maxBackoffMs ?? 10_000;
    this.maxResponseBytes = opts.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    this.onRetry = opts.onRetry;
    if (!(this.maxResponseBytes >= 1024)) throw new RangeError(`maxResponseBytes must be at least 1024, not ${this.maxResponseBytes}`);
    if (!(this.retries >= 0) || (this.retries !== Infinity && !Number.isInteger(this.retries))) {
      throw new RangeError(`retries must be a non-negative integer or Infinity, not ${this.retries}`);
    }
  }

  /**
   * Whether the node answers: when it last gave a JSON-RPC answer (ms since the
   * epoch, null if never), and since when every exchange has failed to get one
   * (null while it answers). An error answer counts as an answer: the node is there.
   */
  get contact(): { lastAnswer: number | null; failingSince: number | null } {
    return { lastAnswer: this.lastAnswer, failingSince: this.failingSince };
  }

  /** One JSON-RPC call, retried while the failure is transient. */
  async call<T>(method: string, params: unknown[] = [], opts: CallOptions = {}): Promise<T> {
    const id = ++this.nextId;
    const body = JSON.stringify({ jsonrpc: '1.0', id, method, params });
    return this.withRetries(method, opts, async () => {
      const { status, json } = await this.post(method, body, opts);
      if (!isObject(json)) throw this.malformed(method, status);
      return this.unwrap(method, params, status, json) as T;
    });
  }

  /**
   * Several calls in one HTTP request (a JSON-RPC batch array, which bitcoind and
   * bcoin both accept), results in request order. The first failed item, in
   * request order, is thrown; a transient one (-28) retries the whole batch.
   */
  async batch<T>(calls: Call[], opts: CallOptions = {}): Promise<T[]> {
    if (calls.length === 0) return [];
    const first = ++this.nextId;
    this.nextId += calls.length - 1;
    const body = JSON.stringify(calls.map((c, i) => ({ jsonrpc: '1.0', id: first + i, method: c.method, params: c.params ?? [] })));
    const label = `${calls[0]!.method} (batch of ${calls.length})`;
    return this.withRetries(label, opts, async () => {
      const { status, json } = await this.post(label, body, opts);
      // A node that rejects the batch as a whole answers with a single error object.
      if (isObject(json)) {
        this.unwrap(label, [], status, json);
        throw this.malformed(label, status);
      }
      if (!Array.isArray(json)) throw this.malformed(label, status);
      const byId = new Map<unknown, Json>();
      for (const item of json) if (isObject(item)) byId.set(item.id, item);
      return calls.map((c, i) => {
        const item = byId.get(first + i);
        if (!item) throw this.malformed(label, status);
        return this.unwrap(c.method, c.params ?? [], status, item) as T;
      });
    });
  }

  /** The node's view of its chain, checked for the fields the follower relies on. */
  async getBlockchainInfo(opts?: CallOptions): Promise<BlockchainInfo> {
    const r = await this.call<unknown>('getblockchaininfo', [], opts);
    if (!isObject(r) || !isHeight(r.blocks) || typeof r.bestblockhash !== 'string' || !HEX64.test(r.bestblockhash)) {
      throw this.unexpected('getblockchaininfo', 'blocks and bestblockhash');
    }
    const info: BlockchainInfo = { blocks: r.blocks, bestblockhash: r.bestblockhash };
    if (typeof r.chain === 'string') info.chain = r.chain;
    if (isHeight(r.headers)) info.headers = r.headers;
    if (typeof r.initialblockdownload === 'boolean') info.initialblockdownload = r.initialblockdownload;
    if (typeof r.pruned === 'boolean') info.pruned = r.pruned;
    if (isHeight(r.pruneheight)) info.pruneheight = r.pruneheight;
    return info;
  }

  async getBestBlockHash(opts?: CallOptions): Promise<string> {
    return this.hash('getbestblockhash', await this.call<unknown>('getbestblockhash', [], opts));
  }

  async getBlockHash(height: number, opts?: CallOptions): Promise<string> {
    return this.hash('getblockhash', await this.call<unknown>('getblockhash', [height], opts));
  }

  /** Hashes of heights `from..to` inclusive, in one batch. */
  async getBlockHashes(from: number, to: number, opts?: CallOptions): Promise<string[]> {
    const calls: Call[] = [];
    for (let h = from; h <= to; h++) calls.push({ method: 'getblockhash', params: [h] });
    const hashes = await this.batch<unknown>(calls, opts);
    return hashes.map((h) => this.hash('getblockhash', h));
  }

  /**
   * The serialized block. Current nodes take verbosity 0; nodes from before
   * verbosity levels reject a number and want `false`. bcoin 1.0.2 accepts both.
   * Whichever works first is remembered.
   */
  async getBlockRaw(hash: string, opts?: CallOptions): Promise<Buffer> {
    let hex: unknown;
    const remembered = this.rawVerbosity;
    try {
      hex = await this.call<unknown>('getblock', [hash, remembered ?? 0], opts);
      this.rawVerbosity = remembered ?? 0;
    } catch (err) {
      const wantsBool = err instanceof RpcError && err.kind === 'rpc' && (err.code === -1 || err.code === -3)
        && /bool/i.test(err.nodeMessage ?? '');
      if (remembered !== undefined || !wantsBool) throw err;
      hex = await this.call<unknown>('getblock', [hash, false], opts);
      this.rawVerbosity = false;
    }
    return this.blockBytes(hex);
  }

  /**
   * Several serialized blocks in one batch request, in order. A node error
   * for any of them (pruned, unknown) makes it fetch them one by one, so the
   * blocks before the bad one still arrive and the error names the right one.
   */
  async getBlocksRaw(hashes: string[], opts?: CallOptions): Promise<Buffer[]> {
    if (hashes.length === 0) return [];
    if (hashes.length === 1 || this.rawVerbosity === undefined) {
      const first = await this.getBlockRaw(hashes[0]!, opts);
      return [first, ...await this.getBlocksRaw(hashes.slice(1), opts)];
    }
    let hexes: unknown[];
    try {
      hexes = await this.batch<unknown>(hashes.map((h) => ({ method: 'getblock', params: [h, this.rawVerbosity] })), opts);
    } catch (err) {
      if (!(err instanceof RpcError && err.kind === 'rpc')) throw err;
      const out: Buffer[] = [];
      for (const h of hashes) out.push(await this.getBlockRaw(h, opts));
      return out;
    }
    return hexes.map((hex) => this.blockBytes(hex));
  }

  /** A getblock answer as bytes; anything but an even-length hex string is malformed. */
  private blockBytes(hex: unknown): Buffer {
    if (typeof hex !== 'string') throw this.unexpected('getblock', 'hex');
    // Buffer.from stops at the first pair that is not hex, so the length tells.
    const bytes = Buffer.from(hex, 'hex');
    if (bytes.length * 2 !== hex.length) throw this.unexpected('getblock', 'hex');
    return bytes;
  }

  /**
   * The node's MuHash of its UTXO set, or null when it cannot compute one
   * (see {@link MUHASH_UNSUPPORTED}). Without coinstatsindex the node hashes the
   * whole set, which takes minutes on mainnet, so the default timeout is 10 min.
   */
  async getTxOutSetInfoMuhash(opts: CallOptions = {}, height?: number): Promise<TxOutSetMuhash | null> {
    let r: unknown;
    try {
      // At a past height Core needs -coinstatsindex, and says so with code -8 (thrown).
      r = await this.call<unknown>('gettxoutsetinfo', height === undefined ? ['muhash'] : ['muhash', height], { timeoutMs: Math.max(this.timeoutMs, 600_000), ...opts });
    } catch (err) {
      if (isMuhashUnsupported(err)) return null;
      throw err;
    }
    if (!isObject(r) || !isHeight(r.height) || typeof r.bestblock !== 'string' || !HEX64.test(r.bestblock)) {
      throw this.unexpected('gettxoutsetinfo', 'height and bestblock');
    }
    if (typeof r.muhash !== 'string' || !HEX64.test(r.muhash)) return null;
    return { height: r.height, bestblock: r.bestblock, muhash: r.muhash };
  }

  /** Accepts Core's `{feerate, errors, blocks}` and bcoin's `{fee, blocks}` (fee -1: no estimate). */
  async estimateSmartFee(blocks: number, opts?: CallOptions): Promise<FeeEstimate> {
    const r = await this.call<unknown>('estimatesmartfee', [blocks], opts);
    if (!isObject(r)) throw this.unexpected('estimatesmartfee', 'an object');
    const rate = typeof r.feerate === 'number' ? r.feerate : typeof r.fee === 'number' ? r.fee : -1;
    return {
      satPerKvB: rate > 0 ? BigInt(Math.round(rate * 1e8)) : null,
      blocks: isHeight(r.blocks) ? r.blocks : blocks,
    };
  }

  /** Broadcasts a transaction; resolves to its txid. */
  async sendRawTransaction(hex: string, opts?: CallOptions): Promise<string> {
    return this.hash('sendrawtransaction', await this.call<unknown>('sendrawtransaction', [hex], opts));
  }

  private hash(method: string, v: unknown): string {
    if (typeof v !== 'string' || !HEX64.test(v)) throw this.unexpected(method, 'a 64-hex hash');
    return v;
  }

  private async withRetries<R>(label: string, opts: CallOptions, attempt: () => Promise<R>): Promise<R> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (!(err instanceof RpcError) || !err.transient || n > Math.min(this.retries, opts.retries ?? Infinity)) throw err;
        const delayMs = Math.min(this.backoffMs * 2 ** (n - 1), this.maxBackoffMs);
        this.onRetry?.({ method: label, attempt: n, delayMs, error: err });
        await sleep(delayMs, opts.signal);
      }
    }
  }

  /** One HTTP exchange, with the cookie re-read once on 401. Resolves to the parsed body. */
  private async post(label: string, body: string, opts: CallOptions): Promise<{ status: number; json: unknown }> {
    try {
      const answer = await this.exchange(label, body, opts);
      this.lastAnswer = Date.now();
      this.failingSince = null;
      return answer;
    } catch (err) {
      // An aborted call says nothing about the node, nor does a 401 (it answered). A
      // missing cookie does: bitcoind deletes it when it stops.
      if (err instanceof RpcError && (err.kind !== 'auth' || err.transient)) this.failingSince ??= Date.now();
      throw err;
    }
  }

  private async exchange(label: string, body: string, opts: CallOptions): Promise<{ status: number; json: unknown }> {
    let auth = await this.auth();
    let res = await this.send(label, body, auth, opts);
    if (res.status === 401 && this.cookieFile !== undefined) {
      // bitcoind writes a new cookie every time it starts.
      this.cookieAuth = undefined;
      const fresh = await this.auth();
      if (fresh !== auth) {
        auth = fresh;
        res = await this.send(label, body, auth, opts);
      }
    }
    const { status, text } = res;
    if (status === 401) {
      const how = this.cookieFile !== undefined ? `check --rpc-cookie (${this.cookieFile})` : 'check --rpc-user/--rpc-password or --rpc-cookie';
      throw new RpcError('auth', `the node at ${this.url} rejected the credentials (HTTP 401): ${how}`, { transient: false });
    }
    if (status === 403) {
      throw new RpcError('auth', `the node at ${this.url} refused the connection (HTTP 403): allow this host with rpcallowip in the node's config`, { transient: false });
    }
    try {
      return { status, json: JSON.parse(text) as unknown };
    } catch {
      if (status >= 500) {
        throw new RpcError('http', `the node at ${this.url} answered ${label} with HTTP ${status} (${snippet(text) || 'empty body'})`, { transient: true });
      }
      if (status >= 300) {
        throw new RpcError('http', `the node at ${this.url} answered ${label} with HTTP ${status}: is --rpc the node's RPC address?`, { transient: false });
      }
      throw new RpcError('malformed', `the node at ${this.url} answered ${label} with ${notJson(text)}: is --rpc the node's RPC address and port?`, { transient: true });
    }
  }

  private async send(label: string, body: string, auth: string | undefined, opts: CallOptions): Promise<{ status: number; text: string }> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const headers: Record<string, string | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) };
    if (auth !== undefined) headers.Authorization = auth;
    const limits = {
      max: this.maxResponseBytes,
      tooLarge: (): RpcError => new RpcError('too-large',
        `the node's answer to ${label} was larger than ${mib(this.maxResponseBytes)} MB: if the node at ${this.url} really sends blocks that large, raise --rpc-max-response-mb`,
        { transient: false }),
      timeoutMs,
      timedOut: (): RpcError => new RpcError('timeout', `the node at ${this.url} did not answer ${label} within ${duration(timeoutMs)}`, { transient: true }),
      signal: opts.signal,
    };
    for (let fresh = false; ; fresh = true) {
      try {
        return await postCapped(this.endpoint, this.agent, headers, body, limits);
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        if (err instanceof RpcError) throw err;
        const e = err as PostFailure;
        // The node may close a kept-alive connection just as a call goes out on it
        // (bitcoind and bcoin drop idle ones): that call is sent once more at once,
        // on a new connection. Nothing else gets a second try here.
        if (!fresh && e.reused && (e.code === 'ECONNRESET' || e.code === 'EPIPE')) continue;
        const code = socketCode(err) ?? (err instanceof Error ? err.message : String(err));
        throw new RpcError('unreachable', `cannot reach the node at ${this.url} (${code}): is it running, and is --rpc right?`, { transient: true });
      }
    }
  }

  /** The Authorization header; the cookie file is read lazily and cached until a 401. */
  private async auth(): Promise<string | undefined> {
    if (this.cookieFile === undefined) return this.staticAuth;
    if (this.cookieAuth !== undefined) return this.cookieAuth;
    let cookie: string;
    try {
      cookie = (await readFile(this.cookieFile, 'utf8')).trim();
    } catch (err) {
      const code = socketCode(err) ?? 'unreadable';
      // bitcoind deletes its cookie on shutdown, so a missing one may reappear.
      throw new RpcError('auth', `cannot read the cookie file ${this.cookieFile} (${code}): is the node running, and is --rpc-cookie right?`, { transient: code === 'ENOENT' });
    }
    if (!cookie.includes(':')) {
      throw new RpcError('auth', `the cookie file ${this.cookieFile} does not hold user:password: is --rpc-cookie the node's .cookie?`, { transient: false });
    }
    addSecret(cookie.slice(cookie.indexOf(':') + 1));
    this.cookieAuth = basicAuth(cookie, true);
    return this.cookieAuth;
  }

  /** The result of a JSON-RPC 1.0/1.1 or 2.0 response object, or its error thrown. */
  private unwrap(method: string, params: unknown[], status: number, json: Json): unknown {
    if (json.error !== undefined && json.error !== null) throw this.rpcError(method, params, json.error);
    if (status >= 500) {
      throw new RpcError('http', `the node at ${this.url} answered ${method} with HTTP ${status} and no error`, { transient: true });
    }
    if (!('result' in json)) throw this.malformed(method, status);
    return json.result;
  }

  private rpcError(method: string, params: unknown[], error: unknown): RpcError {
    const code = isObject(error) && typeof error.code === 'number' ? error.code : undefined;
    const raw = isObject(error) && typeof error.message === 'string' ? error.message : JSON.stringify(error);
    const nodeMessage = raw.split('\n')[0]!;
    const opts = { code, nodeMessage: raw, transient: code === -28 };
    if (code === -28) {
      return new RpcError('rpc', `the node at ${this.url} is still starting (${nodeMessage}): wait for it to finish loading`, opts);
    }
    if (method === 'getblock' && code === -1 && /pruned/i.test(raw)) {
      return new RpcError('rpc', `the node at ${this.url} has pruned block ${String(params[0])}: the index needs an unpruned node, or a --db whose tip is above the node's prune height`, opts);
    }
    const shown = code === undefined ? nodeMessage : `${nodeMessage} (code ${code})`;
    return new RpcError('rpc', `the node at ${this.url} refused ${method}: ${shown}`, opts);
  }

  private malformed(method: string, status: number): RpcError {
    // Transient like a page that is not JSON: a proxy in front of a restarting node sends either.
    return new RpcError('malformed', `the node at ${this.url} answered ${method} (HTTP ${status}) with JSON that is not a JSON-RPC response: is --rpc a bitcoind-compatible node?`, { transient: true });
  }

  private unexpected(method: string, what: string): RpcError {
    return new RpcError('malformed', `the node at ${this.url} answered ${method} without ${what}: is --rpc a bitcoind-compatible node?`, { transient: false });
  }
}
