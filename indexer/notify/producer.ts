import type { NetworkParams } from '../../script/params.js';
import { deriveBlocks } from '../read/blockevents.js';
import { withSnapshot, type ReadDB } from '../read/snapshot.js';
import { decodeTip } from '../store/codec.js';
import { K } from '../store/layout.js';
import type { DB } from '../store/store.js';
import { decodeJournal, encodeCursor, encodeJournal, type Cursor, type JournalEntry, type QueuedEvent } from './journal.js';

/*
 * Turns committed blocks into queued webhook events. Each step reads one
 * snapshot of the index and writes, in one atomic batch, the queued events,
 * the journal rows and the moved cursor: a crash before the batch leaves the
 * blocks to be derived again, a crash after it has them queued exactly once.
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** What is reversed by which event type (docs/api.md, Webhooks). */
export const REVERSAL: Readonly<Record<string, string>> = {
  registered: 'unregistered', renewed: 'unrenewed', expired: 'unexpired', lapsed: 'unlapsed',
  rejected: 'unrejected', expiring: 'unexpiring',
};

type Op = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

export interface ProducerOptions {
  readonly params: NetworkParams;
  /** Blocks of warning before expiry (docs/api.md, Webhooks). */
  readonly window: number;
  /** Keep journal rows for this many blocks below the tip (none when undefined: every block). */
  readonly keepDepth?: number;
  readonly now?: () => Date;
}

export interface Step {
  readonly cursor: Cursor;
  readonly queued: number;
  readonly reorg: { forkHeight: number; depth: number } | null;
}

/**
 * Derives and queues everything between the cursor and the index's tip.
 * A cursor block the index no longer holds means a reorg: `reorg` is queued,
 * then the reversal of every event announced above the fork (newest first),
 * then the events of the new blocks.
 */
export async function produce(db: DB, cursor: Cursor, opts: ProducerOptions): Promise<Step> {
  return withSnapshot(db, async (r) => {
    const tipRaw = await r.get(K.tip());
    const tip = tipRaw === undefined ? null : decodeTip(tipRaw);
    const top = tip?.height ?? -1;
    const ops: Op[] = [];
    const createdAt = (opts.now?.() ?? new Date()).toISOString();
    let seq = cursor.seq;
    const queue = (type: string, data: Record<string, unknown>): string => {
      const id = `${cursor.queueId}-${seq}`;
      const e: QueuedEvent = { id, seq, type, network: opts.params.name, createdAt, data };
      ops.push({ type: 'put', key: K.webhookQueue(seq), value: Buffer.from(JSON.stringify(e), 'utf8') });
      seq++;
      return id;
    };

    let next = cursor.next;
    let reorg: Step['reorg'] = null;
    if (cursor.hash !== null && !(await sameBlock(r, next - 1, cursor.hash, top))) {
      const fork = await forkHeight(r, Math.min(next - 1, top));
      const newTip = tip ? { height: tip.height, hash: rpcHex(tip.hash) } : null;
      reorg = { forkHeight: fork, depth: next - 1 - fork };
      queue('reorg', { forkHeight: fork, depth: reorg.depth, oldTip: { height: next - 1, hash: rpcHex(cursor.hash) }, newTip });
      const undone: Array<[Buffer, JournalEntry]> = [];
      for await (const [k, v] of r.iterator({ ...K.webhookBlocksFrom(fork + 1), reverse: true })) undone.push([k, decodeJournal(v)]);
      for (const [k, j] of undone) {
        for (const e of [...j.events].reverse()) queue(REVERSAL[e.type]!, { ...e.data, reverses: e.id });
        ops.push({ type: 'del', key: k });
      }
      next = fork + 1;
    }

    const blocks = await deriveBlocks(r, opts.params, next, top, opts.window);
    for (const b of blocks) {
      const events = b.events.map((e) => ({ id: queue(e.type, e.data), type: e.type, data: e.data }));
      ops.push({ type: 'put', key: K.webhookBlock(b.height), value: encodeJournal({ hash: Buffer.from(b.hash, 'hex').reverse(), events }) });
    }
    const moved: Cursor = blocks.length === 0 && reorg === null
      ? cursor
      : { next: top + 1, hash: tip?.hash ?? null, seq, queueId: cursor.queueId };
    if (moved !== cursor) ops.push({ type: 'put', key: K.webhookCursor(), value: encodeCursor(moved) });
    if (opts.keepDepth !== undefined && top - opts.keepDepth > 0) {
      for await (const k of r.keys({ gte: K.webhookBlock(0), lt: K.webhookBlock(top - opts.keepDepth) })) ops.push({ type: 'del', key: Buffer.from(k) });
    }
    if (ops.length > 0) await db.batch(ops, { sync: true });
    return { cursor: moved, queued: seq - cursor.seq, reorg };
  });
}

async function sameBlock(r: ReadDB, height: number, hash: Buffer, top: number): Promise<boolean> {
  if (height > top) return false;
  const stored = await r.get(K.blockHash(height));
  return stored !== undefined && stored.equals(hash);
}

/**
 * The highest height at or below `from` whose block the journal and the
 * index agree on. Below the journal's first row (the webhook was enabled
 * later, or old rows were pruned) nothing was announced, so that is the fork.
 */
async function forkHeight(r: ReadDB, from: number): Promise<number> {
  for (let h = from; h >= 0; h--) {
    const ours = await r.get(K.webhookBlock(h));
    if (ours === undefined) return h;
    const theirs = await r.get(K.blockHash(h));
    if (theirs !== undefined && decodeJournal(ours).hash.equals(theirs)) return h;
  }
  return -1;
}

/** The oldest queued event, or null when the queue is empty. */
export async function firstQueued(db: DB): Promise<{ key: Buffer; event: QueuedEvent } | null> {
  for await (const [k, v] of db.iterator({ ...K.webhookQueued(), limit: 1 })) {
    return { key: Buffer.from(k), event: JSON.parse(v.toString('utf8')) as QueuedEvent };
  }
  return null;
}
