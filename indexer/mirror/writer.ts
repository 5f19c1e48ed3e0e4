import type pg from 'pg';
import type { NetworkParams } from '../../script/params.js';
import { paramsHash } from '../../script/params.js';
import type { BlockChanges, BlockCoins, CoinRow } from '../read/changes.js';
import { exportNode } from '../read/queries.js';
import { END_OF_BLOCK } from '../store/codec.js';
import type { Registration } from '../types.js';

/*
 * Writing the mirror: every change is one transaction that also moves the
 * mirror's tip and notifies listeners, so a reader (or a crash) only ever
 * sees the mirror at a block boundary of the index.
 */

/** The channel `NOTIFY` is sent on, in the same transaction as the block. */
export const NOTIFY_CHANNEL = 'nodereg_blocks';

export interface MirrorMeta {
  network: string;
  paramsHash: string;
  tip: { height: number; hash: string } | null;
}

export async function readMeta(client: pg.ClientBase): Promise<MirrorMeta | null> {
  const { rows } = await client.query<{ network: string; params_hash: string; tip_height: number | null; tip_hash: string | null }>(
    'SELECT network, params_hash, tip_height, tip_hash FROM mirror_meta');
  const r = rows[0];
  if (!r) return null;
  return { network: r.network, paramsHash: r.params_hash, tip: r.tip_height === null ? null : { height: r.tip_height, hash: r.tip_hash! } };
}

/** Empties the mirror and makes it one of `params` (a new mirror, or `--postgres-rebuild`). */
export async function resetMirror(client: pg.ClientBase, params: NetworkParams): Promise<void> {
  await inTransaction(client, async () => {
    await client.query('TRUNCATE blocks, registrations, events, rejections, balances, outcomes, coins');
    await client.query('DELETE FROM mirror_meta');
    await client.query('INSERT INTO mirror_meta (network, params_hash) VALUES ($1, $2)', [params.name, paramsHash(params)]);
  });
}

async function inTransaction(client: pg.ClientBase, fn: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await fn();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Replaces every registration row of `scripts` by `regs` (each script's registrations, oldest first). */
async function putRegistrations(client: pg.ClientBase, scripts: string[], regs: Map<string, Registration[]>, params: NetworkParams): Promise<void> {
  if (scripts.length === 0) return;
  await client.query('DELETE FROM registrations WHERE stake_script = ANY($1::text[])', [scripts]);
  const cols: unknown[][] = Array.from({ length: 13 }, () => []);
  for (const script of scripts) {
    const list = regs.get(script) ?? [];
    list.forEach((r, i) => {
      const n = exportNode(r, 0n, params);
      [r.firstHeight, r.firstIndex, n.stakeScript, n.address, n.status, n.firstTxid, n.tipHeight, n.tipTxid, String(n.timestamp),
        n.renewals, n.expiryHeight, n.endedHeight, i === list.length - 1].forEach((v, c) => cols[c]!.push(v));
    });
  }
  if (cols[0]!.length === 0) return;
  await client.query(`INSERT INTO registrations (first_height, first_index, stake_script, address, status, first_txid, tip_height, tip_txid,
      timestamp, renewals, expiry_height, ended_height, is_current)
    SELECT * FROM unnest($1::int[], $2::int[], $3::text[], $4::text[], $5::registration_status[], $6::text[], $7::int[], $8::text[],
      $9::bigint[], $10::int[], $11::int[], $12::int[], $13::boolean[])`, cols);
}

async function moveTip(client: pg.ClientBase, tip: { height: number; hash: string } | null, event: 'block' | 'rewind'): Promise<void> {
  await client.query('UPDATE mirror_meta SET tip_height = $1, tip_hash = $2, updated_at = now()', [tip?.height ?? null, tip?.hash ?? null]);
  await client.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, JSON.stringify({ event, height: tip?.height ?? -1, hash: tip?.hash ?? null })]);
}

/** Blocks a spent coin stays in the coins table, so that a rewind that deep can bring it back. */
export const KEEP_SPENT = 1000;

/** Where the coins table stands: its height (null while it must be loaded whole) and the height its spent rows are complete above. */
export async function readCoinsState(client: pg.ClientBase): Promise<{ height: number | null; since: number }> {
  const { rows } = await client.query<{ coins_height: number | null; coins_since: number }>('SELECT coins_height, coins_since FROM mirror_meta');
  return { height: rows[0]?.coins_height ?? null, since: rows[0]?.coins_since ?? -1 };
}

/** The coins each block created and spent, kept in step with the tip; spent rows older than KEEP_SPENT blocks are dropped. */
async function putCoins(client: pg.ClientBase, blocks: BlockChanges[], coins: BlockCoins[], tip: number): Promise<void> {
  const c: unknown[][] = Array.from({ length: 5 }, () => []);
  const s: unknown[][] = [[], []];
  coins.forEach((b, i) => {
    for (const x of b.created) [x.outpoint, x.script, x.value.toString(), x.height, x.coinbase].forEach((v, j) => c[j]!.push(v));
    for (const op of b.spent) [op, blocks[i]!.block.height].forEach((v, j) => s[j]!.push(v));
  });
  if (c[0]!.length > 0) {
    // A txid repeated while its outputs are unspent (before BIP34) overwrites them, as in the index.
    await client.query(`INSERT INTO coins (outpoint, script, value, height, coinbase) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::int[], $5::boolean[])
      ON CONFLICT (outpoint) DO UPDATE SET script = EXCLUDED.script, value = EXCLUDED.value, height = EXCLUDED.height, coinbase = EXCLUDED.coinbase, spent_height = NULL`, c);
  }
  if (s[0]!.length > 0) {
    await client.query(`UPDATE coins SET spent_height = s.h FROM unnest($1::bytea[], $2::int[]) AS s(op, h)
      WHERE coins.outpoint = s.op AND coins.spent_height IS NULL`, s);
  }
  await client.query('DELETE FROM coins WHERE spent_height <= $1', [tip - KEEP_SPENT]);
  await client.query('UPDATE mirror_meta SET coins_height = $1, coins_since = greatest(coins_since, $2)', [tip, tip - KEEP_SPENT]);
}

/**
 * Replaces the coins table by the index's 'u' rows (`coins`, read from a
 * snapshot at the mirror's tip `height`), in one transaction: after a long
 * catch-up, a rewind deeper than the spent rows kept, or blocks without an
 * undo record.
 */
export async function loadCoins(client: pg.ClientBase, coins: AsyncIterable<CoinRow[]>, height: number): Promise<number> {
  let n = 0;
  await inTransaction(client, async () => {
    // DELETE, not TRUNCATE: a reader's transaction begun before this one must still see the coins it began with.
    await client.query('DELETE FROM coins');
    for await (const batch of coins) {
      const c: unknown[][] = Array.from({ length: 5 }, () => []);
      for (const x of batch) [x.outpoint, x.script, x.value.toString(), x.height, x.coinbase].forEach((v, j) => c[j]!.push(v));
      await client.query('INSERT INTO coins (outpoint, script, value, height, coinbase) SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::int[], $5::boolean[])', c);
      n += batch.length;
    }
    await client.query('UPDATE mirror_meta SET coins_height = $1, coins_since = $1', [height]);
  });
  return n;
}

/**
 * Applies consecutive blocks in one transaction: their rows, the
 * registrations of every script they touched as of the last block (`regs`),
 * and the tip. `stakeRejections`: the index keeps the rejections by stake
 * for all its blocks (its `stakeRejections` meta row). `coins`: what each
 * block did to the coins, or null when that is not known (the coins are then
 * marked to be loaded whole, by `loadCoins`).
 */
export async function applyBlocks(
  client: pg.ClientBase, blocks: BlockChanges[], regs: Map<string, Registration[]>, params: NetworkParams, stakeRejections: boolean, coins: BlockCoins[] | null,
): Promise<void> {
  if (blocks.length === 0) return;
  const b: unknown[][] = Array.from({ length: 6 }, () => []);
  const e: unknown[][] = Array.from({ length: 9 }, () => []);
  const j: unknown[][] = Array.from({ length: 6 }, () => []);
  const s: unknown[][] = [[], [], []];
  const o: unknown[][] = Array.from({ length: 6 }, () => []);
  const touched = new Set<string>();
  for (const c of blocks) {
    [c.block.height, c.block.hash, c.block.registryRoot, c.block.proofRoot, c.block.utxoHash, c.block.time].forEach((v, i) => b[i]!.push(v));
    for (const { script, event: ev } of c.events) {
      touched.add(hex(script));
      [hex(script), ev.height, ev.txIndex === END_OF_BLOCK ? null : ev.txIndex, ev.kind, ev.txid ? Buffer.from(ev.txid).reverse().toString('hex') : null,
        ev.firstHeight, ev.firstIndex, String(ev.timestamp), ev.expiryHeight].forEach((v, i) => e[i]!.push(v));
    }
    for (const r of c.rejections) [r.height, r.txIndex, r.vout, r.txid, r.reason, r.stakeScript].forEach((v, i) => j[i]!.push(v));
    for (const x of c.balances) [hex(x.script), x.height, x.balance.toString()].forEach((v, i) => s[i]!.push(v));
    for (const { txid, outcome: x } of c.outcomes) [txid, x.vout, x.height, x.txIndex, x.kind, x.reason].forEach((v, i) => o[i]!.push(v));
  }
  const last = blocks[blocks.length - 1]!.block;
  await inTransaction(client, async () => {
    await client.query(`INSERT INTO blocks (height, hash, registry_root, proof_root, utxo_muhash, time)
      SELECT * FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])`, b);
    if (e[0]!.length > 0) {
      await client.query(`INSERT INTO events (stake_script, height, position, kind, txid, first_height, first_index, timestamp, expiry_height)
        SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::registry_event[], $5::text[], $6::int[], $7::int[], $8::bigint[], $9::int[])`, e);
    }
    if (j[0]!.length > 0) {
      await client.query(`INSERT INTO rejections (height, position, vout, txid, reason, stake_script)
        SELECT * FROM unnest($1::int[], $2::int[], $3::int[], $4::text[], $5::text[], $6::text[])`, j);
    }
    if (o[0]!.length > 0) {
      await client.query(`INSERT INTO outcomes (txid, vout, height, position, kind, reason)
        SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::int[], $5::announcement_kind[], $6::text[])`, o);
    }
    if (s[0]!.length > 0) await client.query('INSERT INTO balances (stake_script, height, balance) SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[])', s);
    await putRegistrations(client, [...touched], regs, params);
    await client.query('UPDATE mirror_meta SET stake_rejections = $1 WHERE stake_rejections IS DISTINCT FROM $1', [stakeRejections]);
    if (coins === null) await client.query('UPDATE mirror_meta SET coins_height = NULL');
    else await putCoins(client, blocks, coins, last.height);
    await moveTip(client, { height: last.height, hash: last.hash }, 'block');
  });
}

/** Stake scripts (hex) with events above `height`: the registrations a rewind to `height` must rebuild. */
export async function scriptsChangedAbove(client: pg.ClientBase, height: number): Promise<string[]> {
  const { rows } = await client.query<{ stake_script: string }>('SELECT DISTINCT stake_script FROM events WHERE height > $1', [height]);
  return rows.map((r) => r.stake_script);
}

/**
 * Removes every block above `height` in one transaction; `regs` holds the
 * registrations of the scripts `scriptsChangedAbove` named, as of `height`.
 */
export async function rewindTo(client: pg.ClientBase, height: number, scripts: string[], regs: Map<string, Registration[]>, params: NetworkParams): Promise<void> {
  await inTransaction(client, async () => {
    for (const table of ['blocks', 'events', 'rejections', 'balances', 'outcomes']) await client.query(`DELETE FROM ${table} WHERE height > $1`, [height]);
    // The coins go back by height while every coin spent above `height` is still kept; else they are loaded whole after the pass.
    const coins = await readCoinsState(client);
    const { rows: [meta] } = await client.query<{ tip_height: number | null }>('SELECT tip_height FROM mirror_meta');
    if (coins.height !== null && coins.height === meta?.tip_height && height >= coins.since) {
      await client.query('DELETE FROM coins WHERE height > $1', [height]);
      await client.query('UPDATE coins SET spent_height = NULL WHERE spent_height > $1', [height]);
      await client.query('UPDATE mirror_meta SET coins_height = $1', [height]);
    } else {
      await client.query('UPDATE mirror_meta SET coins_height = NULL');
    }
    await putRegistrations(client, scripts, regs, params);
    const { rows } = await client.query<{ hash: string }>('SELECT hash FROM blocks WHERE height = $1', [height]);
    await moveTip(client, rows[0] ? { height, hash: rows[0].hash } : null, 'rewind');
  });
}

/** The mirror's block hashes in [from, to], by height. */
export async function mirrorHashes(client: pg.ClientBase, from: number, to: number): Promise<Map<number, string>> {
  const { rows } = await client.query<{ height: number; hash: string }>('SELECT height, hash FROM blocks WHERE height BETWEEN $1 AND $2', [from, to]);
  return new Map(rows.map((r) => [r.height, r.hash]));
}
