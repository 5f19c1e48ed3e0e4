import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { deriveBlocks, eventKeysIn } from '../indexer/read/blockevents.js';
import { withSnapshot } from '../indexer/read/snapshot.js';
import { openStore, type DB } from '../indexer/store/store.js';
import { backoffMs, judge } from '../indexer/notify/sender.js';
import { nodereg, ROOT } from './helpers/cli.js';

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
