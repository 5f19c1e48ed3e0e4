/**
 * Driving the live daemon (`nodereg index`) from tests: spawning it with
 * `--log-json`, reading its log as it arrives, waiting for a line or for its
 * exit, stopping and killing it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { MinedBlock } from '../../fixtures/generator/chain.js';
import type { BcoinNode } from './bcoin.js';
import { CLI, noderegIn } from './cli.js';
import type { FakeBitcoindPublisher } from './zmqpub.js';

/** One line of the daemon's JSON log; a line that is not JSON has level `raw` and the text as msg. */
export interface LogLine {
  level: string;
  msg: string;
  [field: string]: unknown;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DaemonOptions {
  /** Default timeout of waitFor and waitSynced; 30 s if omitted. */
  readonly waitMs?: number;
}

/** The RPC flags of `nodereg index` for a bcoin node, reached at `url` (by default the node's own). */
export const rpcArgs = (node: BcoinNode, url: string = node.url): string[] =>
  ['--network', 'regtest', '--rpc', url, '--rpc-user', 'x', '--rpc-password', node.apiKey];

/** A spawned `nodereg index --log-json`, its log parsed line by line as it arrives. */
export class Daemon {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<Exit>;
  private readonly waitMs: number;
  private partial = '';
  private raw = '';
  private connectedMax: number | null = null;
  /** Woken whenever log lines arrive or the process closes: waits need not poll. */
  private wake: () => void = () => {};
  private woken: Promise<void> = this.nextWake();

  constructor(args: string[], opts: DaemonOptions = {}) {
    this.waitMs = opts.waitMs ?? 30_000;
    this.child = spawn(process.execPath, [CLI, 'index', ...args, '--log-json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => this.take(d));
    // 'close', not 'exit': the last log lines (written just before exiting) have then been read.
    this.exited = new Promise((resolve) => this.child.on('close', (code, signal) => {
      resolve({ code, signal });
      this.wake();
    }));
  }

  private nextWake(): Promise<void> {
    return new Promise((resolve) => {
      this.wake = () => {
        this.woken = this.nextWake();
        resolve();
      };
    });
  }

  /** Resolves when new log lines arrive, the process closes, or `ms` pass. */
  private async change(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.woken, new Promise<void>((r) => { timer = setTimeout(r, Math.max(0, ms)); })]);
    clearTimeout(timer);
  }

  private take(chunk: string): void {
    this.raw += chunk;
    const parts = (this.partial + chunk).split('\n');
    this.partial = parts.pop()!;
    for (const p of parts) {
      let line: LogLine;
      try {
        line = JSON.parse(p) as LogLine;
      } catch {
        line = { level: 'raw', msg: p };
      }
      this.lines.push(line);
      if (line.msg === 'connected block' && (this.connectedMax === null || (line.height as number) > this.connectedMax)) this.connectedMax = line.height as number;
    }
    if (parts.length > 0) this.wake();
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  has(msg: string, fields: Record<string, unknown> = {}): boolean {
    return this.count(msg, fields) > 0;
  }

  count(msg: string, fields: Record<string, unknown> = {}): number {
    return this.lines.filter((l) => l.msg === msg && Object.entries(fields).every(([k, v]) => l[k] === v)).length;
  }

  /** The `error` field of every line with this message. */
  errors(msg: string): string[] {
    return this.lines.filter((l) => l.msg === msg).map((l) => String(l.error));
  }

  /** The last height the daemon reported as synced with the node, or null. */
  syncedHeight(): number | null {
    const s = this.lines.filter((l) => l.msg === 'synced with node').at(-1);
    return s ? (s.height as number) : null;
  }

  /** Highest block the process said it connected (flushed or not). */
  connectedUpTo(): number | null {
    return this.connectedMax;
  }

  /** The last `n` lines of the log, without the per-block ones: for failure messages. */
  tail(n = 40): string {
    return this.raw.split('\n').filter((l) => !l.includes('"connected block"')).slice(-n).join('\n');
  }

  /** Resolves once a line `msg` with these fields is logged; throws if the daemon exits first or `ms` pass. */
  async waitFor(msg: string, fields: Record<string, unknown> = {}, ms = this.waitMs): Promise<void> {
    const end = Date.now() + ms;
    while (!this.has(msg, fields)) {
      if (!this.alive) throw new Error(`the daemon exited (${this.child.exitCode ?? this.child.signalCode}) before logging ${msg} ${JSON.stringify(fields)}:\n${this.tail()}`);
      if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${msg} ${JSON.stringify(fields)}:\n${this.tail()}`);
      await this.change(end - Date.now() + 1);
    }
  }

  waitSynced(b: Pick<MinedBlock, 'height' | 'hash'>, ms?: number): Promise<void> {
    return this.waitFor('synced with node', { height: b.height, hash: b.hash }, ms);
  }

  /**
   * Checks as each batch of log lines arrives (to land a kill at a precise
   * moment) until a line `what` is logged or `what(this)` holds. False if the
   * daemon exits or `ms` pass first.
   */
  async until(what: string | ((d: Daemon) => boolean), ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    const cond = typeof what === 'string' ? () => this.has(what) : () => what(this);
    while (!cond()) {
      if (!this.alive || Date.now() > end) return false;
      await this.change(end - Date.now() + 1);
    }
    return true;
  }

  /** SIGTERM, then SIGKILL if it is still running after 5 s. */
  async stop(): Promise<Exit> {
    if (this.alive) this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    const r = await this.exited;
    clearTimeout(t);
    return r;
  }

  /** SIGKILL, as a crash would. */
  kill(): Promise<Exit> {
    if (this.alive) this.child.kill('SIGKILL');
    return this.exited;
  }
}

/**
 * `nodereg export --db` of an index no process holds open, parsed. Run
 * in-process (see noderegIn): the daemon is the process under test, not the
 * reader of what it wrote.
 */
export async function exportOf(db: string): Promise<unknown> {
  const res = await noderegIn(['export', '--db', db]);
  if (res.status !== 0) throw new Error(`export failed (${res.status}): ${res.stderr}`);
  return JSON.parse(res.stdout) as unknown;
}

/**
 * A running daemon's common ending: it reaches `end` and is still running,
 * stops cleanly on SIGTERM at that height, and its export equals `expected`.
 */
export async function stopsSyncedAt(d: Daemon, db: string, end: Pick<MinedBlock, 'height' | 'hash'>, expected: unknown): Promise<void> {
  await d.waitSynced(end);
  expect(d.alive).toBe(true);
  expect(await d.stop()).toEqual({ code: 0, signal: null });
  expect(d.has('stopped', { height: end.height })).toBe(true);
  expect(await exportOf(db)).toEqual(expected);
}

/**
 * ZMQ's slow joiner: whatever is published before the subscription reaches
 * the publisher is dropped. Announces `at`, a block the daemon already has,
 * until the daemon has seen one announcement (harmless: it resyncs and finds
 * nothing new), then lets that wake-up settle, so the test's own
 * notifications can be lost neither way.
 */
export async function subscribed(p: FakeBitcoindPublisher, d: Daemon, at: Pick<MinedBlock, 'hash'>): Promise<void> {
  // Only a bound against a daemon that never subscribes: the loop itself waits for an event.
  const end = Date.now() + 30_000;
  while (!d.has('zmq block notification')) {
    if (Date.now() > end) throw new Error(`the daemon never received a ZMQ message:\n${d.tail()}`);
    await p.publishSequence(at.hash, 'C');
    await sleep(25);
  }
  await settle();
}

/**
 * Lets notifications already on their way be handled, so that a wake-up the
 * test caused earlier cannot pick up blocks it submits next without one.
 */
export const settle = (): Promise<void> => sleep(150);
