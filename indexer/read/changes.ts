import { decodeAmount, decodeCoin, decodeEvent, decodeOutcome, decodeRejected } from '../store/codec.js';
import { K, P, parse } from '../store/layout.js';
import { decodeUndo, type UndoRecord } from '../store/undo.js';
import { blockHashAt, eventsOf, proofRootAt, QueryError, replay, rootAt, rowBatches, utxoHashAt } from './queries.js';
import type { ReadDB } from './snapshot.js';
import type { Coin, Outcome, Registration, RegistryEvent } from '../types.js';

/*
 * What each block changed in the registry, read back from the committed rows
 * of an index: what a copy kept elsewhere (the PostgreSQL mirror) applies to
 * follow it. Events and stake balances are keyed by script, not by height, so
 * one pass scans their keys once and keeps those above a height.
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

export interface BlockRow {
  height: number;
  /** RPC-order hex, as bitcoind prints it. */
  hash: string;
  registryRoot: string;
  proofRoot: string;
  utxoHash: string | null;
  /** The header's time (unix seconds); null in an index without block-time rows. */
  time: number | null;
}

export interface ScriptEvent {
  script: Buffer;
  event: RegistryEvent;
}

export interface RejectionRow {
  height: number;
  txIndex: number;
  vout: number;
  txid: string;
  reason: string;
  /** The stake the attempt named (hex; its 'J' row), or null: too malformed to name one, or an index without 'J' rows then. */
  stakeScript: string | null;
}

export interface BalanceRow {
  script: Buffer;
  height: number;
  balance: bigint;
}

export interface OutcomeRow {
  /** RPC-order hex. */
  txid: string;
  outcome: Outcome;
}

export interface BlockChanges {
  block: BlockRow;
  events: ScriptEvent[];
  rejections: RejectionRow[];
  balances: BalanceRow[];
  /** Every announcement's outcome, accepted or not. */
  outcomes: OutcomeRow[];
}

export async function blockRowAt(db: ReadDB, height: number): Promise<BlockRow> {
  const time = await db.get(K.blockTime(height));
  return {
    height, hash: rpcHex(await blockHashAt(db, height)), registryRoot: await rootAt(db, height), proofRoot: await proofRootAt(db, height),
    utxoHash: await utxoHashAt(db, height), time: time === undefined ? null : time.readUInt32LE(0),
  };
}

/** Keys under `prefix` whose height (by `heightOf`) is in (from, to], with their values. */
async function rowsAbove(db: ReadDB, prefix: number, heightOf: (k: Buffer) => number, from: number, to: number): Promise<Array<[Buffer, Buffer]>> {
  const keys: Buffer[] = [];
  for await (const k of db.keys(K.all(prefix))) {
    const h = heightOf(k);
    if (h > from && h <= to) keys.push(k);
  }
  const values = await db.getMany(keys);
  return keys.map((k, i) => [k, values[i]!]);
}

/**
 * Every block's changes in heights (from, to], oldest first: its hash and
 * roots, its registry events, its rejected announcements and the stake
 * balances it changed. Read from one snapshot, so the blocks are those of one
 * chain.
 */
export async function changesBetween(db: ReadDB, from: number, to: number): Promise<BlockChanges[]> {
  const out: BlockChanges[] = [];
  for (let h = from + 1; h <= to; h++) out.push({ block: await blockRowAt(db, h), events: [], rejections: [], balances: [], outcomes: [] });
  if (out.length === 0) return out;
  const at = (h: number): BlockChanges => out[h - from - 1]!;
  for (const [k, v] of await rowsAbove(db, P.event, (k) => parse.event(k).height, from, to)) {
    const e = parse.event(k);
    at(e.height).events.push({ script: Buffer.from(e.script), event: decodeEvent(e.height, e.txIndex, e.kind, v) });
  }
  for (const [k, v] of await rowsAbove(db, P.stakeBalance, (k) => parse.stakeBalance(k).height, from, to)) {
    const b = parse.stakeBalance(k);
    at(b.height).balances.push({ script: Buffer.from(b.script), height: b.height, balance: decodeAmount(v) });
  }
  // Outcomes are keyed by txid; each value holds its height.
  for await (const rows of rowBatches(db, K.all(P.outcome))) {
    for (const [k, v] of rows) {
      const o = decodeOutcome(parse.outcome(k).vout, v);
      if (o.height > from && o.height <= to) at(o.height).outcomes.push({ txid: rpcHex(parse.outcome(k).txid), outcome: o });
    }
  }
  // Keyed by script: the stake each rejection named, by where the rejection sits.
  const stakes = new Map<string, string>();
  for (const [k] of await rowsAbove(db, P.stakeRejected, (k) => parse.stakeRejected(k).height, from, to)) {
    const j = parse.stakeRejected(k);
    stakes.set(`${j.height}:${j.txIndex}:${j.vout}`, j.script.toString('hex'));
  }
  for await (const [k, v] of db.iterator({ gte: K.rejected(from + 1, 0, 0), lt: K.rejectedUpTo(to).lt })) {
    const r = parse.rejected(k);
    const { txid, reason } = decodeRejected(v);
    const stakeScript = stakes.get(`${r.height}:${r.txIndex}:${r.vout}`) ?? null;
    at(r.height).rejections.push({ height: r.height, txIndex: r.txIndex, vout: r.vout, txid: rpcHex(txid), reason, stakeScript });
  }
  return out;
}

/** Every registration of `script` as of `height` (oldest first; the last is its current one), from the script's events. */
export async function registrationsOfAt(db: ReadDB, script: Buffer, height: number): Promise<Registration[]> {
  return replay(script, await eventsOf(db, script), height);
}

/** An output a block created, as the mirror keeps it. */
export interface CoinRow {
  /** txid (internal order) ‖ u32be vout: the index's key, and its order. */
  outpoint: Buffer;
  /** Hex. */
  script: string;
  value: bigint;
  height: number;
  coinbase: boolean;
}

export interface BlockCoins {
  created: CoinRow[];
  /** Outpoints of the coins the block spent. */
  spent: Buffer[];
}

/**
 * The coins each block in (from, to] created and spent, oldest first, from
 * its undo record: null if a block has none (an index loaded from a
 * snapshot, or with --prune-undo). `to` must be the snapshot's tip: a coin
 * created in the window is then either still a 'u' row or spent in the
 * window, where its undo entry holds it.
 */
export async function coinChangesBetween(db: ReadDB, from: number, to: number): Promise<BlockCoins[] | null> {
  const ops: UndoRecord['coinOps'][] = [];
  for (let h = from + 1; h <= to; h++) {
    const raw = await db.get(K.undo(h));
    if (raw === undefined) return null;
    ops.push(decodeUndo(raw).coinOps);
  }
  const spentInWindow = new Map<string, Coin>();
  for (const block of ops) for (const op of block) if (!op.added) spentInWindow.set(op.outpoint.toString('latin1'), op.coin);
  const unspent = ops.flatMap((block) => block.filter((op) => op.added && !spentInWindow.has(op.outpoint.toString('latin1'))).map((op) => op.outpoint));
  const rows = await db.getMany(unspent.map((op) => K.coin(op)));
  const atTip = new Map(unspent.map((op, i) => [op.toString('latin1'), rows[i]]));
  return ops.map((block) => {
    const out: BlockCoins = { created: [], spent: [] };
    for (const op of block) {
      if (!op.added) {
        out.spent.push(Buffer.from(op.outpoint));
        continue;
      }
      const key = op.outpoint.toString('latin1');
      const raw = atTip.get(key);
      const coin = spentInWindow.get(key) ?? (raw === undefined ? undefined : decodeCoin(raw));
      if (coin === undefined) throw new QueryError('index inconsistent: an undo record names a created coin that is neither unspent nor spent since');
      out.created.push({ outpoint: Buffer.from(op.outpoint), script: coin.script.toString('hex'), value: coin.value, height: coin.height, coinbase: coin.coinbase });
    }
    return out;
  });
}
