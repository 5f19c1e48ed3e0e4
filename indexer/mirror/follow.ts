import type pg from 'pg';
import type { NetworkParams } from '../../script/params.js';
import type { LogFn } from '../log.js';
import type { DB } from '../store/store.js';
import { connectPostgres } from './connect.js';
import { prepareMirror, syncMirror, type SyncResult } from './sync.js';

/*
 * The mirror beside a running daemon. Every committed block (and reorg) kicks
 * a pass; passes never overlap, and kicks during one fold into one more pass.
 * A failed pass (PostgreSQL restarting, a dropped connection) is logged and
 * retried with capped backoff on a new connection: the index is the source,
 * so a late pass loses nothing. Indexing itself is never awaited on or
 * stopped by the mirror.
 */

export interface MirrorFollowerOptions {
  readonly url: string;
  readonly db: DB;
  readonly params: NetworkParams;
  readonly log: LogFn;
  /** Empty a mirror of other params (or another chain) instead of refusing it. */
  readonly rebuild?: boolean;
  /** First retry delay; doubles up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
}

export class MirrorFollower {
  private client: pg.Client | null = null;
  private running: Promise<void> | null = null;
  private pending = false;
  private stopping = false;
  private failures = 0;
  private wake: (() => void) | null = null;
  private lastTip: string | null = null;

  constructor(private readonly opts: MirrorFollowerOptions) {}

  /**
   * Connects, migrates and checks the mirror against the index. Throws when
   * PostgreSQL is unreachable or the mirror belongs elsewhere: at start, that
   * is the operator's to fix.
   */
  async open(): Promise<void> {
    this.client = await this.connect(this.opts.rebuild);
  }

  private async connect(rebuild?: boolean): Promise<pg.Client> {
    const client = await connectPostgres(this.opts.url, (err) => {
      this.opts.log('warn', 'PostgreSQL connection lost; the mirror will reconnect', { error: err.message });
      if (this.client === client) this.client = null;
      void client.end().catch(() => undefined);
    });
    try {
      await prepareMirror(client, this.opts.params, { rebuild });
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    return client;
  }

  /** Asks for a pass (after a committed block or a reorg). */
  kick(): void {
    if (this.stopping) return;
    this.pending = true;
    this.running ??= this.loop().finally(() => {
      this.running = null;
    });
  }

  private async loop(): Promise<void> {
    while (this.pending && !this.stopping) {
      this.pending = false;
      try {
        this.client ??= await this.connect();
        const r = await syncMirror(this.client, this.opts.db, this.opts.params, { blocksPerTx: 1 });
        this.report(r);
        this.failures = 0;
      } catch (err) {
        if (this.stopping || this.opts.db.status !== 'open') return;
        this.failures++;
        const delayMs = Math.min((this.opts.retryMs ?? 500) * 2 ** (this.failures - 1), this.opts.maxRetryMs ?? 10_000);
        this.opts.log('warn', 'mirror pass failed; retrying', { error: (err as Error).message, attempt: this.failures, delayMs });
        const broken = this.client;
        this.client = null;
        await broken?.end().catch(() => undefined);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delayMs);
          this.wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.wake = null;
        this.pending = true;
      }
    }
  }

  private report(r: SyncResult): void {
    if (r.rewoundTo !== null) this.opts.log('warn', 'mirror rewound', { from: r.before, to: r.rewoundTo });
    const key = r.tip ? `${r.tip.height}:${r.tip.hash}` : null;
    if (key === this.lastTip) return;
    this.lastTip = key;
    this.opts.log('info', 'mirror at tip', { height: r.tip?.height ?? null, hash: r.tip?.hash ?? null, blocks: r.applied });
  }

  /** Runs one last pass if the index is still open (best effort), then disconnects. */
  async finish(): Promise<void> {
    await this.running;
    if (this.opts.db.status === 'open' && !this.stopping) {
      this.kick();
      // A pass that fails here is retried only until stop(): the caller is exiting.
      this.stopping = true;
      this.wake?.();
      await this.running;
    }
    await this.stop();
  }

  /** Stops after the pass in flight (a pending retry is abandoned) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.wake?.();
    await this.running;
    await this.client?.end().catch(() => undefined);
    this.client = null;
  }
}
