import pg from 'pg';
import { scriptToAddress } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import type { EventHub } from '../http/events.js';
import type { LogFn } from '../log.js';
import { histories, readMirrorTip } from './read.js';
import { replay } from '../read/queries.js';
import { NOTIFY_CHANNEL } from './writer.js';

/*
 * /v1/events under `nodereg serve --postgres`: the mirror's writer sends a
 * NOTIFY in each block's transaction; this listener turns what the mirror
 * gained since the last one into the stream's events. A notification names
 * the mirror's new tip only, so the blocks in between (a catch-up applies
 * many per transaction) are read from the tables, in the order the follower
 * publishes them: block, then its registry events in transaction order.
 */

interface EventRow {
  stake_script: string;
  height: number;
  position: number | null;
  kind: 'registered' | 'renewed' | 'expired' | 'lapsed';
  txid: string | null;
  first_height: number;
  first_index: number;
}

/** Heights of told blocks remembered; a deeper reorg restarts the stream's blocks from the mirror's tip. */
const SEEN = 1000;

export interface MirrorListener {
  stop(): Promise<void>;
}

/** Follows the mirror at `url` into `hub` until stopped; reconnects (every second) while PostgreSQL is away. */
export function followMirror(url: string, params: NetworkParams, hub: EventHub, log: LogFn): MirrorListener {
  let client: pg.Client | null = null;
  let stopped = false;
  let last: { height: number; hash: string } | null | undefined;
  let timer: NodeJS.Timeout | null = null;
  let chain: Promise<void> = Promise.resolve();
  /** The hashes of the blocks told of, by height, for finding the fork of a reorg. */
  const seen = new Map<number, string>();

  const catchUp = async (c: pg.Client): Promise<void> => {
    const tip = await readMirrorTip(c);
    if (last === undefined || tip === null) {
      last = tip;
      if (tip) seen.set(tip.height, tip.hash);
      return;
    }
    if (last !== null) {
      const { rows } = await c.query<{ hash: string }>('SELECT hash FROM blocks WHERE height = $1', [last.height]);
      if (rows[0]?.hash !== last.hash) {
        // The mirror was rewound below our last block (a reorg): the fork is the highest block we told of that it still holds.
        const lo = Math.max(0, last.height - SEEN);
        const held = new Map((await c.query<{ height: number; hash: string }>('SELECT height, hash FROM blocks WHERE height BETWEEN $1 AND $2', [lo, last.height])).rows.map((r) => [r.height, r.hash]));
        let fork = last.height - 1;
        while (fork >= lo && (seen.get(fork) === undefined || held.get(fork) !== seen.get(fork))) fork--;
        hub.publish('reorg', { depth: last.height - fork, forkHeight: fork, oldTip: last });
        for (const h of [...seen.keys()]) if (h > fork) seen.delete(h);
        if (fork < lo) {
          // Deeper than we remember: carry on from the mirror's tip (clients reload on the reorg).
          last = tip;
          seen.set(tip.height, tip.hash);
          return;
        }
        last = { height: fork, hash: seen.get(fork)! };
      }
    }
    const from = last === null ? 0 : last.height + 1;
    if (from > tip.height) return;
    const blocks = (await c.query<{ height: number; hash: string }>('SELECT height, hash FROM blocks WHERE height BETWEEN $1 AND $2 ORDER BY height', [from, tip.height])).rows;
    const events = (await c.query<EventRow>(
      `SELECT stake_script, height, position, kind, txid, first_height, first_index FROM events WHERE height BETWEEN $1 AND $2
        ORDER BY height, coalesce(position, 2147483647), kind, stake_script`, [from, tip.height])).rows;
    const rejected = (await c.query<{ height: number; txid: string; vout: number; reason: string }>(
      'SELECT height, txid, vout, reason FROM rejections WHERE height BETWEEN $1 AND $2 ORDER BY height, position, vout', [from, tip.height])).rows;
    for (const b of blocks) {
      hub.publish('block', { height: b.height, hash: b.hash, txCount: null });
      for (const e of events.filter((x) => x.height === b.height)) {
        const hex = e.stake_script;
        const regs = replay(Buffer.from(hex, 'hex'), (await histories(c, b.height, hex)).get(hex) ?? [], b.height);
        const reg = regs.find((r) => r.firstHeight === e.first_height && r.firstIndex === e.first_index);
        hub.publish(e.kind, {
          height: b.height, blockHash: b.hash, stakeScript: hex, address: scriptToAddress(Buffer.from(hex, 'hex'), params), txid: e.txid,
          renewals: reg?.renewals ?? 0, expiryHeight: reg?.expiryHeight ?? null,
        });
      }
      for (const r of rejected.filter((x) => x.height === b.height)) {
        hub.publish('rejected', { height: b.height, blockHash: b.hash, txid: r.txid, vout: r.vout, reason: r.reason, stakeScript: null });
      }
      last = { height: b.height, hash: b.hash };
      seen.set(b.height, b.hash);
      seen.delete(b.height - SEEN - 1);
    }
  };

  const connect = async (): Promise<void> => {
    timer = null;
    if (stopped) return;
    const c = new pg.Client({ connectionString: url, application_name: 'nodereg-serve-listen' });
    const retry = (err: Error): void => {
      if (client !== c) return;
      client = null;
      void c.end().catch(() => undefined);
      if (stopped) return;
      log('warn', 'lost the mirror\'s notifications; reconnecting', { error: err.message });
      timer = setTimeout(() => void connect(), 1000);
    };
    client = c;
    c.on('error', retry);
    c.on('end', () => retry(new Error('connection ended')));
    c.on('notification', () => {
      chain = chain.then(() => catchUp(c)).catch((err: Error) => log('warn', 'reading the mirror for /v1/events failed', { error: err.message }));
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${NOTIFY_CHANNEL}`);
      // What was applied while we were away (or before we listened) is read now.
      chain = chain.then(() => catchUp(c)).catch((err: Error) => log('warn', 'reading the mirror for /v1/events failed', { error: err.message }));
      await chain;
    } catch (err) {
      retry(err as Error);
    }
  };
  void connect();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = null;
      await chain;
      await c?.end().catch(() => undefined);
    },
  };
}
