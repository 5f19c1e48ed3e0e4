import type { NetworkParams } from '../../script/params.js';
import type { Indexer } from '../api.js';
import { silent, type LogFn } from '../log.js';
import { decodeTip } from '../store/codec.js';
import { K } from '../store/layout.js';
import type { DB } from '../store/store.js';
import { loadCursor, type Cursor } from './journal.js';
import { firstQueued, produce } from './producer.js';
import { backoffMs, post } from './sender.js';

/*
 * Webhooks for a live index: committed blocks become queued events
 * (producer.ts), and one sender posts them in order, retrying with backoff.
 * Nothing here can stop or fail indexing: every error is logged and tried
 * again later, and the engine never waits for a receiver.
 */

export interface WebhookOptions {
  readonly url: string;
  /** HMAC key; without one, events are sent unsigned. */
  readonly secret: Buffer | null;
  /** Retries after the first attempt before an event is given up on. */
  readonly retries: number;
  /** Delay before the first retry; doubles each time up to `maxBackoffMs`. */
  readonly backoffMs: number;
  readonly maxBackoffMs?: number;
  readonly timeoutMs?: number;
  /** Blocks of warning before expiry (docs/api.md, Webhooks). */
  readonly expiringWindow: number;
  /** Journal rows kept below the tip (the daemon's --prune-undo): deeper reorgs cannot happen. */
  readonly keepDepth?: number;
  readonly log?: LogFn;
}

export const DEFAULT_RETRIES = 15;
export const DEFAULT_BACKOFF_MS = 1000;
export const MAX_BACKOFF_MS = 300_000;

/** A tenth of the expiry period, rounded up: 432 blocks (3 days) on mainnet, 15 on regtest. */
export const defaultExpiringWindow = (p: NetworkParams): number => Math.ceil(p.expiryBlocks / 10);

export interface WebhookCounters {
  queued: number;
  delivered: number;
  retried: number;
  failed: number;
  /** Events waiting in the queue (counted at open, then kept up to date). */
  pending: number;
}

export class Webhooks {
  readonly counters: WebhookCounters = { queued: 0, delivered: 0, retried: 0, failed: 0, pending: 0 };
  private stopping = false;
  private dirty = true;
  private producing: Promise<void> | null = null;
  private sending: Promise<void> | null = null;
  /** Ends the sender's idle wait: new events were queued. */
  private wakeSender: (() => void) | null = null;
  /** Events were queued while the sender was not waiting: its next idle wait returns at once. */
  private wakePending = false;
  /** Aborts the request in flight on stop: unanswered, it is sent again after the restart. */
  private readonly abort = new AbortController();
  private readonly log: LogFn;

  private constructor(private readonly db: DB, private readonly params: NetworkParams, private cursor: Cursor, private readonly opts: WebhookOptions) {
    this.log = opts.log ?? silent;
  }

  /** Loads (or creates) the queue in the index's database. */
  static async open(db: DB, params: NetworkParams, opts: WebhookOptions): Promise<Webhooks> {
    const w = opts.expiringWindow;
    if (!Number.isInteger(w) || w < 1 || w >= params.expiryBlocks) {
      throw new RangeError(`the expiring window must be a whole number of blocks from 1 to ${params.expiryBlocks - 1} (below expiryBlocks of ${params.name}), got ${w}`);
    }
    const raw = await db.get(K.tip());
    const hooks = new Webhooks(db, params, await loadCursor(db, raw === undefined ? null : decodeTip(raw)), opts);
    for await (const _ of db.keys(K.webhookQueued())) hooks.counters.pending++;
    return hooks;
  }

  /** Starts producing from committed blocks and sending; call before the indexer starts. */
  start(ix: Indexer): void {
    ix.on('block', () => this.kick());
    ix.on('reorg', () => this.kick());
    this.kick();
    this.sending = this.sendLoop();
  }

  /** Stops both loops; the queue stays in the database for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.abort.abort();
    await this.producing;
    await this.sending;
  }

  private wake(): void {
    const w = this.wakeSender;
    this.wakeSender = null;
    if (w) w();
    else this.wakePending = true;
  }

  /** Something was committed: derive it (once the running step ends, if one runs). */
  private kick(): void {
    this.dirty = true;
    if (this.producing || this.stopping) return;
    this.producing = (async () => {
      while (this.dirty && !this.stopping) {
        this.dirty = false;
        try {
          const step = await produce(this.db, this.cursor, { params: this.params, window: this.opts.expiringWindow, keepDepth: this.opts.keepDepth });
          this.cursor = step.cursor;
          this.counters.queued += step.queued;
          this.counters.pending += step.queued;
          if (step.reorg) this.log('info', 'webhook: reorg queued with its reversals', { forkHeight: step.reorg.forkHeight, depth: step.reorg.depth });
          if (step.queued > 0) this.wake();
        } catch (err) {
          if (this.stopping) break;
          this.log('warn', 'webhook: cannot derive events from the index; will retry', { error: (err as Error).message });
          await new Promise((r) => setTimeout(r, 1000));
          this.dirty = true;
        }
      }
    })().finally(() => {
      this.producing = null;
      if (this.dirty && !this.stopping) this.kick();
    });
  }

  /**
   * Waits `ms`, or less if the webhooks stop. An idle wait (empty queue) also
   * ends when events are queued; a backoff does not, so new events never cut
   * a receiver's backoff short.
   */
  private pause(ms: number, idle = false): Promise<void> {
    if (this.stopping || (idle && this.wakePending)) {
      this.wakePending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(t);
        this.abort.signal.removeEventListener('abort', done);
        if (this.wakeSender === done) this.wakeSender = null;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.abort.signal.addEventListener('abort', done);
      if (idle) this.wakeSender = done;
    });
  }

  private async sendLoop(): Promise<void> {
    let attempt = 0;
    let seq = -1;
    while (!this.stopping) {
      let item;
      // Whatever is queued from here on is seen by this read or wakes the idle wait after it.
      this.wakePending = false;
      try {
        item = await firstQueued(this.db);
      } catch (err) {
        if (this.stopping) return;
        this.log('warn', 'webhook: cannot read the queue; will retry', { error: (err as Error).message });
        await this.pause(1000);
        continue;
      }
      if (item === null) {
        await this.pause(60_000, true);
        continue;
      }
      const e = item.event;
      if (e.seq !== seq) {
        seq = e.seq;
        attempt = 0;
      }
      attempt++;
      const res = await post(this.opts.url, e, this.opts.secret, this.opts.timeoutMs ?? 10_000, this.abort.signal);
      if (this.stopping && !res.ok) return;
      try {
        if (res.ok) {
          // The receiver has it: from here on it must never be sent again.
          await this.db.del(item.key, { sync: true });
          this.counters.delivered++;
          this.counters.pending--;
          this.log('debug', 'webhook delivered', { id: e.id, type: e.type, status: res.status, attempt });
          continue;
        }
        if (res.permanent || attempt > this.opts.retries) {
          const why = res.permanent ? 'refused' : `no success after ${attempt} attempts`;
          await this.db.batch([
            { type: 'del', key: item.key },
            { type: 'put', key: K.webhookFailed(e.seq), value: Buffer.from(JSON.stringify({ event: e, status: res.status, error: res.error, attempts: attempt, at: new Date().toISOString() }), 'utf8') },
          ], { sync: true });
          this.counters.failed++;
          this.counters.pending--;
          this.log('warn', `webhook: event given up (${why})`, { id: e.id, type: e.type, status: res.status, error: res.error });
          continue;
        }
      } catch (err) {
        if (this.stopping) return;
        this.log('warn', 'webhook: cannot update the queue; will retry', { error: (err as Error).message });
        await this.pause(1000);
        continue;
      }
      this.counters.retried++;
      const delay = backoffMs(attempt, this.opts.backoffMs, this.opts.maxBackoffMs ?? Math.max(MAX_BACKOFF_MS, this.opts.backoffMs));
      this.log('warn', 'webhook delivery failed; will retry', { id: e.id, type: e.type, status: res.status, error: res.error, attempt, retryInMs: delay });
      await this.pause(delay);
    }
  }
}
