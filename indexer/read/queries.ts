import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { MuHash3072 } from '../../script/muhash.js';
import { RegistryRoot } from '../../script/root.js';
import { decodeAmount, decodeCoin, decodeEvent, decodeHeightState, decodeOutcome, decodeRegistration, decodeRejected, decodeTip, registrationScript, type HeightState } from '../store/codec.js';
import { K, P, parse, regId, regIdParts } from '../store/layout.js';
import { clockAt, forecast, type Clock, type Forecast } from './forecast.js';
import type { ReadDB } from './snapshot.js';
import type { Outcome, Registration, RegistryEvent, Tip } from '../types.js';
import { QueryError } from './errors.js';

/*
 * Read-only questions about an index. Answers about a past height are
 * rebuilt from each script's event history, so the same code answers for the
 * tip and for any height still in the index.
 */

export { QueryError } from './errors.js';

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** One node of the interchange format (docs/spec.md §2.7). */
export interface ExportNode {
  stakeScript: string;
  address: string | null;
  status: 'active' | 'expired' | 'lapsed';
  firstHeight: number;
  firstTxid: string;
  tipHeight: number;
  tipTxid: string;
  timestamp: number;
  renewals: number;
  expiryHeight: number;
  endedHeight: number | null;
  balance: string;
}

export interface ExportRejected {
  txid: string;
  height: number;
  vout: number;
  reason: string;
}

export interface ExportJson {
  network: string;
  height: number;
  tip: string;
  root: string;
  nodes: ExportNode[];
  rejected: ExportRejected[];
}

/** The tip, or a QueryError if the index is empty. */
export async function requireTip(db: ReadDB): Promise<Tip> {
  const raw = await db.get(K.tip());
  return tipOrRefuse(raw === undefined ? null : decodeTip(raw));
}

/** A tip, or the QueryError every reader gives for an empty index. */
export function tipOrRefuse<T>(tip: T | null): T {
  if (tip === null) throw new QueryError('the index is empty; run a recount or the indexer first');
  return tip;
}

/** Validates `--height`/`--at` against the index. */
export async function resolveHeight(db: ReadDB, height: number | undefined): Promise<number> {
  return heightUpTo((await requireTip(db)).height, height);
}

/** `height` checked against a tip (default: the tip itself). */
export function heightUpTo(tipHeight: number, height: number | undefined): number {
  if (height === undefined) return tipHeight;
  if (!Number.isInteger(height) || height < 0) throw new QueryError(`height must be a whole number ≥ 0, got ${height}`);
  if (height > tipHeight) throw new QueryError(`height ${height} is above the index tip ${tipHeight}`);
  return height;
}

export async function blockHashAt(db: ReadDB, height: number): Promise<Buffer> {
  const h = await db.get(K.blockHash(height));
  if (h === undefined) throw new QueryError(`no block at height ${height} in the index`);
  return h;
}

async function heightStateAt(db: ReadDB, height: number): Promise<HeightState> {
  const s = await db.get(K.heightState(height));
  if (s === undefined) throw new QueryError(`no registry state stored for height ${height}`);
  return decodeHeightState(s);
}

/** The registry root at a height, from its stored accumulator. */
export async function rootAt(db: ReadDB, height: number): Promise<string> {
  return RegistryRoot.deserialize((await heightStateAt(db, height)).registry).finalize();
}

/** The proof root (docs/spec.md §2.9) stored for a height, lowercase hex. */
export async function proofRootAt(db: ReadDB, height: number): Promise<string> {
  return (await heightStateAt(db, height)).proofRoot.toString('hex');
}

/** A stake script's history, oldest first, with the key fields parsed. */
export async function eventsOf(db: ReadDB, script: Uint8Array): Promise<RegistryEvent[]> {
  const out: RegistryEvent[] = [];
  for await (const rows of rowBatches(db, K.eventsOf(script))) {
    for (const [k, v] of rows) {
      const e = parse.event(k);
      out.push(decodeEvent(e.height, e.txIndex, e.kind, v));
    }
  }
  return out;
}

/**
 * Replays one script's events up to `height`; returns every registration of
 * the script as of then, oldest first (the last is the current one).
 */
export function replay(script: Buffer, events: RegistryEvent[], height: number): Registration[] {
  const regs: Registration[] = [];
  const byId = new Map<string, Registration>();
  for (const e of events) {
    if (e.height > height) break;
    const id = `${e.firstHeight}:${e.firstIndex}`;
    if (e.kind === 'registered') {
      const r: Registration = {
        stakeScript: script, firstHeight: e.firstHeight, firstIndex: e.firstIndex, firstTxid: e.txid!,
        tipHeight: e.height, tipTxid: e.txid!, timestamp: e.timestamp, renewals: 0,
        expiryHeight: e.expiryHeight, status: 'active', endedHeight: null,
      };
      regs.push(r);
      byId.set(id, r);
      continue;
    }
    const r = byId.get(id);
    if (!r) throw new QueryError(`index inconsistent: ${e.kind} event for an unknown registration ${id}`);
    if (e.kind === 'renewed') {
      r.tipHeight = e.height;
      r.tipTxid = e.txid!;
      r.timestamp = e.timestamp;
      r.renewals += 1;
      r.expiryHeight = e.expiryHeight;
    } else {
      r.status = e.kind;
      r.endedHeight = e.height;
    }
  }
  return regs;
}

/** The script's balance at the end of block `height` (history is kept from its first registration on). */
export async function stakeBalanceAt(db: ReadDB, script: Uint8Array, height: number): Promise<bigint> {
  const range = K.stakeBalancesOf(script);
  for await (const [, v] of db.iterator({ gte: range.gte, lte: K.stakeBalance(script, height), reverse: true, limit: 1 })) {
    return decodeAmount(v);
  }
  return 0n;
}

export async function balanceNow(db: ReadDB, script: Uint8Array): Promise<bigint> {
  const v = await db.get(K.balance(script));
  return v === undefined ? 0n : decodeAmount(v);
}

/** Where a registration began: its place in FIRST_SEEN order. */
export type RegPlace = Pick<Registration, 'firstHeight' | 'firstIndex'>;

/** Every script that ever had a registration. */
export async function registeredScripts(db: ReadDB): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const k of db.keys(K.all(P.current))) out.push(parse.current(k).script);
  return out;
}

export const byFirstSeen = (a: RegPlace, b: RegPlace): number =>
  a.firstHeight - b.firstHeight || a.firstIndex - b.firstIndex;

/**
 * Each script's current registration as of `height`, in FIRST_SEEN order.
 * One scan of the event rows, which are grouped by script, rather than one
 * range read per script.
 */
export async function registrationsAt(db: ReadDB, height: number): Promise<Registration[]> {
  const out: Registration[] = [];
  for await (const [script, events] of eventHistories(db)) {
    const regs = replay(script, events, height);
    if (regs.length > 0) out.push(regs[regs.length - 1]!);
  }
  return out.sort(byFirstSeen);
}

/**
 * The regId to read on from, just after a place of 32-bit height: a cursor
 * may name a position past 32 bits, which comes after every registration
 * of its height, as the last one a 32-bit position can name does.
 */
function placeId(p: RegPlace): Buffer {
  return regId(p.firstHeight, Math.min(p.firstIndex, 0xffffffff));
}

/** Rows walked before `registrationsFrom` gives up on reading each one's events and scans them all. */
const WALK_LIMIT = 3000;

/**
 * `registrationsAt` read lazily, from just after registration `after`: a
 * page costs the rows it passes over, not a scan of every script. Walks the
 * registration rows begun by `height` (kept for every registration, keyed in
 * FIRST_SEEN order) and keeps each one that `replay` of its script's events
 * makes the script's registration at `height`. A reader still asking after
 * `walkLimit` rows (a filter few match) gets the rest from one scan of the
 * event rows instead of a range read per script.
 */
export async function* registrationsFrom(db: ReadDB, height: number, after: RegPlace | null, walkLimit = WALK_LIMIT): AsyncGenerator<Registration> {
  if (after !== null && after.firstHeight > 0xffffffff) return;
  let from = after === null ? null : placeId(after);
  let walked = 0;
  let more = false;
  walk: for await (const rows of rowBatches(db, K.registrationsBegunByAfter(height, from))) {
    for (const [k, v] of rows) {
      if (walked++ >= walkLimit) {
        more = true;
        break walk;
      }
      const row = parse.registration(k);
      from = row.id;
      const script = registrationScript(v);
      const regs = replay(script, await eventsOf(db, script), height);
      const r = regs[regs.length - 1];
      if (r !== undefined && r.firstHeight === row.firstHeight && r.firstIndex === row.firstIndex) yield r;
    }
  }
  if (!more) return;
  const last = from === null ? null : regIdParts(from);
  for (const r of await registrationsAt(db, height)) {
    if (last === null || byFirstSeen(r, last) > 0) yield r;
  }
}

/**
 * The registrations live at the end of block `height` that began in a block
 * up to `begunBy`, in FIRST_SEEN order, each as it stood at `height`: the
 * live part of `registrationsAt(db, height)` (a stake has one registration
 * at a time), found from the lifetime rows of the registrations not ended by
 * then instead of a replay of every stake's history. A registration renewed
 * after `height` is replayed from its own events; the rest are their stored
 * rows, which nothing after `height` changed but the end.
 */
export async function liveRegistrationsAt(db: ReadDB, height: number, begunBy: number): Promise<Registration[]> {
  const out: Registration[] = [];
  for await (const r of liveRegistrationsFrom(db, height, null, begunBy)) out.push(r);
  return out;
}

/** Registration rows read at once by `liveRegistrationsFrom`: few for the first page, more for a reader that goes on. */
const LIVE_FIRST_BATCH = 16;
const LIVE_MAX_BATCH = 1024;

/**
 * `liveRegistrationsAt` read lazily, from just after registration `after`:
 * the one reading of "live at the end of block `height`" (begun by then,
 * ended after it or not at all) over the lifetime rows. The rows of the
 * registrations still open are keyed `OPEN ‖ regId`, FIRST_SEEN order, so
 * at the tip this is one range read from the cursor and costs what the
 * reader takes, whatever the chain's history. At a past height the
 * registrations that ended after it are also live then: their rows are
 * read whole (grouped by end height), sorted and merged in, so the extra
 * cost is the registrations ended since `height`, not those ended before.
 */
export async function* liveRegistrationsFrom(db: ReadDB, height: number, after: RegPlace | null, begunBy = height): AsyncGenerator<Registration> {
  if (after !== null && after.firstHeight > 0xffffffff) return;
  const last = Math.min(height, begunBy);
  const from = after === null ? null : placeId(after);
  const endedSince: Buffer[] = [];
  for await (const rows of rowBatches(db, K.lifetimesEndedAfter(height))) {
    for (const [k] of rows) {
      const id = parse.lifetimeId(k);
      if (regIdParts(id).firstHeight <= last && (from === null || Buffer.compare(id, from) > 0)) endedSince.push(Buffer.from(id));
    }
  }
  endedSince.sort(Buffer.compare);
  let batch: Buffer[] = [];
  let size = LIVE_FIRST_BATCH;
  let i = 0;
  for await (const k of db.keys(K.openLifetimesAfter(from, last))) {
    const id = parse.lifetimeId(k);
    while (i < endedSince.length && Buffer.compare(endedSince[i]!, id) < 0) batch.push(endedSince[i++]!);
    batch.push(Buffer.from(id));
    if (batch.length >= size) {
      yield* await liveAsOf(db, batch, height);
      batch = [];
      size = Math.min(size * 2, LIVE_MAX_BATCH);
    }
  }
  batch.push(...endedSince.slice(i));
  for (let j = 0; j < batch.length; j += LIVE_MAX_BATCH) yield* await liveAsOf(db, batch.slice(j, j + LIVE_MAX_BATCH), height);
}

/** The registrations `ids` (live at the end of block `height`) as they stood then. */
async function liveAsOf(db: ReadDB, ids: Buffer[], height: number): Promise<Registration[]> {
  const out: Registration[] = [];
  for (const raw of await db.getMany(ids.map((id) => K.registration(id)))) {
    if (raw === undefined) throw new QueryError('index inconsistent: a lifetime row without its registration');
    const r = decodeRegistration(raw);
    if (r.tipHeight <= height) {
      out.push({ ...r, status: 'active', endedHeight: null });
      continue;
    }
    const then = replay(r.stakeScript, await eventsOf(db, r.stakeScript), height).find((x) => x.firstHeight === r.firstHeight && x.firstIndex === r.firstIndex);
    if (then === undefined) throw new QueryError('index inconsistent: a live registration missing from its events');
    out.push(then);
  }
  return out;
}

type Row = [Buffer, Buffer];
type Batched = AsyncIterable<Row> & { nextv?: (size: number) => Promise<Row[]>; close?: () => Promise<void> };

/**
 * The rows of a range a thousand at a time: LevelDB iterators hand out
 * batches (`nextv`), which saves a promise per row on scans of every stake's
 * history. Falls back to row by row for a reader without them.
 */
export async function* rowBatches(db: ReadDB, range: { gt?: Buffer; gte?: Buffer; lt: Buffer }, size = 1000): AsyncGenerator<Row[]> {
  const it = db.iterator(range) as Batched;
  if (typeof it.nextv !== 'function') {
    for await (const row of it) yield [row];
    return;
  }
  try {
    for (let rows = await it.nextv(size); rows.length > 0; rows = await it.nextv(size)) yield rows;
  } finally {
    await it.close?.();
  }
}

/** Every stake script's whole event history, one script at a time, in one scan of the event rows (grouped by script). */
export async function* eventHistories(db: ReadDB): AsyncGenerator<[Buffer, RegistryEvent[]]> {
  let script: Buffer | null = null;
  let events: RegistryEvent[] = [];
  for await (const rows of rowBatches(db, K.all(P.event))) {
    for (const [k, v] of rows) {
      const e = parse.event(k);
      if (script === null || !script.equals(e.script)) {
        if (script !== null) yield [script, events];
        script = Buffer.from(e.script);
        events = [];
      }
      events.push(decodeEvent(e.height, e.txIndex, e.kind, v));
    }
  }
  if (script !== null) yield [script, events];
}

/** Every registered script's balance at the end of block `height` (latin1 script → balance), in one scan. */
export async function stakeBalancesAt(db: ReadDB, height: number): Promise<Map<string, bigint>> {
  const out = new Map<string, bigint>();
  for await (const rows of rowBatches(db, K.all(P.stakeBalance))) {
    for (const [k, v] of rows) {
      const b = parse.stakeBalance(k);
      if (b.height <= height) out.set(b.script.toString('latin1'), decodeAmount(v));
    }
  }
  return out;
}

export function exportNode(r: Registration, balance: bigint, params: NetworkParams): ExportNode {
  return {
    stakeScript: r.stakeScript.toString('hex'),
    address: scriptToAddress(r.stakeScript, params),
    status: r.status,
    firstHeight: r.firstHeight,
    firstTxid: rpcHex(r.firstTxid),
    tipHeight: r.tipHeight,
    tipTxid: rpcHex(r.tipTxid),
    timestamp: r.timestamp,
    renewals: r.renewals,
    expiryHeight: r.expiryHeight,
    endedHeight: r.endedHeight,
    balance: balance.toString(),
  };
}

export async function rejectedUpTo(db: ReadDB, height: number): Promise<ExportRejected[]> {
  const out: ExportRejected[] = [];
  for await (const [k, v] of db.iterator(K.rejectedUpTo(height))) {
    const { txid, reason } = decodeRejected(v);
    const at = parse.rejected(k);
    out.push({ txid: rpcHex(txid), height: at.height, vout: at.vout, reason });
  }
  return out;
}

/** The interchange JSON of docs/spec.md §2.7, as of `height` (default: the tip). */
export async function exportAt(db: ReadDB, params: NetworkParams, height?: number): Promise<ExportJson> {
  const h = await resolveHeight(db, height);
  const regs = await registrationsAt(db, h);
  const balances = await stakeBalancesAt(db, h);
  const nodes = regs.map((r) => exportNode(r, balances.get(r.stakeScript.toString('latin1')) ?? 0n, params));
  return {
    network: params.name,
    height: h,
    tip: rpcHex(await blockHashAt(db, h)),
    root: await rootAt(db, h),
    nodes,
    rejected: await rejectedUpTo(db, h),
  };
}

/** What became of a transaction's announcement attempts; empty when it had none (or is unknown). */
export async function outcomesOf(db: ReadDB, txid: Uint8Array): Promise<Outcome[]> {
  const out: Outcome[] = [];
  for await (const [k, v] of db.iterator(K.outcomesOf(txid))) out.push(decodeOutcome(parse.outcome(k).vout, v));
  return out;
}

/**
 * Core's `gettxoutsetinfo muhash` at a height (byte-reversed hex), or null
 * when the index was built without `--utxo-hash`.
 */
export async function utxoHashAt(db: ReadDB, height: number): Promise<string | null> {
  const { utxo } = await heightStateAt(db, height);
  return utxo === null ? null : MuHash3072.deserialize(utxo).finalize().reverse().toString('hex');
}

export interface HistoryEntry {
  event: RegistryEvent['kind'];
  height: number;
  txid: string | null;
  registration: string;
  timestamp: number;
  expiryHeight: number;
}

export interface NodeInfo {
  height: number;
  stakeScript: string;
  balance: string;
  registration: (ExportNode & { age: number } & Forecast) | null;
  history: HistoryEntry[];
}

/** One stake at the tip: current registration, full history (every registration), balance. */
export async function nodeInfo(db: ReadDB, params: NetworkParams, script: Buffer): Promise<NodeInfo> {
  const tip = await requireTip(db);
  return nodeInfoOf(script, await eventsOf(db, script), await balanceNow(db, script), await clockAt(db, tip.height), params);
}

/** `nodeInfo` from its rows: the stake's events, its balance now, and the clock of the tip. */
export function nodeInfoOf(script: Buffer, events: RegistryEvent[], balance: bigint, clock: Clock, params: NetworkParams): NodeInfo {
  const regs = replay(script, events, clock.height);
  const cur = regs[regs.length - 1];
  return {
    height: clock.height,
    stakeScript: script.toString('hex'),
    balance: balance.toString(),
    registration: cur ? {
      ...exportNode(cur, balance, params),
      age: clock.height - cur.firstHeight,
      ...forecast(cur, balance, clock, params),
    } : null,
    history: events.map((e) => ({
      event: e.kind, height: e.height, txid: e.txid ? rpcHex(e.txid) : null,
      registration: `${e.firstHeight}:${e.firstIndex}`, timestamp: e.timestamp, expiryHeight: e.expiryHeight,
    })),
  };
}

export interface Explanation {
  vout: number;
  height: number;
  kind: Outcome['kind'];
  accepted: boolean;
  reason: string | null;
}

/** The outcome of each announcement attempt of a transaction (txid in RPC hex). */
export async function explainTx(db: ReadDB, txidRpcHex: string): Promise<Explanation[]> {
  return explainOutcomes(await outcomesOf(db, Buffer.from(txidRpcHex, 'hex').reverse()));
}

export function explainOutcomes(outcomes: readonly Outcome[]): Explanation[] {
  return outcomes.map((o) => ({ vout: o.vout, height: o.height, kind: o.kind, accepted: o.reason === null, reason: o.reason }));
}

export interface ScriptUtxo {
  txid: string;
  vout: number;
  value: string;
  height: number;
  coinbase: boolean;
}

/** The unspent outputs paying `script`, from the script → outpoints index (for funding transactions). */
export async function utxosOf(db: ReadDB, script: Uint8Array): Promise<ScriptUtxo[]> {
  const ops: Buffer[] = [];
  for await (const k of db.keys(K.scriptCoinRange(script))) ops.push(parse.scriptCoin(k).outpoint);
  const coins = await db.getMany(ops.map((op) => K.coin(op)));
  return coins.map((raw, i) => {
    if (raw === undefined) throw new QueryError('index inconsistent: script index names a spent coin');
    return scriptUtxo(ops[i]!, decodeCoin(raw));
  });
}

/** An unspent output as the API lists it, from its outpoint (txid in internal order ‖ u32be vout) and coin. */
export function scriptUtxo(outpoint: Uint8Array, coin: { value: bigint; height: number; coinbase: boolean }): ScriptUtxo {
  const op = Buffer.from(outpoint);
  return { txid: rpcHex(op.subarray(0, 32)), vout: op.readUInt32BE(32), value: coin.value.toString(), height: coin.height, coinbase: coin.coinbase };
}
