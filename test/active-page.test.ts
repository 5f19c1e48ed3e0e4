import { createHash } from 'node:crypto';
import { prng } from '../fixtures/generator/random.js';
import type { ScannedTx } from '../indexer/chain/scanner.js';
import { indexPageRows, pageNodes, pageOf, type PageQuery, type PageRows } from '../indexer/read/listing.js';
import { byFirstSeen, registrationsAt } from '../indexer/read/queries.js';
import type { ReadDB } from '../indexer/read/snapshot.js';
import { K, OPEN, P, parse } from '../indexer/store/layout.js';
import { encodeCarrier, type Announcement } from '../script/carrier.js';
import type { NetworkParams } from '../script/params.js';
import { connectRaw, tempIndex, type TempIndex } from './helpers/db.js';
import { genesis, rawChainOf, stakeScript, TEST_PARAMS, type SynthBlock } from './helpers/synthetic.js';

/*
 * A page of active registrations walks the live set (the lifetime rows of
 * the registrations not ended by its height), not every registration. Its
 * answers must be the ones the walk over every registration gave, byte for
 * byte, and what it reads must grow with the live set and the page, not
 * with the registrations that ended before.
 */

const BLOCKS = 120;
const SCRIPTS = 90;
/** Stakes below this number stop, one after another, over the chain: the tip has far fewer live than ever registered. */
const RETIRING = 60;
const retiresAt = (i: number): number => (i < RETIRING ? 10 + Math.floor((i * (BLOCKS - 20)) / RETIRING) : Infinity);
const STAKE = 5000n;

/** A non-stake script where a stake's coin waits between a lapse and the next registration. */
const walletOf = (i: number): Buffer => Buffer.concat([Buffer.of(0x00, 0x14), createHash('sha256').update(`wallet${i}`).digest().subarray(0, 20)]);

/**
 * A registry lifecycle over SCRIPTS stakes, one coin each moving between the
 * stake and its wallet: each block, a stake not registered may register, a
 * registered one may renew, lapse (its coin goes to the wallet) or be left
 * to expire, and a lapsed one's coin may come back; most stakes stop
 * registering at some height (`retiresAt`). The model of who is live
 * only steers the choices; the engine judges every announcement.
 */
function lifecycle(seed: number): SynthBlock[] {
  const rand = prng(seed);
  const g = genesis();
  const txid = (s: string): Buffer => createHash('sha256').update(`active-page-${seed}-${s}`).digest();
  const fund: ScannedTx = {
    index: 0, txid: txid('fund'), coinbase: true, inputs: [{ prevTxid: Buffer.alloc(32), prevVout: 0xffffffff }],
    outputs: Array.from({ length: SCRIPTS }, (_, i) => ({ value: STAKE, script: stakeScript(i) })),
  };
  const coins = Array.from({ length: SCRIPTS }, (_, i) => ({ txid: fund.txid, vout: i, inWallet: false }));
  const regs: Array<{ expiry: number; tipTxid: Buffer } | null> = Array.from({ length: SCRIPTS }, () => null);
  const blocks: SynthBlock[] = [g];
  for (let h = 1; h <= BLOCKS; h++) {
    const time = g.block.time + 600 * h;
    const txs: ScannedTx[] = [h === 1 ? fund : { ...fund, txid: txid(`cb${h}`), outputs: [{ value: 50n, script: walletOf(-1) }] }];
    for (let i = 0; i < SCRIPTS && h > 1; i++) {
      const r = rand();
      const coin = coins[i]!;
      const reg = regs[i]!;
      const live = reg !== null && h < reg.expiry;
      let toWallet = false;
      let ann: Announcement | null = null;
      if (coin.inWallet) {
        if (r >= 0.3) continue;
      } else if (!live) {
        if (r >= 0.3 || h >= retiresAt(i)) continue;
        ann = { kind: 'newnode', stakeScript: stakeScript(i), timestamp: time };
      } else if (r < 0.3 && h < retiresAt(i)) {
        ann = { kind: 'renewal', stakeScript: stakeScript(i), timestamp: time, prevTxid: reg.tipTxid };
      } else if (r < 0.38) {
        toWallet = true;
      } else continue;
      const id = txid(`${h}-${i}`);
      const outputs = [{ value: STAKE, script: toWallet ? walletOf(i) : stakeScript(i) }];
      if (ann) outputs.push({ value: 0n, script: encodeCarrier(ann) });
      txs.push({ index: txs.length, txid: id, coinbase: false, inputs: [{ prevTxid: coin.txid, prevVout: coin.vout }], outputs });
      coins[i] = { txid: id, vout: 0, inWallet: toWallet };
      if (ann) regs[i] = { expiry: h + TEST_PARAMS.expiryBlocks, tipTxid: id };
      if (toWallet) regs[i] = null;
    }
    blocks.push({ block: { hash: Buffer.alloc(32), header: Buffer.alloc(80), prevHash: Buffer.alloc(32), merkleRoot: Buffer.alloc(32), time, bits: 0x207fffff, txs }, utxos: [], tips: new Map() });
  }
  return blocks;
}

let idx: TempIndex;
let params: NetworkParams;
let tip: number;

beforeAll(async () => {
  const chain = rawChainOf(lifecycle(20261204));
  params = chain.params;
  idx = await tempIndex(params);
  for (let h = 0; h < chain.raw.length; h++) {
    await connectRaw(idx, chain.raw[h]!, h);
    if (h % 10 === 9 || h === chain.raw.length - 1) await idx.view.spill(idx.state);
  }
  tip = chain.raw.length - 1;
});

afterAll(async () => {
  await idx?.close();
});

/** The page rows as they were before the live walk: a page of active ones walks every registration. */
const walkingAll = (rows: PageRows): PageRows => ({ ...rows, live: rows.registrations });

const cursorOf = (c: { firstHeight: number; firstIndex: number }): string => Buffer.from(`${c.firstHeight}:${c.firstIndex}`).toString('base64url');

/** How many lifetime rows say a registration ended in a block after `h` (the extra a past height's live walk reads). */
async function endedAfter(h: number): Promise<number> {
  let n = 0;
  for await (const _ of idx.db.keys(K.lifetimesEndedAfter(h))) n++;
  return n;
}

/** A reader that counts the rows read through it, by key prefix. */
function counting(db: ReadDB): { db: ReadDB; reads: (prefix: number) => number } {
  const seen = new Map<number, number>();
  const note = (k: Buffer): void => {
    seen.set(k[0]!, (seen.get(k[0]!) ?? 0) + 1);
  };
  return {
    reads: (prefix) => seen.get(prefix) ?? 0,
    db: {
      get: async (k) => {
        note(k);
        return db.get(k);
      },
      getMany: async (ks) => {
        ks.forEach(note);
        return db.getMany(ks);
      },
      iterator: (range) => (async function* () {
        for await (const row of db.iterator(range)) {
          note(row[0]);
          yield row;
        }
      })(),
      keys: (range) => (async function* () {
        for await (const k of db.keys(range)) {
          note(k);
          yield k;
        }
      })(),
    },
  };
}

describe('a page of active registrations', () => {
  it('the history has many expiries, renewals, lapses and registrations again, and few live at the tip', async () => {
    const kinds = new Map<string, number>();
    let ended = 0;
    for await (const k of idx.db.keys(K.all(P.event))) {
      const kind = ['registered', 'renewed', 'expired', 'lapsed'][parse.event(k).kind]!;
      kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
    }
    for await (const k of idx.db.keys(K.all(P.lifetime))) if (parse.lifetime(k).endedHeight !== OPEN) ended++;
    const live = (await registrationsAt(idx.db, tip)).filter((r) => r.status === 'active').length;
    expect(kinds.get('expired')).toBeGreaterThan(20);
    expect(kinds.get('lapsed')).toBeGreaterThan(5);
    expect(kinds.get('renewed')).toBeGreaterThan(20);
    expect(kinds.get('registered')!).toBeGreaterThan(SCRIPTS);
    // More live at the tip than the first read of a page takes (16), far more stakes ever registered.
    expect(live).toBeGreaterThan(16);
    expect(SCRIPTS).toBeGreaterThan(3 * live);
    expect(ended).toBeGreaterThan(5 * live);
  });

  it('gives the answers the walk over every registration gave, byte for byte, at the tip and past heights, from any cursor', async () => {
    const rows = indexPageRows(idx.db, tip);
    const old = walkingAll(rows);
    const heights = [0, 7, 45, tip - 1, tip];
    let compared = 0;
    let nonEmpty = 0;
    for (const h of heights) {
      const all = await registrationsAt(idx.db, h);
      // Places of every status (a cursor of one filter may be passed to another), past the last, past 32 bits.
      const places = [null, ...all.filter((_, i) => i % 12 === 5), { firstHeight: h + 1, firstIndex: 0 }, { firstHeight: 2 ** 32 + 3, firstIndex: 0 }, { firstHeight: 3, firstIndex: 2 ** 32 }];
      // A page of the old walk over every registration costs up to the whole history: the longer pages from the start only.
      const queries: PageQuery[] = [{ status: 'active', limit: 2 }, { status: 'all', expiringWithin: 3, limit: 2 }];
      const fromStart: PageQuery[] = [{ limit: 100 }, { status: 'lapsed', expiringWithin: 5, limit: 1 }];
      for (const place of places) {
        for (const q of place === null ? [...queries, ...fromStart] : queries) {
          const query: PageQuery = { ...q, at: h, cursor: place === null ? undefined : cursorOf(place) };
          const want = JSON.stringify(await pageOf(old, tip, params, query));
          const got = JSON.stringify(await pageOf(rows, tip, params, query));
          expect(got).toBe(want);
          compared++;
          if (JSON.parse(got).nodes.length > 0) nonEmpty++;
        }
      }
      // Followed page by page, the active pages are the live part of the registry at h, in order.
      const live = all.filter((r) => r.status === 'active').sort(byFirstSeen).map((r) => r.stakeScript.toString('hex'));
      const seen: string[] = [];
      for (let cursor: string | undefined, n = 0; n <= live.length; n++) {
        const page = await pageNodes(idx.db, params, { at: h, limit: 1, cursor });
        seen.push(...page.nodes.map((x) => x.stakeScript));
        if (page.nextCursor === null) break;
        cursor = page.nextCursor;
      }
      expect(seen).toEqual(live);
    }
    expect(nonEmpty).toBeGreaterThan(compared / 4);
  });

  it('at the tip reads the live registrations only: no FIRST_SEEN row, no event, none of the ended ones', async () => {
    const live = (await registrationsAt(idx.db, tip)).filter((r) => r.status === 'active').length;
    const now = counting(idx.db);
    const page = await pageNodes(now.db, params, { limit: 1000 });
    expect(page.nodes.length).toBe(live);
    expect(now.reads(P.firstSeen)).toBe(0);
    expect(now.reads(P.event)).toBe(0);
    expect(now.reads(P.lifetime)).toBe(live);
    expect(now.reads(P.registration)).toBe(live);
    // The same page the old way reads a registration row per stake that ever registered.
    const before = counting(idx.db);
    expect(JSON.stringify(await pageOf(walkingAll(indexPageRows(before.db, tip)), tip, params, { limit: 1000 }))).toBe(JSON.stringify(page));
    expect(before.reads(P.registration)).toBe(SCRIPTS);
  });

  it('at the tip reads about the page, not the whole live set', async () => {
    const live = (await registrationsAt(idx.db, tip)).filter((r) => r.status === 'active');
    const one = counting(idx.db);
    const page = await pageNodes(one.db, params, { limit: 1 });
    expect(page.nodes.length).toBe(1);
    // The first read takes a handful of rows (16), not every live one.
    expect(live.length).toBeGreaterThan(16);
    expect(one.reads(P.lifetime)).toBeLessThanOrEqual(16);
    expect(one.reads(P.registration)).toBeLessThanOrEqual(16);
    const from = counting(idx.db);
    const last = live[live.length - 2]!;
    await pageNodes(from.db, params, { limit: 1, cursor: cursorOf(last) });
    expect(from.reads(P.lifetime)).toBe(1);
    expect(from.reads(P.registration)).toBe(1);
  });

  it('at a past height reads the registrations live then and those ended since, not those ended before', async () => {
    let checked = 0;
    for (let h = 20; h < tip; h += 23) {
      const live = (await registrationsAt(idx.db, h)).filter((r) => r.status === 'active').length;
      const since = await endedAfter(h);
      const past = counting(idx.db);
      const page = await pageNodes(past.db, params, { at: h, limit: 1000 });
      expect(page.nodes.length).toBe(live);
      expect(past.reads(P.firstSeen)).toBe(0);
      expect(past.reads(P.lifetime)).toBeLessThanOrEqual(live + since);
      expect(past.reads(P.registration)).toBe(live);
      let endedBefore = 0;
      for await (const _ of idx.db.keys({ gte: K.lifetime(0, Buffer.alloc(8)), lt: K.lifetime(h + 1, Buffer.alloc(8)) })) endedBefore++;
      if (endedBefore > live + since) checked++;
    }
    // At some of those heights more had ended before than the page read at all.
    expect(checked).toBeGreaterThan(0);
  });
});
