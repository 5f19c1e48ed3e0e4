import type pg from 'pg';
import { paramsHash, type NetworkParams } from '../../script/params.js';
import { changesBetween, coinChangesBetween, registrationsOfAt, type CoinRow } from '../read/changes.js';
import { blockHashAt, rowBatches } from '../read/queries.js';
import { withSnapshot, type ReadDB } from '../read/snapshot.js';
import { decodeCoin, decodeTip } from '../store/codec.js';
import { coinKeyOutpoint, K, P } from '../store/layout.js';
import { STAKE_REJECTIONS_META, type DB } from '../store/store.js';
import type { Registration } from '../types.js';
import { migrate } from './schema.js';
import { applyBlocks, loadCoins, mirrorHashes, readCoinsState, readMeta, resetMirror, rewindTo, scriptsChangedAbove } from './writer.js';

/*
 * Bringing the mirror to the index's committed tip. The mirror is a function
 * of the index: each pass reads one LevelDB snapshot, finds where the
 * mirror's chain and the index's part (a reorg, or a mirror left ahead of a
 * restored index), rewinds the mirror to there and applies the blocks above.
 * A pass interrupted anywhere (a crash, PostgreSQL going away) leaves the
 * mirror at a block boundary, and the next pass goes on from there.
 */

/** The mirror belongs to another network, params or chain than the index: refused unless rebuilt. */
export class MirrorMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorMismatchError';
  }
}

/** Another process holds the mirror's writer lock. */
export class MirrorBusyError extends Error {
  constructor() {
    super('another nodereg process is writing this mirror (a `nodereg index --postgres` or `nodereg mirror`); stop it first, or mirror into another database');
    this.name = 'MirrorBusyError';
  }
}

/** Session-level advisory lock key: one writer per mirror. */
const WRITER_LOCK = 0x6e6f_6465; // 'node'
const LOCK_WAIT_MS = 10_000;

const REBUILD_HINT = 'mirror into an empty database, or rebuild this one with --postgres-rebuild';

/**
 * Takes the writer lock, runs the migrations and checks that the mirror is
 * one of `params` (a new mirror is made so); with `rebuild`, a mirror of other
 * params is emptied instead of refused.
 */
export async function prepareMirror(client: pg.ClientBase, params: NetworkParams, opts: { rebuild?: boolean; lockWaitMs?: number } = {}): Promise<void> {
  // Waits a while: the session of a writer that was just killed holds the lock until its server process notices.
  await client.query(`SET lock_timeout = '${Math.round(opts.lockWaitMs ?? LOCK_WAIT_MS)}ms'`);
  try {
    await client.query('SELECT pg_advisory_lock($1)', [WRITER_LOCK]);
  } catch (err) {
    if ((err as { code?: string }).code === '55P03') throw new MirrorBusyError();
    throw err;
  } finally {
    await client.query('SET lock_timeout = 0').catch(() => undefined);
  }
  await migrate(client);
  const meta = await readMeta(client);
  if (meta === null || opts.rebuild) {
    await resetMirror(client, params);
    return;
  }
  if (meta.network !== params.name || meta.paramsHash !== paramsHash(params)) {
    throw new MirrorMismatchError(`the mirror holds network ${meta.network} (params hash ${meta.paramsHash.slice(0, 12)}…), the index ${params.name} (${paramsHash(params).slice(0, 12)}…); ${REBUILD_HINT}`);
  }
}

export interface SyncOptions {
  /** Blocks per transaction (1 while following; more in a bulk catch-up). */
  readonly blocksPerTx: number;
  /** Empty the mirror instead of refusing one that shares no block with the index. */
  readonly rebuild?: boolean;
  readonly onProgress?: (height: number, target: number) => void;
  /** Heights read per scan of the event and balance rows (WINDOW unless a test asks for less). */
  readonly window?: number;
}

export interface SyncResult {
  /** The mirror's tip before the pass. */
  readonly before: number | null;
  /** Where the mirror was rewound to, or null if it needed no rewind. */
  readonly rewoundTo: number | null;
  readonly tip: { height: number; hash: string } | null;
  readonly applied: number;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** Heights read per scan of the event and balance rows during a long catch-up. */
const WINDOW = 5000;

/** The highest height at or below `top` where the mirror and the index hold the same block; -1 if none. */
async function forkPoint(client: pg.ClientBase, snap: ReadDB, top: number): Promise<number> {
  const step = 500;
  for (let hi = top; hi >= 0; hi -= step) {
    const lo = Math.max(0, hi - step + 1);
    const mirrored = await mirrorHashes(client, lo, hi);
    for (let h = hi; h >= lo; h--) {
      if (mirrored.get(h) === rpcHex(await blockHashAt(snap, h))) return h;
    }
  }
  return -1;
}

/** The index's 'u' rows, in batches. */
async function* coinsOf(snap: ReadDB): AsyncIterable<CoinRow[]> {
  for await (const rows of rowBatches(snap, K.all(P.coin))) {
    yield rows.map(([k, v]) => {
      const coin = decodeCoin(v);
      return { outpoint: Buffer.from(coinKeyOutpoint(k)), script: coin.script.toString('hex'), value: coin.value, height: coin.height, coinbase: coin.coinbase };
    });
  }
}

async function registrationsOf(snap: ReadDB, scripts: Iterable<string>, height: number): Promise<Map<string, Registration[]>> {
  const out = new Map<string, Registration[]>();
  for (const s of scripts) out.set(s, await registrationsOfAt(snap, Buffer.from(s, 'hex'), height));
  return out;
}

/** One pass: the mirror ends at the tip of a snapshot of `db` taken now. */
export async function syncMirror(client: pg.ClientBase, db: DB, params: NetworkParams, opts: SyncOptions): Promise<SyncResult> {
  return withSnapshot(db, async (snap) => {
    const meta = await readMeta(client);
    const before = meta?.tip ?? null;
    const raw = await snap.get(K.tip());
    const indexTip = raw === undefined ? null : decodeTip(raw);
    if (indexTip === null) return { before: before?.height ?? null, rewoundTo: null, tip: before, applied: 0 };
    const target = indexTip.height;
    const stakeRejections = (await snap.get(K.meta(STAKE_REJECTIONS_META))) !== undefined;

    let from = before === null ? -1 : before.height;
    let rewoundTo: number | null = null;
    const sameChain = before !== null && before.height <= target && rpcHex(await blockHashAt(snap, before.height)) === before.hash;
    if (before !== null && !sameChain) {
      const fork = await forkPoint(client, snap, Math.min(before.height, target));
      if (fork < 0 && !opts.rebuild) {
        throw new MirrorMismatchError(`the mirror's chain shares no block with the index's (mirror tip ${before.height} ${before.hash}); ${REBUILD_HINT}`);
      }
      const scripts = await scriptsChangedAbove(client, fork);
      await rewindTo(client, fork, scripts, await registrationsOf(snap, scripts, fork), params);
      from = rewoundTo = fork;
    }

    let applied = 0;
    let tip = from < 0 ? null : { height: from, hash: rpcHex(await blockHashAt(snap, from)) };
    const window = opts.window ?? WINDOW;
    // Coins go block by block when they stand at `from` and the blocks above fit in one window (each created coin is
    // then unspent in the snapshot or spent in the window); else they are loaded whole at the end.
    let coinsByBlock = (await readCoinsState(client)).height === from && target - from <= window;
    for (let lo = from; lo < target; lo = Math.min(lo + window, target)) {
      const changes = await changesBetween(snap, lo, Math.min(lo + window, target));
      const coins = coinsByBlock ? await coinChangesBetween(snap, lo, Math.min(lo + window, target)) : null;
      coinsByBlock &&= coins !== null;
      for (let i = 0; i < changes.length; i += opts.blocksPerTx) {
        const chunk = changes.slice(i, i + opts.blocksPerTx);
        const last = chunk[chunk.length - 1]!.block;
        const touched = new Set(chunk.flatMap((c) => c.events.map((e) => e.script.toString('hex'))));
        await applyBlocks(client, chunk, await registrationsOf(snap, touched, last.height), params, stakeRejections, coins?.slice(i, i + opts.blocksPerTx) ?? null);
        applied += chunk.length;
        tip = { height: last.height, hash: last.hash };
        opts.onProgress?.(last.height, target);
      }
    }
    if (tip !== null && (await readCoinsState(client)).height !== tip.height) await loadCoins(client, coinsOf(snap), tip.height);
    return { before: before?.height ?? null, rewoundTo, tip, applied };
  });
}
