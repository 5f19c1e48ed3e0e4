import type { NetworkParams } from '../../script/params.js';
import { decodeRegistration } from '../store/codec.js';
import { K, P, parse } from '../store/layout.js';
import {
  balanceNow, eventHistories, exportNode, heightUpTo, liveRegistrationsAt, liveRegistrationsFrom, QueryError, registrationsAt, registrationsFrom, replay, requireTip, resolveHeight, stakeBalanceAt, type ExportNode,
} from './queries.js';
import { clockAt, forecast, type Clock, type Forecast } from './forecast.js';
import type { ReadDB } from './snapshot.js';
import type { Registration, RegistryEvent, RegStatus } from '../types.js';

export type StatusFilter = RegStatus | 'all';

export interface ListedNode extends ExportNode, Forecast {
  age: number;
}

export interface NodePage {
  height: number;
  nodes: ListedNode[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

export const MAX_PAGE = 1000;

function encodeCursor(r: Registration): string {
  return Buffer.from(`${r.firstHeight}:${r.firstIndex}`).toString('base64url');
}

function decodeCursor(cursor: string): { firstHeight: number; firstIndex: number } {
  const m = /^(\d{1,10}):(\d{1,10})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new QueryError(`cursor "${cursor}" is not one this server handed out`);
  return { firstHeight: Number(m[1]), firstIndex: Number(m[2]) };
}

const after = (r: Registration, c: { firstHeight: number; firstIndex: number }): boolean =>
  r.firstHeight > c.firstHeight || (r.firstHeight === c.firstHeight && r.firstIndex > c.firstIndex);

export interface PageQuery { status?: StatusFilter; at?: number; limit?: number; cursor?: string; expiringWithin?: number }

type Cursor = { firstHeight: number; firstIndex: number };

/** The rows a page of the registry is made of, from whichever store holds them. */
export interface PageRows {
  /**
   * The registrations as of `height` in FIRST_SEEN order (each script's
   * current one), from just after `after` if given; read lazily, as the
   * page stops reading once it is full.
   */
  registrations(height: number, after: Cursor | null): AsyncIterable<Registration> | Iterable<Registration>;
  /**
   * The part of `registrations(height, after)` that is active at `height`,
   * in the same order and as lazily, read without passing over the
   * registrations that ended by then: what a page that lists only active
   * ones walks, so that it costs the active set, not the chain's history.
   */
  live(height: number, after: Cursor | null): AsyncIterable<Registration> | Iterable<Registration>;
  /** Each script's balance at the end of block `height`. */
  balances(scripts: Buffer[], height: number): Promise<bigint[]>;
  clock(height: number): Promise<Clock>;
}

/**
 * One page of the registry in FIRST_SEEN order. A page of active ones walks
 * the lifetime rows of the registrations live at its height
 * (`liveRegistrationsFrom`): at the tip those still open, so it costs what
 * it returns. Any other page walks, at the tip, the FIRST_SEEN index, and at
 * a past height the registration rows begun by then, replaying each one's
 * events (`registrationsFrom`).
 */
export async function pageNodes(db: ReadDB, params: NetworkParams, opts: PageQuery = {}): Promise<NodePage> {
  const tip = await requireTip(db);
  return pageOf(indexPageRows(db, tip.height), tip.height, params, opts);
}

/** The rows of a page from the index whose tip is at `tipHeight`. */
export function indexPageRows(db: ReadDB, tipHeight: number): PageRows {
  return {
    async* registrations(h, from) {
      if (h !== tipHeight) {
        yield* registrationsFrom(db, h, from);
        return;
      }
      for await (const k of db.keys(K.firstSeenAfter(from ? Buffer.from([...u32be(from.firstHeight), ...u32be(from.firstIndex)]) : null))) {
        const raw = await db.get(K.registration(parse.firstSeen(k).id));
        if (raw === undefined) throw new QueryError('index inconsistent: FIRST_SEEN row without its registration');
        yield decodeRegistration(raw);
      }
    },
    live: (h, from) => liveRegistrationsFrom(db, h, from),
    async balances(scripts, h) {
      const out: bigint[] = [];
      for (const s of scripts) out.push(h === tipHeight ? await balanceNow(db, s) : await stakeBalanceAt(db, s, h));
      return out;
    },
    clock: (h) => clockAt(db, h),
  };
}

/** A page from its rows: the one reading of status, expiringWithin, limit and cursor. */
export async function pageOf(rows: PageRows, tipHeight: number, params: NetworkParams, opts: PageQuery): Promise<NodePage> {
  const h = heightUpTo(tipHeight, opts.at);
  const status = opts.status ?? 'active';
  const limit = Math.min(opts.limit ?? 100, MAX_PAGE);
  const from = opts.cursor === undefined ? null : decodeCursor(opts.cursor);
  const picked: Registration[] = [];
  let more = false;
  // Only an active registration can pass these filters: walk the live set alone.
  const onlyActive = status === 'active' || opts.expiringWithin !== undefined;
  for await (const r of onlyActive ? rows.live(h, from) : rows.registrations(h, from)) {
    if (from && !after(r, from)) continue;
    if (status !== 'all' && r.status !== status) continue;
    if (opts.expiringWithin !== undefined && !(r.status === 'active' && r.expiryHeight - h <= opts.expiringWithin)) continue;
    if (picked.length === limit) {
      more = true;
      break;
    }
    picked.push(r);
  }
  const nodes = await listedNodes(rows, picked, h, params);
  return { height: h, nodes, nextCursor: more && picked.length > 0 ? encodeCursor(picked[picked.length - 1]!) : null };
}

/** Registrations as listed at height `h`: each with its balance, age and renewal forecast. */
export async function listedNodes(rows: Pick<PageRows, 'balances' | 'clock'>, regs: Registration[], h: number, params: NetworkParams): Promise<ListedNode[]> {
  const clock = await rows.clock(h);
  const balances = await rows.balances(regs.map((r) => r.stakeScript), h);
  return regs.map((r, i): ListedNode => ({ ...exportNode(r, balances[i]!, params), age: h - r.firstHeight, ...forecast(r, balances[i]!, clock, params) }));
}

function u32be(n: number): number[] {
  return [(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

/** Every registration (all statuses) as of `at`, in FIRST_SEEN order: `pageNodes` without paging. */
export async function listNodes(db: ReadDB, params: NetworkParams, opts: { status?: StatusFilter; at?: number; expiringWithin?: number } = {}): Promise<{ height: number; nodes: ListedNode[] }> {
  const page = await pageNodes(db, params, { ...opts, limit: Number.MAX_SAFE_INTEGER });
  return { height: page.height, nodes: page.nodes };
}

export interface Payee {
  stakeScript: string;
  address: string | null;
  firstHeight: number;
  /** Blocks since firstHeight, at the end of the period. */
  age: number;
  /** Renewals as of the end of the period. */
  renewals: number;
}

/**
 * Nodes that were live at the end of every block from `from` to `to`
 * (inclusive), with one registration throughout: registered at or before
 * `from` and still active at `to` (an ended registration never comes back).
 * `minAge` keeps those whose age at `from` is at least that many blocks.
 */
export async function payouts(db: ReadDB, params: NetworkParams, from: number, to: number, minAge = 0): Promise<{ from: number; to: number; nodes: Payee[] }> {
  if (from > to) throw new QueryError(`from (${from}) must not be above to (${to})`);
  await resolveHeight(db, to);
  return payeesOf(await liveRegistrationsAt(db, to, from), params, from, to, minAge);
}

/** `payouts` from the registrations as of `to` (FIRST_SEEN order). */
export function payeesOf(regs: readonly Registration[], params: NetworkParams, from: number, to: number, minAge: number): { from: number; to: number; nodes: Payee[] } {
  const nodes: Payee[] = [];
  for (const r of regs) {
    if (r.status !== 'active' || r.firstHeight > from || from - r.firstHeight < minAge) continue;
    nodes.push({ stakeScript: r.stakeScript.toString('hex'), address: exportNode(r, 0n, params).address, firstHeight: r.firstHeight, age: to - r.firstHeight, renewals: r.renewals });
  }
  return { from, to, nodes };
}

/** Registrations by status at the tip (each script's current one), from the FIRST_SEEN index. */
export async function countByStatus(db: ReadDB): Promise<Record<RegStatus, number>> {
  const counts: Record<RegStatus, number> = { active: 0, expired: 0, lapsed: 0 };
  for await (const k of db.keys(K.all(P.firstSeen))) {
    const raw = await db.get(K.registration(parse.firstSeen(k).id));
    if (raw) counts[decodeRegistration(raw).status]++;
  }
  return counts;
}

/** The number of active registrations at the end of block `height`. */
export interface ActivePoint {
  height: number;
  active: number;
}

/** What one pass over the event keys tells about the whole registry. */
export interface RegistrySummary {
  /** Each stake's current registration by status (as `countByStatus`). */
  counts: Record<RegStatus, number>;
  /** Every height up to the tip where the number of active registrations changes, with the new number. */
  steps: ActivePoint[];
}

/**
 * Counts by status and the active-count steps, in one sequential scan of
 * the event rows: a registration counts as active from the end of its
 * firstHeight block until the end of the block it expired or lapsed in, and
 * each script's current status is what `replay` makes of its events (the one
 * reading of the event history; it attributes each event to its registration
 * by the ids the events store). Callers cache it per tip.
 */
export async function summarize(db: ReadDB): Promise<RegistrySummary> {
  return summaryOf(eventHistories(db));
}

/** `summarize` over every script's event history, one script at a time. */
export async function summaryOf(histories: AsyncIterable<[Buffer, RegistryEvent[]]> | Iterable<[Buffer, RegistryEvent[]]>): Promise<RegistrySummary> {
  const counts: Record<RegStatus, number> = { active: 0, expired: 0, lapsed: 0 };
  const delta = new Map<number, number>();
  for await (const [script, events] of histories) {
    const regs = replay(script, events, Infinity);
    if (regs.length > 0) counts[regs[regs.length - 1]!.status]++;
    for (const e of events) {
      if (e.kind !== 'renewed') delta.set(e.height, (delta.get(e.height) ?? 0) + (e.kind === 'registered' ? 1 : -1));
    }
  }
  const steps: ActivePoint[] = [];
  let active = 0;
  for (const h of [...delta.keys()].sort((a, b) => a - b)) {
    active += delta.get(h)!;
    steps.push({ height: h, active });
  }
  return { counts, steps };
}

/**
 * Samples `steps` at `points` heights spread evenly over [from, to], both
 * ends included (every height when the range is that short).
 */
export function sampleActive(steps: readonly ActivePoint[], from: number, to: number, points: number): ActivePoint[] {
  if (from > to) throw new QueryError(`from (${from}) must not be above to (${to})`);
  const span = to - from;
  const n = Math.max(2, points);
  const heights = span + 1 <= n ? Array.from({ length: span + 1 }, (_, i) => from + i)
    : [...new Set(Array.from({ length: n }, (_, i) => from + Math.round((i * span) / (n - 1))))];
  const out: ActivePoint[] = [];
  let i = 0;
  let active = 0;
  for (const height of heights) {
    while (i < steps.length && steps[i]!.height <= height) active = steps[i++]!.active;
    out.push({ height, active });
  }
  return out;
}
