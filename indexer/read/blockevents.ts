import type { NetworkParams } from '../../script/params.js';
import { REASON_TEXT } from '../../script/reasons.js';
import { decodeRegistration, decodeRejected, EVENT_KINDS } from '../store/codec.js';
import { K, P, parse, prefixOf } from '../store/layout.js';
import { decodeUndo } from '../store/undo.js';
import { blockHashAt, eventsOf, exportNode, replay, stakeBalanceAt, type ExportNode } from './queries.js';
import type { ReadDB } from './snapshot.js';
import type { EventKind, Registration, RegistryEvent } from '../types.js';

/*
 * What happened in each block, told from the stored rows: the registry events
 * the engine wrote ('e'), the rejections ('j'), and the registrations that
 * entered the expiry warning window. Webhooks are built from this, so a
 * daemon that crashed right after a flush tells the same story on restart as
 * one that did not.
 */

export type BlockEventType = EventKind | 'rejected' | 'expiring';

export interface BlockEvent {
  readonly type: BlockEventType;
  readonly data: Record<string, unknown>;
}

export interface DerivedBlock {
  readonly height: number;
  /** RPC-order hex. */
  readonly hash: string;
  readonly events: BlockEvent[];
}

/** Above this many blocks at once, one scan of every event row is cheaper than reading each block's undo record. */
const UNDO_SPAN = 256;
const END_OF_BLOCK = 0xffffffff;

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const regKey = (r: { firstHeight: number; firstIndex: number }): string => `${r.firstHeight}:${r.firstIndex}`;

interface EventAt {
  readonly script: Buffer;
  readonly height: number;
  readonly txIndex: number;
  readonly kind: number;
}

/**
 * The keys of the registry events written by blocks `from`..`to`: from each
 * block's undo record (which lists every row the block wrote) when all are
 * kept and the span is short, else from one scan of the event rows.
 * `viaUndo` forces a strategy (tests compare the two).
 */
export async function eventKeysIn(db: ReadDB, from: number, to: number, viaUndo?: boolean): Promise<EventAt[]> {
  const out: EventAt[] = [];
  if (viaUndo ?? to - from < UNDO_SPAN) {
    const heights = Array.from({ length: to - from + 1 }, (_, i) => from + i);
    const undos = await db.getMany(heights.map((h) => K.undo(h)));
    if (undos.every((u) => u !== undefined)) {
      undos.forEach((raw, i) => {
        for (const { key } of decodeUndo(raw!).kv) {
          if (prefixOf(key) !== P.event) continue;
          const e = parse.event(key);
          if (e.height === heights[i]) out.push({ ...e, script: Buffer.from(e.script) });
        }
      });
      return out;
    }
    if (viaUndo) throw new Error(`undo records of blocks ${from}..${to} are not all kept`);
  }
  for await (const k of db.keys(K.all(P.event))) {
    const e = parse.event(k);
    if (e.height >= from && e.height <= to) out.push({ ...e, script: Buffer.from(e.script) });
  }
  return out;
}

interface Sorted extends BlockEvent {
  readonly height: number;
  readonly order: readonly number[];
}

const byOrder = (a: Sorted, b: Sorted): number => {
  for (let i = 0; i < a.order.length; i++) if (a.order[i] !== b.order[i]) return a.order[i]! - b.order[i]!;
  return 0;
};

/**
 * The events of every block from `from` to the tip `tip` of the snapshot,
 * in chain order (within a block: by transaction, rejections before
 * acceptances, end-of-block expiry and lapse after them, `expiring` last).
 *
 * `expiring` marks the block at whose end a live registration first has at
 * most `window` blocks left (expiryHeight − h = window, docs/api.md, Webhooks);
 * `window` must be below expiryBlocks, so a registration or renewal never
 * starts inside it. A registration is a candidate for block h when its
 * pending expiry row is at h + window, or when it changed after h (renewed or
 * ended): both are found without replaying every script.
 */
export async function deriveBlocks(db: ReadDB, params: NetworkParams, from: number, tip: number, window: number): Promise<DerivedBlock[]> {
  if (from > tip) return [];
  const found: Sorted[] = [];
  const histories = new Map<string, RegistryEvent[]>();
  const historyOf = async (script: Buffer): Promise<RegistryEvent[]> => {
    const k = script.toString('latin1');
    let h = histories.get(k);
    if (!h) histories.set(k, (h = await eventsOf(db, script)));
    return h;
  };
  const registrationAt = async (script: Buffer, reg: { firstHeight: number; firstIndex: number }, h: number): Promise<Registration | undefined> =>
    replay(script, await historyOf(script), h).find((r) => regKey(r) === regKey(reg));
  const node = async (r: Registration, h: number): Promise<ExportNode> => exportNode(r, await stakeBalanceAt(db, r.stakeScript, h), params);

  for (const at of await eventKeysIn(db, from, tip)) {
    const kind = EVENT_KINDS[at.kind]!;
    const ev = (await historyOf(at.script)).find((e) => e.height === at.height && e.txIndex === at.txIndex && e.kind === kind);
    const reg = ev && await registrationAt(at.script, ev, at.height);
    if (!ev || !reg) throw new Error(`index inconsistent: no ${kind} event of ${at.script.toString('hex')} at ${at.height}`);
    const registration = await node(reg, at.height);
    found.push({
      type: kind, height: at.height, order: [at.txIndex, 1, at.kind, reg.firstHeight, reg.firstIndex],
      data: { stakeScript: registration.stakeScript, address: registration.address, txid: ev.txid ? rpcHex(ev.txid) : null, registration },
    });
  }

  for await (const [k, v] of db.iterator({ gte: K.rejected(from, 0, 0), lt: K.rejected(tip + 1, 0, 0) })) {
    const at = parse.rejected(k);
    const { txid, reason } = decodeRejected(v);
    found.push({
      type: 'rejected', height: at.height, order: [at.txIndex, 0, at.vout, 0, 0],
      data: { txid: rpcHex(txid), vout: at.vout, reason, reasonText: REASON_TEXT[reason] },
    });
  }

  if (window > 0) {
    const seen = new Set<string>();
    const expiring = async (r: Registration, h: number): Promise<void> => {
      const key = `${regKey(r)}:${r.expiryHeight}`;
      if (seen.has(key)) return;
      seen.add(key);
      const registration = await node(r, h);
      found.push({
        type: 'expiring', height: h, order: [END_OF_BLOCK, 2, 0, r.firstHeight, r.firstIndex],
        data: { stakeScript: registration.stakeScript, address: registration.address, txid: null, blocksUntilExpiry: window, registration },
      });
    };
    // Still pending at the tip with expiry h + window: nothing changed it since h.
    for await (const k of db.keys({ gte: K.expiryAt(from + window).gte, lt: K.expiryAt(tip + window + 1).gte })) {
      const { expiryHeight, id } = parse.expiry(k);
      const raw = await db.get(K.registration(id));
      if (raw === undefined) throw new Error(`index inconsistent: pending expiry without registration ${id.toString('hex')}`);
      await expiring(decodeRegistration(raw), expiryHeight - window);
    }
    // Renewed or ended since: their scripts have events in the range.
    const changed = new Map<string, Buffer>();
    for (const f of found) if (f.type !== 'rejected') changed.set(String(f.data.stakeScript), Buffer.from(String(f.data.stakeScript), 'hex'));
    for (const script of changed.values()) {
      for (const e of await historyOf(script)) {
        const h = e.expiryHeight - window;
        if ((e.kind !== 'registered' && e.kind !== 'renewed') || h < from || h > tip) continue;
        const r = await registrationAt(script, e, h);
        if (r && r.status === 'active' && r.expiryHeight === e.expiryHeight) await expiring(r, h);
      }
    }
  }

  found.sort((a, b) => a.height - b.height || byOrder(a, b));
  const blocks: DerivedBlock[] = [];
  let i = 0;
  for (let h = from; h <= tip; h++) {
    const events: BlockEvent[] = [];
    const hash = rpcHex(await blockHashAt(db, h));
    for (; i < found.length && found[i]!.height === h; i++) {
      const f = found[i]!;
      events.push({ type: f.type, data: { height: h, blockHash: hash, ...f.data } });
    }
    blocks.push({ height: h, hash, events });
  }
  return blocks;
}
