import type { ServerResponse } from 'node:http';
import type { Indexer } from '../api.js';

export type StreamEventType = 'block' | 'reorg' | 'registered' | 'renewed' | 'expired' | 'lapsed' | 'rejected' | 'reset';

export interface StreamEvent {
  readonly id: number;
  readonly type: StreamEventType;
  readonly data: Record<string, unknown>;
}

/** Events kept for clients that reconnect with Last-Event-ID. */
export const DEFAULT_RETENTION = 10_000;
/** Bytes a stream may have waiting in this process before it must drain. */
export const DEFAULT_MAX_BUFFERED = 64 * 1024;
/** Whole sweep intervals (one heartbeat each) a stream may stay blocked before it is dropped. */
const STALL_SWEEPS = 1;
/** Remote addresses remembered for dropped streams. */
const MAX_DROPPED_REMOTES = 1024;

/** What a client asked to resume from: nothing, an id, or a header that is not an id. */
export type ResumeFrom = number | null | { readonly malformed: string };

interface Client {
  readonly res: ServerResponse;
  readonly remote: string;
  /** The next event id this client needs. */
  next: number;
  /** Blocked until the socket drains. */
  waiting: boolean;
  drainedSinceSweep: boolean;
  stalledSweeps: number;
}

interface Retained extends StreamEvent {
  readonly frame: string;
}

/**
 * The Server-Sent Events hub: numbers registry events with increasing ids,
 * keeps the last `retention` of them, and fans them out to connected
 * clients. A client that reconnects with an id still retained gets exactly
 * the events it missed; one that is too far behind (or comes from before a
 * restart) gets a `reset` event and should reload /v1/export.
 *
 * Clients pull: each keeps a cursor into the retained events, and more is
 * written only while its socket drains, at most `maxBuffered` bytes at a
 * time. A client that does not read costs its cursor, not a copy of the
 * history. One that stays blocked through a whole heartbeat interval (its
 * socket took nothing while events waited) is dropped,
 * and its address's next resume gets a `reset` instead of another replay.
 */
export class EventHub {
  private readonly buffer: Retained[] = [];
  /**
   * Ids start from the clock (µs), so they keep increasing across restarts
   * and a client's id from an earlier process is recognised as not retained.
   */
  private nextId: number;
  private readonly clients = new Set<Client>();
  /** Remote address → streams of it dropped and not yet told to reset. */
  private readonly dropped = new Map<string, number>();
  /** Streams dropped for not reading, since start. */
  droppedTotal = 0;

  constructor(
    private readonly retention = DEFAULT_RETENTION, readonly maxClients = 200, firstId = Date.now() * 1000,
    private readonly maxBuffered = DEFAULT_MAX_BUFFERED,
  ) {
    this.nextId = firstId;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  private get oldestId(): number {
    return this.buffer[0]?.id ?? this.nextId;
  }

  publish(type: StreamEventType, data: Record<string, unknown>): StreamEvent {
    const e: StreamEvent = { id: this.nextId++, type, data };
    this.buffer.push({ ...e, frame: frame(e) });
    if (this.buffer.length > this.retention) this.buffer.shift();
    for (const c of this.clients) this.pump(c);
    return e;
  }

  /** Attaches a client; replays what it missed after `from` (or tells it to reset). */
  attach(res: ServerResponse, from: ResumeFrom): void {
    const remote = res.socket?.remoteAddress ?? '';
    const c: Client = { res, remote, next: this.nextId, waiting: false, drainedSinceSweep: false, stalledSweeps: 0 };
    this.clients.add(c);
    res.on('close', () => this.clients.delete(c));
    res.on('drain', () => {
      c.waiting = false;
      c.drainedSinceSweep = true;
      this.pump(c);
    });
    let head = 'retry: 3000\n\n';
    const reset = (reason: string): void => {
      head += frame({ id: this.lastId, type: 'reset', data: { reason } });
    };
    if (from === null) {
      // live events only
    } else if (typeof from === 'object') {
      reset(`Last-Event-ID ${JSON.stringify(from.malformed.slice(0, 40))} is not an event id; reload /v1/export`);
    } else if (this.takeDropped(remote)) {
      reset('an earlier stream from this address was dropped for not reading its events; reload /v1/export');
    } else {
      const oldest = this.oldestId;
      // Id 0 asks for everything still retained.
      const last = from === 0 ? oldest - 1 : from;
      if (last > this.lastId || last < oldest - 1) reset(`event ${last} is not retained (have ${oldest}..${this.lastId}); reload /v1/export`);
      else c.next = last + 1;
    }
    this.send(c, head);
    this.pump(c);
  }

  /** Writes what `c` has not had yet, while its socket takes it. */
  private pump(c: Client): void {
    while (!c.waiting && c.next < this.nextId && !c.res.destroyed) {
      let chunk = '';
      const at = c.next - this.oldestId;
      if (at < 0) {
        // Fell behind the retention while blocked: it cannot get every event any more.
        chunk = frame({ id: this.lastId, type: 'reset', data: { reason: `events after ${c.next - 1} are no longer retained; reload /v1/export` } });
        c.next = this.nextId;
      } else {
        const room = this.maxBuffered - c.res.writableLength;
        for (let i = at; i < this.buffer.length && (chunk === '' || chunk.length + this.buffer[i]!.frame.length <= room); i++) {
          chunk += this.buffer[i]!.frame;
          c.next++;
        }
      }
      this.send(c, chunk);
    }
  }

  private send(c: Client, text: string): void {
    if (c.res.destroyed) return;
    // write() says false once the socket holds its high-water mark (16 KiB); 'drain' follows.
    if (!c.res.write(text)) c.waiting = true;
  }

  private takeDropped(remote: string): boolean {
    const n = this.dropped.get(remote);
    if (n === undefined) return false;
    if (n <= 1) this.dropped.delete(remote);
    else this.dropped.set(remote, n - 1);
    return true;
  }

  /** Drops the streams that stayed blocked since the previous sweep. */
  sweep(): void {
    for (const c of this.clients) {
      c.stalledSweeps = c.waiting && !c.drainedSinceSweep ? c.stalledSweeps + 1 : 0;
      c.drainedSinceSweep = false;
      if (c.stalledSweeps < STALL_SWEEPS) continue;
      this.clients.delete(c);
      this.droppedTotal++;
      this.dropped.delete(c.remote);
      this.dropped.set(c.remote, Math.min(this.maxClients, (this.dropped.get(c.remote) ?? 0) + 1));
      if (this.dropped.size > MAX_DROPPED_REMOTES) this.dropped.delete(this.dropped.keys().next().value!);
      c.res.destroy();
    }
  }

  /** A comment line keeps proxies from closing idle streams; then blocked streams are swept. */
  heartbeat(): void {
    for (const c of this.clients) if (!c.waiting && c.res.writableLength === 0) this.send(c, ': keep-alive\n\n');
    this.sweep();
  }

  closeAll(): void {
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  /** Publishes an embedded indexer's events into the stream. */
  follow(ix: Indexer): void {
    ix.on('block', (b) => this.publish('block', { height: b.height, hash: b.hash, txCount: b.txCount }));
    ix.on('reorg', (r) => this.publish('reorg', { depth: r.depth, forkHeight: r.forkHeight, oldTip: r.oldTip }));
    for (const kind of ['registered', 'renewed', 'expired', 'lapsed'] as const) {
      ix.on(kind, (c) => this.publish(kind, {
        height: c.height, blockHash: c.blockHash, stakeScript: c.stakeScript, address: c.address, txid: c.txid,
        renewals: c.registration.renewals, expiryHeight: c.registration.expiryHeight,
      }));
    }
    ix.on('rejected', (r) => this.publish('rejected', { height: r.height, blockHash: r.blockHash, txid: r.txid, vout: r.vout, reason: r.reason, stakeScript: r.stakeScript }));
  }
}

function frame(e: StreamEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
}
