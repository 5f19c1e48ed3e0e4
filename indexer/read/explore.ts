import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { REASON_CODES, REASON_TEXT, type ReasonCode } from '../../script/reasons.js';
import { decodeOutcome, decodeRegistration, decodeRejected } from '../store/codec.js';
import { K, P, parse } from '../store/layout.js';
import { STAKE_REJECTIONS_META } from '../store/store.js';
import { clockAt, forecast } from './forecast.js';
import type { ListedNode } from './listing.js';
import { balanceNow, exportNode, QueryError, requireTip } from './queries.js';
import type { ReadDB } from './snapshot.js';

/*
 * The reads behind the dashboard's explorer views: a search over the whole
 * registry, a stake's balance over time, and the rejected announcements.
 * Each is one range scan of rows the engine already writes.
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

/**
 * The registrations (current one per stake, FIRST_SEEN order) whose address
 * or script hex contains `query`, case-insensitively; at most `limit`.
 * One pass over the FIRST_SEEN rows: the scan stops once `limit` + 1 are found.
 */
export async function searchNodes(db: ReadDB, params: NetworkParams, query: string, limit: number): Promise<{ height: number; nodes: ListedNode[]; more: boolean }> {
  const tip = await requireTip(db);
  const q = query.trim().toLowerCase();
  if (q === '') throw new QueryError('querystring/q must not be only spaces');
  const hits: Buffer[] = [];
  let more = false;
  let read = 0;
  for await (const [k, script] of db.iterator(K.all(P.firstSeen))) {
    if (++read % YIELD_EVERY === 0) await new Promise<void>((resolve) => setImmediate(resolve));
    if (!script.toString('hex').includes(q) && !lowerAddress(script, params).includes(q)) continue;
    if (hits.length === limit) {
      more = true;
      break;
    }
    hits.push(Buffer.from(parse.firstSeen(k).id));
  }
  const clock = await clockAt(db, tip.height);
  const nodes: ListedNode[] = [];
  for (const id of hits) {
    const raw = await db.get(K.registration(id));
    if (raw === undefined) throw new QueryError('index inconsistent: FIRST_SEEN row without its registration');
    const r = decodeRegistration(raw);
    const balance = await balanceNow(db, r.stakeScript);
    nodes.push({ ...exportNode(r, balance, params), age: tip.height - r.firstHeight, ...forecast(r, balance, clock, params) });
  }
  return { height: tip.height, nodes, more };
}

export interface BalancePoint {
  height: number;
  balance: string;
}

/**
 * A stake's balance at the end of each block that changed it while the
 * stake was registered ('B' rows), oldest first: the latest `limit` of them.
 */
export async function balanceHistory(db: ReadDB, script: Uint8Array, limit: number): Promise<{ height: number; points: BalancePoint[]; truncated: boolean }> {
  const tip = await requireTip(db);
  const points: BalancePoint[] = [];
  let truncated = false;
  for await (const [k, v] of db.iterator({ ...K.stakeBalancesOf(script), reverse: true })) {
    if (points.length === limit) {
      truncated = true;
      break;
    }
    points.push({ height: parse.stakeBalance(k).height, balance: v.readBigUInt64LE(0).toString() });
  }
  return { height: tip.height, points: points.reverse(), truncated };
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

function encodeCursor(k: Buffer): string {
  const at = parse.rejected(k);
  return Buffer.from(`${at.height}:${at.txIndex}:${at.vout}`).toString('base64url');
}

function decodeCursor(cursor: string): Buffer {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  const n = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  if (!m || n.some((x) => x > 0xffffffff)) throw new QueryError(`cursor "${cursor.slice(0, 40)}" is not one this server handed out`);
  return K.rejected(n[0]!, n[1]!, n[2]!);
}

/**
 * Rejected announcement attempts, newest first, optionally of one reason
 * code; paged by the cursor of the last one returned.
 */
export async function rejectedPage(
  db: ReadDB, opts: { reason?: string; limit: number; cursor?: string },
): Promise<{ height: number; rejected: RejectedAttempt[]; nextCursor: string | null }> {
  const tip = await requireTip(db);
  if (opts.reason !== undefined && !(REASON_CODES as string[]).includes(opts.reason)) {
    throw new QueryError(`querystring/reason must be one of ${REASON_CODES.join(', ')}`);
  }
  const range = { ...K.all(P.rejected), ...(opts.cursor === undefined ? {} : { lt: decodeCursor(opts.cursor) }), reverse: true };
  const out: RejectedAttempt[] = [];
  let last: Buffer | null = null;
  let more = false;
  for await (const [k, v] of db.iterator(range)) {
    const { txid, reason } = decodeRejected(v);
    if (opts.reason !== undefined && reason !== opts.reason) continue;
    if (out.length === opts.limit) {
      more = true;
      break;
    }
    const at = parse.rejected(k);
    const outcome = await db.get(K.outcome(txid, at.vout));
    const kind = outcome === undefined ? null : decodeOutcome(at.vout, outcome).kind;
    out.push({ txid: rpcHex(txid), height: at.height, vout: at.vout, kind, reason, reasonText: REASON_TEXT[reason] });
    last = Buffer.from(k);
  }
  return { height: tip.height, rejected: out, nextCursor: more && last ? encodeCursor(last) : null };
}

/**
 * The rejected attempts that named `script` as their stake, in chain order
 * ('J' rows). `recorded` is false for an index created before those rows
 * were kept: its list may then miss attempts.
 */
export async function stakeRejections(db: ReadDB, script: Uint8Array): Promise<{ height: number; recorded: boolean; rejected: RejectedAttempt[] }> {
  const tip = await requireTip(db);
  const recorded = (await db.get(K.meta(STAKE_REJECTIONS_META))) !== undefined;
  const out: RejectedAttempt[] = [];
  for await (const [k, v] of db.iterator(K.stakeRejectedOf(script))) {
    const { txid, reason } = decodeRejected(v);
    const at = parse.stakeRejected(k);
    const outcome = await db.get(K.outcome(txid, at.vout));
    const kind = outcome === undefined ? null : decodeOutcome(at.vout, outcome).kind;
    out.push({ txid: rpcHex(txid), height: at.height, vout: at.vout, kind, reason, reasonText: REASON_TEXT[reason] });
  }
  return { height: tip.height, recorded, rejected: out };
}
