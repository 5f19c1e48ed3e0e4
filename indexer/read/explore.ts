import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { REASON_CODES, REASON_TEXT, type ReasonCode } from '../../script/reasons.js';
import { decodeAmount, decodeOutcome, decodeRegistration, decodeRejected } from '../store/codec.js';
import { K, P, parse } from '../store/layout.js';
import { STAKE_REJECTIONS_META } from '../store/store.js';
import type { Registration } from '../types.js';
import { clockAt } from './forecast.js';
import { listedNodes, type ListedNode, type PageRows } from './listing.js';
import { balanceNow, QueryError, requireTip } from './queries.js';
import type { ReadDB } from './snapshot.js';

/*
 * The reads behind the dashboard's explorer views: a search over the whole
 * registry, a stake's balance over time, and the rejected announcements.
 * Each answer is computed by one function from rows (…Of), which the index
 * reads here, each a range scan of rows the engine already writes, and the
 * PostgreSQL mirror reads from its tables (indexer/mirror/source.ts).
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/**
 * Lowercased addresses by script (latin1), per network: rendering an
 * address is most of a search's cost, and a script's address never
 * changes. Bounded: cleared when it would pass MAX_ADDRESSES entries.
 */
const MAX_ADDRESSES = 250_000;
const addressCache = new Map<string, Map<string, string>>();

function lowerAddress(script: Buffer, params: NetworkParams): string {
  let byScript = addressCache.get(params.name);
  if (!byScript) addressCache.set(params.name, (byScript = new Map()));
  const key = script.toString('latin1');
  let a = byScript.get(key);
  if (a === undefined) {
    if (byScript.size >= MAX_ADDRESSES) byScript.clear();
    a = scriptToAddress(script, params)?.toLowerCase() ?? '';
    byScript.set(key, a);
  }
  return a;
}

/** Rows read between two yields to the event loop, so a long search never holds it. */
const YIELD_EVERY = 2000;

/** The one reading of a search's text: trimmed, any case, never only spaces. */
function searchText(query: string): string {
  const q = query.trim().toLowerCase();
  if (q === '') throw new QueryError('querystring/q must not be only spaces');
  return q;
}

/** Whether a stake script matches a search text (lowercase): in its hex or in its address. */
function matches(script: Buffer, q: string, params: NetworkParams): boolean {
  return script.toString('hex').includes(q) || lowerAddress(script, params).includes(q);
}

/**
 * What a search reads, from whichever store holds the registry. `K` names a
 * registration in the store (its FIRST_SEEN row, or its table row).
 */
export interface SearchRows<K> {
  /** Each script's current registration at the tip, in FIRST_SEEN order, by its script; read lazily. */
  candidates(): AsyncIterable<{ script: Buffer; key: K }>;
  registrations(keys: K[]): Promise<Registration[]>;
  balances: PageRows['balances'];
  clock: PageRows['clock'];
}

export interface SearchResult {
  height: number;
  nodes: ListedNode[];
  more: boolean;
}

/**
 * The registrations (current one per stake, FIRST_SEEN order) whose address
 * or script hex contains `query`, case-insensitively; at most `limit`.
 * One pass over the candidates: it stops once `limit` + 1 are found.
 */
export async function searchOf<K>(rows: SearchRows<K>, tipHeight: number, params: NetworkParams, query: string, limit: number): Promise<SearchResult> {
  const q = searchText(query);
  const hits: K[] = [];
  let more = false;
  let read = 0;
  for await (const { script, key } of rows.candidates()) {
    if (++read % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (!matches(script, q, params)) continue;
    if (hits.length === limit) {
      more = true;
      break;
    }
    hits.push(key);
  }
  return { height: tipHeight, nodes: await listedNodes(rows, await rows.registrations(hits), tipHeight, params), more };
}

/** `searchOf` over the index: the FIRST_SEEN rows, each hit's registration read afterwards. */
export async function searchNodes(db: ReadDB, params: NetworkParams, query: string, limit: number): Promise<SearchResult> {
  const tip = await requireTip(db);
  return searchOf<Buffer>({
    async* candidates() {
      for await (const [k, script] of db.iterator(K.all(P.firstSeen))) yield { script, key: Buffer.from(parse.firstSeen(k).id) };
    },
    async registrations(ids) {
      const out: Registration[] = [];
      for (const id of ids) {
        const raw = await db.get(K.registration(id));
        if (raw === undefined) throw new QueryError('index inconsistent: FIRST_SEEN row without its registration');
        out.push(decodeRegistration(raw));
      }
      return out;
    },
    balances: async (scripts) => Promise.all(scripts.map((s) => balanceNow(db, s))),
    clock: (h) => clockAt(db, h),
  }, tip.height, params, query, limit);
}

export interface BalancePoint {
  height: number;
  balance: string;
}

export interface BalanceHistory {
  height: number;
  points: BalancePoint[];
  truncated: boolean;
}

/**
 * A stake's balance at the end of each block that changed it while the
 * stake was registered, oldest first: the latest `limit` of them, from
 * `newestFirst` (the index's 'B' rows, the mirror's balances table).
 */
export async function balanceHistoryOf(newestFirst: AsyncIterable<BalancePoint> | Iterable<BalancePoint>, tipHeight: number, limit: number): Promise<BalanceHistory> {
  const points: BalancePoint[] = [];
  let truncated = false;
  for await (const p of newestFirst) {
    if (points.length === limit) {
      truncated = true;
      break;
    }
    points.push(p);
  }
  return { height: tipHeight, points: points.reverse(), truncated };
}

export async function balanceHistory(db: ReadDB, script: Uint8Array, limit: number): Promise<BalanceHistory> {
  const tip = await requireTip(db);
  async function* rows(): AsyncIterable<BalancePoint> {
    for await (const [k, v] of db.iterator({ ...K.stakeBalancesOf(script), reverse: true })) {
      yield { height: parse.stakeBalance(k).height, balance: decodeAmount(v).toString() };
    }
  }
  return balanceHistoryOf(rows(), tip.height, limit);
}

export interface RejectedAttempt {
  txid: string;
  height: number;
  vout: number;
  /** What the attempt tried: null when it never decoded. */
  kind: 'newnode' | 'renewal' | null;
  reason: ReasonCode;
  reasonText: string;
}

/** Where a rejected attempt sits in the chain: the order of both stores' rows. */
export interface RejectedAt {
  height: number;
  txIndex: number;
  vout: number;
}

/** A rejected attempt as a store holds it, with its outcome's kind. */
export interface RejectedRow extends RejectedAt {
  /** RPC-order hex. */
  txid: string;
  reason: ReasonCode;
  kind: 'newnode' | 'renewal' | null;
}

const attemptOf = (r: RejectedRow): RejectedAttempt => ({ txid: r.txid, height: r.height, vout: r.vout, kind: r.kind, reason: r.reason, reasonText: REASON_TEXT[r.reason] });

function encodeCursor(at: RejectedAt): string {
  return Buffer.from(`${at.height}:${at.txIndex}:${at.vout}`).toString('base64url');
}

function decodeCursor(cursor: string): RejectedAt {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const n = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  if (!m || n.some((x) => x > 0xffffffff)) throw new QueryError(`cursor "${cursor.slice(0, 40)}" is not one this server handed out`);
  return { height: n[0]!, txIndex: n[1]!, vout: n[2]! };
}

export interface RejectedPage {
  height: number;
  rejected: RejectedAttempt[];
  nextCursor: string | null;
}

/**
 * The rows a page of rejected attempts is read from: newest first, strictly
 * before `before` when given, of `reason` when given (a store may also
 * return others: the page filters again), `want` of them at most needed.
 */
export type RejectedRows = (before: RejectedAt | null, reason: ReasonCode | undefined, want: number) => AsyncIterable<RejectedRow> | Promise<RejectedRow[]>;

/**
 * Rejected announcement attempts, newest first, optionally of one reason
 * code; paged by the cursor of the last one returned.
 */
export async function rejectedPageOf(rows: RejectedRows, tipHeight: number, opts: { reason?: string; limit: number; cursor?: string }): Promise<RejectedPage> {
  if (opts.reason !== undefined && !(REASON_CODES as string[]).includes(opts.reason)) {
    throw new QueryError(`querystring/reason must be one of ${REASON_CODES.join(', ')}`);
  }
  const reason = opts.reason as ReasonCode | undefined;
  const before = opts.cursor === undefined ? null : decodeCursor(opts.cursor);
  const out: RejectedAttempt[] = [];
  let last: RejectedAt | null = null;
  let more = false;
  for await (const r of await rows(before, reason, opts.limit + 1)) {
    if (reason !== undefined && r.reason !== reason) continue;
    if (out.length === opts.limit) {
      more = true;
      break;
    }
    out.push(attemptOf(r));
    last = r;
  }
  return { height: tipHeight, rejected: out, nextCursor: more && last ? encodeCursor(last) : null };
}

/** An index row's outcome kind: null when the attempt never decoded. */
async function kindOf(db: ReadDB, txid: Uint8Array, vout: number): Promise<RejectedRow['kind']> {
  const outcome = await db.get(K.outcome(txid, vout));
  return outcome === undefined ? null : decodeOutcome(vout, outcome).kind;
}

/** `rejectedPageOf` over the index's 'j' rows. */
export async function rejectedPage(db: ReadDB, opts: { reason?: string; limit: number; cursor?: string }): Promise<RejectedPage> {
  const tip = await requireTip(db);
  async function* rows(before: RejectedAt | null, reason: ReasonCode | undefined): AsyncIterable<RejectedRow> {
    const range = { ...K.all(P.rejected), ...(before === null ? {} : { lt: K.rejected(before.height, before.txIndex, before.vout) }), reverse: true };
    for await (const [k, v] of db.iterator(range)) {
      const { txid, reason: why } = decodeRejected(v);
      if (reason !== undefined && why !== reason) continue;
      const at = parse.rejected(k);
      yield { ...at, txid: rpcHex(txid), reason: why, kind: await kindOf(db, txid, at.vout) };
    }
  }
  return rejectedPageOf(rows, tip.height, opts);
}

export interface StakeRejections {
  height: number;
  recorded: boolean;
  rejected: RejectedAttempt[];
}

/**
 * The rejected attempts that named a stake script, in chain order (`rows`).
 * `recorded` is false for a store whose index was created before those were
 * kept: the list may then miss attempts.
 */
export function stakeRejectionsOf(rows: RejectedRow[], tipHeight: number, recorded: boolean): StakeRejections {
  return { height: tipHeight, recorded, rejected: rows.map(attemptOf) };
}

/** `stakeRejectionsOf` over the index's 'J' rows. */
export async function stakeRejections(db: ReadDB, script: Uint8Array): Promise<StakeRejections> {
  const tip = await requireTip(db);
  const recorded = (await db.get(K.meta(STAKE_REJECTIONS_META))) !== undefined;
  const rows: RejectedRow[] = [];
  for await (const [k, v] of db.iterator(K.stakeRejectedOf(script))) {
    const { txid, reason } = decodeRejected(v);
    const { height, txIndex, vout } = parse.stakeRejected(k);
    rows.push({ height, txIndex, vout, txid: rpcHex(txid), reason, kind: await kindOf(db, txid, vout) });
  }
  return stakeRejectionsOf(rows, tip.height, recorded);
}
