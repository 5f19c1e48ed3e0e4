import type { ServerResponse } from 'node:http';
import type { Indexer } from '../api.js';
import { scriptToAddress } from '../../script/address.js';

export type StreamEventType = 'block' | 'reorg' | 'registered' | 'renewed' | 'expired' | 'lapsed' | 'rejected' | 'reset';

export interface StreamEvent {
  readonly id: number;
  readonly type: StreamEventType;
  readonly data: Record<string, unknown>;
}

/** Events kept for clients that reconnect with Last-Event-ID. */
export const DEFAULT_RETENTION = 10_000;

/**
 * The Server-Sent Events hub: numbers registry events with increasing ids,
 * keeps the last `retention` of them, and fans them out to connected
 * clients. A client that reconnects with an id still retained gets exactly
 * the events it missed; one that is too far behind (or comes from before a
 * restart) gets a `reset` event and should reload /v1/export.
 */
export class EventHub {
  private readonly buffer: StreamEvent[] = [];
  /**
   * Ids start from the clock (µs), so they keep increasing across restarts
   * and a client's id from an earlier process is recognised as not retained.
   */
  private nextId: number;
  private readonly clients = new Set<ServerResponse>();

  constructor(private readonly retention = DEFAULT_RETENTION, readonly maxClients = 200, firstId = Date.now() * 1000) {
    this.nextId = firstId;
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get lastId(): number {
    return this.nextId - 1;
  }

  publish(type: StreamEventType, data: Record<string, unknown>): StreamEvent {
    const e: StreamEvent = { id: this.nextId++, type, data };
    this.buffer.push(e);
    if (this.buffer.length > this.retention) this.buffer.shift();
    for (const c of this.clients) write(c, e);
    return e;
  }

  /** Attaches a client; replays what it missed after `lastId` (or tells it to reset). */
  attach(res: ServerResponse, lastId: number | null): void {
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    res.write('retry: 3000\n\n');
    if (lastId === null) return;
    const oldest = this.buffer[0]?.id ?? this.nextId;
    // Id 0 asks for everything still retained.
    if (lastId === 0) lastId = oldest - 1;
    if (lastId > this.lastId || lastId < oldest - 1) {
      res.write(frame({ id: this.lastId, type: 'reset', data: { reason: `event ${lastId} is not retained (have ${oldest}..${this.lastId}); reload /v1/export` } }));
      return;
    }
    for (const e of this.buffer) if (e.id > lastId) write(res, e);
  }

  /** A comment line keeps proxies from closing idle streams. */
  heartbeat(): void {
    for (const c of this.clients) c.write(': keep-alive\n\n');
  }

  closeAll(): void {
    for (const c of this.clients) c.end();
    this.clients.clear();
  }

  /** Publishes an embedded indexer's events into the stream. */
  follow(ix: Indexer): void {
    const addr = (hex: string | null): string | null => (hex ? scriptToAddress(Buffer.from(hex, 'hex'), ix.params) : null);
    ix.on('block', (b) => this.publish('block', { height: b.height, hash: b.hash, txCount: b.txCount }));
    ix.on('reorg', (r) => this.publish('reorg', { depth: r.depth, forkHeight: r.forkHeight, oldTip: r.oldTip }));
    for (const kind of ['registered', 'renewed', 'expired', 'lapsed'] as const) {
      ix.on(kind, (c) => this.publish(kind, {
        height: c.height, blockHash: c.blockHash, stakeScript: c.stakeScript, address: addr(c.stakeScript), txid: c.txid,
        renewals: c.registration.renewals, expiryHeight: c.registration.expiryHeight,
      }));
    }
    ix.on('rejected', (r) => this.publish('rejected', { height: r.height, blockHash: r.blockHash, txid: r.txid, vout: r.vout, reason: r.reason, stakeScript: r.stakeScript }));
  }
}

function frame(e: StreamEvent): string {
  return `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

function write(res: ServerResponse, e: StreamEvent): void {
  res.write(frame(e));
}
