import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { deriveBlocks, eventKeysIn } from '../indexer/read/blockevents.js';
import { withSnapshot } from '../indexer/read/snapshot.js';
import { openStore, type DB } from '../indexer/store/store.js';
import { backoffMs, judge } from '../indexer/notify/sender.js';
import { EventEmitter } from 'node:events';
import type { Indexer } from '../indexer/api.js';
import { encodeCursor } from '../indexer/notify/journal.js';
import { Webhooks } from '../indexer/notify/webhooks.js';
import { K } from '../indexer/store/layout.js';
import type { LogFields, LogLevel } from '../indexer/log.js';
import { freePort } from './helpers/bcoin.js';
import { nodereg, ROOT } from './helpers/cli.js';
import { Receiver } from './helpers/receiver.js';
import { webhookOptions } from '../cli/commands/index-webhooks.js';
import { UsageError, UserError } from '../cli/common.js';
import { writeFileSync } from 'node:fs';
import { registrationsAt } from '../indexer/read/queries.js';
import { connectRaw, tempIndex } from './helpers/db.js';
import { chainOf, rawChainOf, TEST_PARAMS } from './helpers/synthetic.js';

const regtest = BUILTIN_NETWORKS.regtest!;
let dir: string;
let db: DB;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-webhook-unit-'));
  const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), '--db', join(dir, 'db')]);
  if (res.status !== 0) throw new Error(res.stderr);
  db = await openStore(join(dir, 'db'), regtest, { create: false });
});
afterAll(async () => {
  await db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const keyText = (e: { script: Buffer; height: number; txIndex: number; kind: number }): string => `${e.script.toString('hex')} ${e.height} ${e.txIndex} ${e.kind}`;

describe('per-block events from the stored rows', () => {
  it('finds the same registry events through the undo records as through a scan of every event row', async () => {
    await withSnapshot(db, async (r) => {
      for (const [from, to] of [[0, 450], [240, 250], [432, 450]] as const) {
        const viaUndo = (await eventKeysIn(r, from, to, true)).map(keyText).sort();
        const viaScan = (await eventKeysIn(r, from, to, false)).map(keyText).sort();
        expect(viaUndo).toEqual(viaScan);
      }
      expect((await eventKeysIn(r, 0, 450, false)).length).toBeGreaterThan(10);
    });
  });

  it('tells a block alone what it tells within a range, and finds the one expiring registration at expiryHeight − window', async () => {
    await withSnapshot(db, async (r) => {
      const all = await deriveBlocks(r, regtest, 0, 450, 15);
      expect(all.map((b) => b.height)).toEqual(Array.from({ length: 451 }, (_, i) => i));
      const types = all.flatMap((b) => b.events.map((e) => e.type));
      expect(types.filter((t) => t === 'expiring')).toHaveLength(1);
      expect(all[231]!.events.map((e) => e.type)).toEqual(['expiring']);
      for (const h of [246, 432, 433, 442]) expect((await deriveBlocks(r, regtest, h, 450, 15))[0]).toEqual(all[h]);
    });
  });
});

describe('expiring, against a replay of every registration at every height', () => {
  it('finds exactly the live registrations with window blocks left at the end of each block, on random chains with renewals, expiry and lapse', async () => {
    let found = 0;
    await fc.assert(fc.asyncProperty(fc.integer({ min: 1, max: 1_000_000 }), fc.integer({ min: 1, max: TEST_PARAMS.expiryBlocks - 1 }), async (seed, window) => {
      const blocks = chainOf(30, seed);
      const { raw, params } = rawChainOf(blocks);
      const idx = await tempIndex(params);
      try {
        for (let h = 0; h < blocks.length; h++) {
          await connectRaw(idx, raw[h]!, h);
          await idx.view.spill(idx.state);
        }
        await withSnapshot(idx.db, async (r) => {
          const tip = blocks.length - 1;
          const derived = (await deriveBlocks(r, TEST_PARAMS, 0, tip, window))
            .flatMap((b) => b.events.filter((e) => e.type === 'expiring').map((e) => `${b.height} ${String(e.data.stakeScript)}`));
          const oracle: string[] = [];
          for (let h = 0; h <= tip; h++) {
            for (const reg of await registrationsAt(r, h)) {
              if (reg.status === 'active' && reg.expiryHeight - h === window) oracle.push(`${h} ${reg.stakeScript.toString('hex')}`);
            }
          }
          expect(derived.sort()).toEqual(oracle.sort());
          found += oracle.length;
          // Deriving from any later block alone says the same about the blocks it covers.
          const from = seed % (tip + 1);
          const later = (await deriveBlocks(r, TEST_PARAMS, from, tip, window))
            .flatMap((b) => b.events.filter((e) => e.type === 'expiring').map((e) => `${b.height} ${String(e.data.stakeScript)}`));
          expect(later.sort()).toEqual(oracle.filter((o) => Number(o.split(' ')[0]) >= from).sort());
        });
      } finally {
        await idx.close();
      }
    }), { numRuns: 10 });
    expect(found).toBeGreaterThan(10);
  });
});

describe('delivery policy', () => {
  it('delivers on 2xx, gives up on 3xx and 4xx except 408 and 429, retries the rest', () => {
    for (const s of [200, 201, 204, 299]) expect(judge(s).ok).toBe(true);
    for (const s of [301, 400, 401, 403, 404, 410, 422]) expect(judge(s)).toMatchObject({ ok: false, permanent: true });
    for (const s of [408, 429, 500, 502, 503, 504]) expect(judge(s)).toMatchObject({ ok: false, permanent: false });
  });

  it('backs off exponentially with jitter in the upper half, never past the cap', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 1, max: 10_000 }), fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), (attempt, base, rnd) => {
      const cap = 300_000;
      const full = Math.min(cap, base * 2 ** (attempt - 1));
      const d = backoffMs(attempt, base, cap, () => rnd);
      return d >= Math.floor(full / 2) && d <= Math.ceil(full) && d <= cap;
    }));
    expect(backoffMs(3, 100, 300_000, () => 0.999999)).toBe(400);
  });
});

describe('the sender against a real receiver', () => {
  it('gives up an event the receiver refuses (410) at once and one that keeps failing after its retries, records both, and delivers the rest once', async () => {
    // From the first block: as if webhooks had been on since the index was empty.
    await db.put(K.webhookCursor(), encodeCursor({ next: 0, hash: null, seq: 1, queueId: '00112233aabbccdd' }));
    const rx = new Receiver(await freePort());
    rx.answer = (b) => (b.seq === 2 ? 410 : b.seq === 3 ? 500 : 200);
    await rx.open();
    const logged: Array<[LogLevel, string, LogFields | undefined]> = [];
    const hooks = await Webhooks.open(db, regtest, {
      url: rx.url, secret: null, retries: 2, backoffMs: 1, expiringWindow: 15, log: (level, msg, fields) => { logged.push([level, msg, fields]); },
    });
    const ix = new EventEmitter() as unknown as Indexer;
    hooks.start(ix);
    try {
      await rx.until((r) => r.got.length > 0 && hooks.counters.delivered + hooks.counters.failed === hooks.counters.queued, 'the queue to drain');
    } finally {
      await hooks.stop();
      await rx.close();
    }
    const queued = hooks.counters.queued;
    expect(queued).toBeGreaterThan(20);
    expect(rx.got.filter((r) => r.body.seq === 2).map((r) => r.status)).toEqual([410]);
    expect(rx.got.filter((r) => r.body.seq === 3).map((r) => r.status)).toEqual([500, 500, 500]);
    expect(rx.accepted.map((r) => r.body.seq)).toEqual(Array.from({ length: queued }, (_, i) => i + 1).filter((s) => s !== 2 && s !== 3));
    const failed: Array<{ event: { seq: number }; status: number; attempts: number }> = [];
    for await (const [, v] of db.iterator(K.webhookFailures())) failed.push(JSON.parse(v.toString('utf8')) as (typeof failed)[number]);
    expect(failed.map((f) => [f.event.seq, f.status, f.attempts])).toEqual([[2, 410, 1], [3, 500, 3]]);
    for await (const k of db.keys(K.webhookQueued())) throw new Error(`still queued: ${k.toString('hex')}`);
    expect(logged.filter(([l, m]) => l === 'warn' && m.startsWith('webhook: event given up')).map(([, m]) => m)).toEqual(['webhook: event given up (refused)', 'webhook: event given up (no success after 3 attempts)']);
    expect(rx.got.every((r) => r.headers['x-nodereg-signature'] === undefined)).toBe(true);
  });
});

describe('the webhook flags', () => {
  const args = { webhook: 'http://127.0.0.1:9/hook', webhookRetries: 15, webhookBackoffMs: 1000 };
  const quiet = (): void => undefined;

  it('reads the secret without its trailing newline, and defaults the window to a tenth of expiryBlocks', async () => {
    const file = join(dir, 'secret');
    writeFileSync(file, 's3cret\n', { mode: 0o600 });
    const o = await webhookOptions(regtest, { ...args, webhookSecretFile: file }, quiet);
    expect(o?.secret?.toString()).toBe('s3cret');
    expect(o?.expiringWindow).toBe(15);
    expect(await webhookOptions(regtest, { ...args, webhook: undefined }, quiet)).toBeNull();
  });

  it('refuses a missing or empty secret file and a window that reaches expiryBlocks, saying what to do', async () => {
    await expect(webhookOptions(regtest, { ...args, webhookSecretFile: join(dir, 'nope') }, quiet)).rejects.toThrow(new UserError(`cannot read webhook secret file ${join(dir, 'nope')} (ENOENT)`));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '\n', { mode: 0o600 });
    await expect(webhookOptions(regtest, { ...args, webhookSecretFile: empty }, quiet)).rejects.toThrow(/webhook secret file .*empty is empty; write a long random secret into it/);
    await expect(webhookOptions(regtest, { ...args, expiringWindow: 144 }, quiet)).rejects.toThrow(new UsageError('--expiring-window must be below expiryBlocks (144 on regtest), got 144'));
  });
});
