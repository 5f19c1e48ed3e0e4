import type pg from 'pg';
import type { NetworkParams } from '../../script/params.js';
import { byFirstSeen, exportNode, QueryError, replay, type ExportJson, type ExportNode } from '../read/queries.js';
import { END_OF_BLOCK } from '../store/codec.js';
import type { EventKind, Registration, RegistryEvent } from '../types.js';
import { readMeta } from './writer.js';

/*
 * Reading the mirror back in the index's own terms. Past heights are rebuilt
 * from the events table with the index's `replay`, so the mirror and the
 * index answer through one rule.
 */

const internal = (rpcHex: string): Buffer => Buffer.from(rpcHex, 'hex').reverse();

export interface EventRow {
  stake_script: string;
  height: number;
  position: number | null;
  kind: EventKind;
  txid: string | null;
  first_height: number;
  first_index: number;
  timestamp: string | number;
  expiry_height: number;
}

export const toEvent = (r: EventRow): RegistryEvent => ({
  kind: r.kind, height: r.height, txIndex: r.position ?? END_OF_BLOCK, firstHeight: r.first_height, firstIndex: r.first_index,
  txid: r.txid === null ? null : internal(r.txid), timestamp: Number(r.timestamp), expiryHeight: r.expiry_height,
});

/** The events of every script up to `height`, grouped by script, each in the index's order. */
export async function histories(client: pg.ClientBase, height: number, script?: string): Promise<Map<string, RegistryEvent[]>> {
  const { rows } = await client.query<EventRow>(
    `SELECT stake_script, height, position, kind, txid, first_height, first_index, timestamp, expiry_height FROM events
      WHERE height <= $1 ${script === undefined ? '' : 'AND stake_script = $2'}
      ORDER BY stake_script, height, coalesce(position, 2147483647), kind`, script === undefined ? [height] : [height, script]);
  const out = new Map<string, RegistryEvent[]>();
  for (const r of rows) {
    let list = out.get(r.stake_script);
    if (!list) out.set(r.stake_script, list = []);
    list.push(toEvent(r));
  }
  return out;
}

/** The mirror's tip; null while it is empty. */
export async function readMirrorTip(client: pg.ClientBase): Promise<{ height: number; hash: string } | null> {
  return (await readMeta(client))?.tip ?? null;
}

/** A row of the registrations table. */
export interface RegistrationRow {
  stake_script: string; address: string | null; status: Registration['status']; first_height: number; first_index: number; first_txid: string;
  tip_height: number; tip_txid: string; timestamp: string; renewals: number; expiry_height: number; ended_height: number | null; is_current: boolean;
}

/** A registrations row as the index's Registration. */
export function registrationOfRow(r: RegistrationRow): Registration {
  return {
    stakeScript: Buffer.from(r.stake_script, 'hex'), firstHeight: r.first_height, firstIndex: r.first_index, firstTxid: internal(r.first_txid),
    tipHeight: r.tip_height, tipTxid: internal(r.tip_txid), timestamp: Number(r.timestamp), renewals: r.renewals,
    expiryHeight: r.expiry_height, status: r.status, endedHeight: r.ended_height,
  };
}

/** The mirror's tip, or a QueryError as the index gives when empty. */
export async function mirrorTip(client: pg.ClientBase): Promise<{ height: number; hash: string }> {
  const meta = await readMeta(client);
  if (meta?.tip == null) throw new QueryError('the index is empty; run a recount or the indexer first');
  return meta.tip;
}

/** Each script's current registration as of `height`, in FIRST_SEEN order. */
export async function mirrorRegistrationsAt(client: pg.ClientBase, height: number): Promise<Registration[]> {
  const out: Registration[] = [];
  for (const [script, events] of await histories(client, height)) {
    const regs = replay(Buffer.from(script, 'hex'), events, height);
    if (regs.length > 0) out.push(regs[regs.length - 1]!);
  }
  return out.sort(byFirstSeen);
}

/** Every registration of one script as of `height`, oldest first. */
export async function mirrorRegistrationsOf(client: pg.ClientBase, script: string, height: number): Promise<Registration[]> {
  return replay(Buffer.from(script, 'hex'), (await histories(client, height, script)).get(script) ?? [], height);
}

/** The interchange JSON (docs/spec.md §2.7) as of `height`, from the mirror: equal to the index's `exportAt`. */
export async function mirrorExportAt(client: pg.ClientBase, params: NetworkParams, height?: number): Promise<ExportJson> {
  const tip = await mirrorTip(client);
  const h = height ?? tip.height;
  if (!Number.isInteger(h) || h < 0) throw new QueryError(`height must be a whole number ≥ 0, got ${h}`);
  if (h > tip.height) throw new QueryError(`height ${h} is above the index tip ${tip.height}`);
  const block = (await client.query<{ hash: string; registry_root: string }>('SELECT hash, registry_root FROM blocks WHERE height = $1', [h])).rows[0];
  if (!block) throw new QueryError(`no block at height ${h} in the index`);
  const balances = new Map((await client.query<{ stake_script: string; balance: string }>(
    'SELECT DISTINCT ON (stake_script) stake_script, balance FROM balances WHERE height <= $1 ORDER BY stake_script, height DESC', [h],
  )).rows.map((r) => [r.stake_script, BigInt(r.balance)]));
  const nodes: ExportNode[] = (await mirrorRegistrationsAt(client, h)).map((r) => exportNode(r, balances.get(r.stakeScript.toString('hex')) ?? 0n, params));
  const rejected = (await client.query<{ txid: string; height: number; vout: number; reason: string }>(
    'SELECT txid, height, vout, reason FROM rejections WHERE height <= $1 ORDER BY height, position, vout', [h])).rows
    .map((r) => ({ txid: r.txid, height: r.height, vout: r.vout, reason: r.reason }));
  return { network: params.name, height: h, tip: block.hash, root: block.registry_root, nodes, rejected };
}

/** The registrations table as it stands, in the shape of `exportNode` without the balance, by FIRST_SEEN. */
export async function mirrorRegistrationRows(client: pg.ClientBase): Promise<Array<Omit<ExportNode, 'balance'> & { current: boolean }>> {
  const { rows } = await client.query<{
    stake_script: string; address: string | null; status: ExportNode['status']; first_height: number; first_txid: string; tip_height: number;
    tip_txid: string; timestamp: string; renewals: number; expiry_height: number; ended_height: number | null; is_current: boolean;
  }>('SELECT * FROM registrations ORDER BY first_height, first_index');
  return rows.map((r) => ({
    stakeScript: r.stake_script, address: r.address, status: r.status, firstHeight: r.first_height, firstTxid: r.first_txid,
    tipHeight: r.tip_height, tipTxid: r.tip_txid, timestamp: Number(r.timestamp), renewals: r.renewals, expiryHeight: r.expiry_height,
    endedHeight: r.ended_height, current: r.is_current,
  }));
}
