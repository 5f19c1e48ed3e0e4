import { randomBytes } from 'node:crypto';
import { K } from '../store/layout.js';
import type { DB } from '../store/store.js';
import type { BlockEvent } from '../read/blockevents.js';

/*
 * The webhook rows ('W', docs/schema.md): the cursor of derived blocks, one
 * journal row per derived block (what was announced for it, so a reorg can
 * take it back), the queue of events not yet delivered, and the events given
 * up on. Only this module and the sender write them, never the engine.
 */

/** How far events have been derived and queued. */
export interface Cursor {
  /** The next block height to derive. */
  readonly next: number;
  /** Hash (internal order) of block next − 1 as derived; null before any block. */
  readonly hash: Buffer | null;
  /** The sequence number the next queued event gets. */
  readonly seq: number;
  /** Random, fixed when the queue is created: event ids stay unique across rebuilt indexes. */
  readonly queueId: string;
}

/** One event as queued: everything of the delivered body but the send time. */
export interface QueuedEvent {
  readonly id: string;
  readonly seq: number;
  readonly type: string;
  readonly network: string;
  readonly createdAt: string;
  readonly data: Record<string, unknown>;
}

/** A journal entry: the forward events of one derived block, with their ids. */
export interface JournalEntry {
  readonly hash: Buffer;
  readonly events: Array<{ id: string; type: BlockEvent['type']; data: Record<string, unknown> }>;
}

const ZERO = Buffer.alloc(32);

export function encodeCursor(c: Cursor): Buffer {
  const b = Buffer.alloc(4 + 32 + 8 + 8);
  b.writeUInt32LE(c.next, 0);
  (c.hash ?? ZERO).copy(b, 4);
  b.writeBigUInt64LE(BigInt(c.seq), 36);
  Buffer.from(c.queueId, 'hex').copy(b, 44);
  return b;
}

export function decodeCursor(b: Buffer): Cursor {
  if (b.length !== 52) throw new Error('webhook cursor row is corrupt: delete the W rows or rebuild the index');
  const next = b.readUInt32LE(0);
  return { next, hash: next === 0 ? null : Buffer.from(b.subarray(4, 36)), seq: Number(b.readBigUInt64LE(36)), queueId: b.subarray(44, 52).toString('hex') };
}

export function encodeJournal(j: JournalEntry): Buffer {
  return Buffer.concat([j.hash, Buffer.from(JSON.stringify(j.events), 'utf8')]);
}

export function decodeJournal(b: Buffer): JournalEntry {
  return { hash: Buffer.from(b.subarray(0, 32)), events: JSON.parse(b.subarray(32).toString('utf8')) as JournalEntry['events'] };
}

/**
 * The cursor, created on first use: from the block after the index's tip
 * (an index that already has blocks announces only what comes next), with
 * a journal row for the tip so that a reorg below it is recognised.
 */
export async function loadCursor(db: DB, tip: { height: number; hash: Buffer } | null): Promise<Cursor> {
  const raw = await db.get(K.webhookCursor());
  if (raw !== undefined) return decodeCursor(raw);
  const c: Cursor = { next: tip ? tip.height + 1 : 0, hash: tip?.hash ?? null, seq: 1, queueId: randomBytes(8).toString('hex') };
  const ops = [{ type: 'put' as const, key: K.webhookCursor(), value: encodeCursor(c) }];
  if (tip) ops.push({ type: 'put', key: K.webhookBlock(tip.height), value: encodeJournal({ hash: tip.hash, events: [] }) });
  await db.batch(ops, { sync: true });
  return c;
}
