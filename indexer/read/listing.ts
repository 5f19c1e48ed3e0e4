import type { NetworkParams } from '../../script/params.js';
import { decodeRegistration } from '../store/codec.js';
import { K, P, parse } from '../store/layout.js';
import {
  balanceNow, eventHistories, exportNode, QueryError, registrationsAt, replay, requireTip, resolveHeight, stakeBalanceAt, type ExportNode,
} from './queries.js';
import { clockAt, forecast, type Forecast } from './forecast.js';
import type { ReadDB } from './snapshot.js';
import type { Registration, RegStatus } from '../types.js';

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

/**
 * One page of the registry in FIRST_SEEN order. At the tip this walks the
 * FIRST_SEEN index, so a page costs what it returns; a past height is
 * rebuilt from the event history.
 */
export async function pageNodes(
  db: ReadDB, params: NetworkParams,
  opts: { status?: StatusFilter; at?: number; limit?: number; cursor?: string; expiringWithin?: number } = {},
): Promise<NodePage> {
  const tip = await requireTip(db);
  const h = await resolveHeight(db, opts.at);
  const status = opts.status ?? 'active';
  const limit = Math.min(opts.limit ?? 100, MAX_PAGE);
  const from = opts.cursor === undefined ? null : decodeCursor(opts.cursor);
  const picked: Registration[] = [];
  let more = false;
  const take = (r: Registration): boolean => {
    if (from && !after(r, from)) return true;
    if (status !== 'all' && r.status !== status) return true;
    if (opts.expiringWithin !== undefined && !(r.status === 'active' && r.expiryHeight - h <= opts.expiringWithin)) return true;
    if (picked.length === limit) {
      more = true;
      return false;
    }
    picked.push(r);
    return true;
  };
  if (h === tip.height) {
    for await (const k of db.keys(K.firstSeenAfter(from ? Buffer.from([...u32be(from.firstHeight), ...u32be(from.firstIndex)]) : null))) {
      const raw = await db.get(K.registration(parse.firstSeen(k).id));
      if (raw === undefined) throw new QueryError('index inconsistent: FIRST_SEEN row without its registration');
      if (!take(decodeRegistration(raw))) break;
    }
  } else {
    for (const r of await registrationsAt(db, h)) if (!take(r)) break;
  }
  const nodes: ListedNode[] = [];
  const clock = await clockAt(db, h);
  for (const r of picked) {
    const balance = h === tip.height ? await balanceNow(db, r.stakeScript) : await stakeBalanceAt(db, r.stakeScript, h);
    nodes.push({ ...exportNode(r, balance, params), age: h - r.firstHeight, ...forecast(r, balance, clock, params) });
  }
  return { height: h, nodes, nextCursor: more && picked.length > 0 ? encodeCursor(picked[picked.length - 1]!) : null };
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
  const nodes: Payee[] = [];
  for (const r of await registrationsAt(db, to)) {
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
  const counts: Record<RegStatus, number> = { active: 0, expired: 0, lapsed: 0 };
  const delta = new Map<number, number>();
  for await (const [script, events] of eventHistories(db)) {
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
