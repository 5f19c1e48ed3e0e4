/**
 * `nodereg payouts --json` against an oracle written here from docs/spec.md
 * §2.10 alone. The oracle shares no code with the engine or the payouts
 * reader: it takes the live set at each height of the window from the §2.7
 * export at that height (the interchange format), and does the weights, the
 * floor shares, the dust rounds, the remainder and the table hash itself.
 * Chains: the demo fixture, and seeded random chains on a 5-block expiry
 * (so node age crosses several doublings in a few dozen blocks) with a
 * stale branch and a reorg in their blk files.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode, renewal } from '../fixtures/generator/announce.js';
import { storageOrder, writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { ACCOUNT_TYPES, type Account } from '../fixtures/generator/keys.js';
import { fixtureLayout } from '../fixtures/generator/output.js';
import { prng } from '../fixtures/generator/random.js';
import { payTo } from '../fixtures/generator/wallet.js';
import fc from 'fast-check';
import { payoutTableJson, payoutTableJsonPieces } from '../indexer/read/payoutjson.js';
import { payoutTable, shareOut } from '../indexer/read/payouts.js';
import { payeesOf, payouts } from '../indexer/read/listing.js';
import { exportAt, registrationsAt, type ExportJson } from '../indexer/read/queries.js';
import { K } from '../indexer/store/layout.js';
import { openStore } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS, paramsToJson, type NetworkParams } from '../script/params.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';
import { replayRegistry } from './helpers/replay.js';
import type { Transaction } from 'bitcoinjs-lib';

const COIN = 100_000_000n;
const SHORT: NetworkParams = { ...BUILTIN_NETWORKS.regtest!, name: 'payout-oracle', expiryBlocks: 5, minStake: 2n * COIN };

interface Row { stakeScript: string; address: string | null; weight: number; amount: string }
interface Table { from: number; to: number; amount: string; weight: string; payouts: Row[]; payoutsHash: string }
/** `via: 'lib'` asks `payoutTable` in process (the function behind the CLI and the route), to spare a process start. */
interface Case { from: number; to: number; amount: bigint; weight: 'uptime' | 'age'; minPayout: bigint; via?: 'cli' | 'lib' }

/** What the oracle saw, so the test can insist that the cases reach every rule. */
interface Seen { dustRounds: number; remainder: bigint; maxAgeLevel: number }

/** ⌊log2(x)⌋ for x ≥ 1, by halving: no bit tricks shared with anyone. */
function floorLog2(x: number): number {
  let n = 0;
  while (x >= 2) {
    x = Math.floor(x / 2);
    n++;
  }
  return n;
}

/** docs/spec.md §2.10 from the per-height exports of the window. */
function oracle(exports: (h: number) => ExportJson, expiryBlocks: number, q: Case): { table: Row[]; hash: string; seen: Seen } {
  interface Acc { stakeScript: string; address: string | null; weight: number; firstHeight: number; firstTxid: string; rank: number }
  const acc = new Map<string, Acc>();
  let maxAgeLevel = 0;
  for (let h = q.from; h <= q.to; h++) {
    for (const n of exports(h).nodes) {
      if (n.status !== 'active') continue;
      const a = Math.floor((h - n.firstHeight) / expiryBlocks);
      const level = 1 + floorLog2(1 + a);
      maxAgeLevel = Math.max(maxAgeLevel, level);
      let r = acc.get(n.stakeScript);
      if (!r) {
        // The earliest live registration: its place among same-height registrations is its place in this export (FIRST_SEEN order).
        const at = exports(Math.max(n.firstHeight, q.from)).nodes;
        const rank = at.findIndex((m) => m.firstTxid === n.firstTxid);
        if (rank < 0) throw new Error(`oracle: ${n.firstTxid} is live at ${h} but not listed at ${Math.max(n.firstHeight, q.from)}`);
        r = { stakeScript: n.stakeScript, address: n.address, weight: 0, firstHeight: n.firstHeight, firstTxid: n.firstTxid, rank };
        acc.set(n.stakeScript, r);
      }
      r.weight += q.weight === 'uptime' ? 1 : level;
    }
  }
  let kept = [...acc.values()].sort((x, y) => x.firstHeight - y.firstHeight || x.rank - y.rank);
  let shares: bigint[] = [];
  let dustRounds = 0;
  for (;;) {
    let total = 0n;
    for (const r of kept) total += BigInt(r.weight);
    shares = kept.map((r) => (q.amount * BigInt(r.weight)) / total);
    const dust = shares.filter((s) => s < q.minPayout).length;
    if (dust === 0) break;
    dustRounds++;
    kept = kept.filter((_, i) => shares[i]! >= q.minPayout);
    if (kept.length === 0) {
      shares = [];
      break;
    }
  }
  const remainder = q.amount - shares.reduce((s, x) => s + x, 0n);
  if (kept.length > 0 && remainder >= BigInt(kept.length)) throw new Error('oracle: remainder not below the recipient count');
  const table = kept.map((r, i) => ({ stakeScript: r.stakeScript, address: r.address, weight: r.weight, amount: (shares[i]! + (BigInt(i) < remainder ? 1n : 0n)).toString() }));
  const text = `[${table.map((r) => `{"stakeScript":"${r.stakeScript}","weight":${r.weight},"amount":"${r.amount}"}`).join(',')}]`;
  return { table, hash: createHash('sha256').update(text, 'utf8').digest('hex'), seen: { dustRounds, remainder: kept.length > 0 ? remainder : 0n, maxAgeLevel } };
}

/** The live guesses a chain script keeps to make mostly-valid announcements; the index is the truth, so a wrong guess is only a rejection. */
interface Guess { tip: Transaction; expiry: number }

/**
 * A seeded chain where eight stakes of every type register, renew, drain
 * below minStake, get refilled and register again, with a two-block stale
 * branch and a reorg that replaces four blocks by six.
 */
function randomChain(seed: number): ChainBuilder {
  const rand = prng(seed);
  const c = new ChainBuilder({ seed: `payout-oracle-${seed}`, params: SHORT });
  const stakes: Account[] = Array.from({ length: 8 }, (_, i) => c.account(`s${i}`, ACCOUNT_TYPES[i % ACCOUNT_TYPES.length]!));
  c.mineEmpty(100);
  c.wallet.pay(c.miner, stakes.map((s) => payTo(s, 3n * COIN)));
  c.mine();
  const act = (b: ChainBuilder, guess: Map<string, Guess>): void => {
    const next = b.height + 1;
    for (const s of stakes) {
      const g = guess.get(s.name);
      const live = g !== undefined && g.expiry > next - 1;
      const roll = rand();
      try {
        if (roll < 0.06) {
          b.wallet.pay(s, [payTo(b.miner, 3n * COIN / 2n)]);
          guess.delete(s.name);
        } else if (roll < 0.12) {
          b.wallet.pay(b.miner, [payTo(s, 3n * COIN / 2n)]);
        } else if (!live && roll < 0.5) {
          guess.set(s.name, { tip: b.wallet.pay(s, [carrier(newNode(s, b.nextTime()))]), expiry: next + SHORT.expiryBlocks });
        } else if (live && roll < 0.8) {
          guess.set(s.name, { tip: b.wallet.pay(s, [carrier(renewal(s, b.nextTime(), g!.tip))]), expiry: next + SHORT.expiryBlocks });
        }
      } catch {
        // not enough coins for this move: skip it
      }
    }
    b.mine();
  };
  let b = c;
  let guess = new Map<string, Guess>();
  for (let i = 0; i < 60; i++) {
    if (i === 25) {
      const stale = b.fork(b.height - 1);
      const g = new Map(guess);
      act(stale, g);
      act(stale, g);
    }
    if (i === 45) {
      const side = b.fork(b.height - 4);
      guess = new Map(guess);
      for (let k = 0; k < 6; k++) act(side, guess);
      b = side;
    }
    act(b, guess);
  }
  return b;
}

let tmp: string;

/**
 * `recount --db` through the CLI, then the exports at every height of the
 * cases' windows, read here once (the oracle asks for each many times); the
 * index is closed again before the CLI reads it.
 */
async function indexOf(name: string, blocksDir: string, params: NetworkParams, paramsArgs: string[], cases: readonly Case[]): Promise<{ dbDir: string; exports: (h: number) => ExportJson; lib: Map<Case, Table> }> {
  const dbDir = join(tmp, name);
  const res = await noderegIn(['recount', ...paramsArgs, '--blocks-dir', blocksDir, '--db', dbDir]);
  expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
  const db = await openStore(dbDir, params, { create: false });
  const byHeight = new Map<number, ExportJson>();
  const lib = new Map<Case, Table>();
  try {
    for (const q of cases) for (let h = q.from; h <= q.to; h++) if (!byHeight.has(h)) byHeight.set(h, await exportAt(db, params, h));
    byHeight.set(-1, await exportAt(db, params));
    for (const q of cases) if (q.via === 'lib') lib.set(q, await payoutTable(db, params, q));
  } finally {
    await db.close();
  }
  return { dbDir, exports: (h) => byHeight.get(h)!, lib };
}

/** `payouts --json` in this process (`noderegIn`); the schema-1 refusal below spawns the binary. */
async function cli(dbDir: string, q: Case): Promise<Table> {
  const res = await noderegIn(['payouts', '--db', dbDir, '--from', String(q.from), '--to', String(q.to), '--amount', q.amount.toString(),
    '--weight', q.weight, '--min-payout', q.minPayout.toString(), '--json']);
  expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
  return JSON.parse(res.stdout) as Table;
}

async function agrees(dbDir: string, lib: Map<Case, Table>, exports: (h: number) => ExportJson, expiryBlocks: number, q: Case): Promise<Seen> {
  const want = oracle(exports, expiryBlocks, q);
  const got = q.via === 'lib' ? lib.get(q)! : await cli(dbDir, q);
  expect(got).toEqual({ from: q.from, to: q.to, amount: q.amount.toString(), weight: q.weight, payouts: want.table, payoutsHash: want.hash });
  return want.seen;
}

/**
 * The window listing without an amount (`GET /v1/payouts?from&to`) reads
 * the lifetime rows of the registrations live at `to`; here it must equal
 * the same listing made from a replay of every stake's events, at every
 * height and for windows of several lengths, including registrations
 * renewed after `to` (whose renewal count then is the one at `to`).
 */
async function sameLiveListing(dbDir: string, tip: number): Promise<void> {
  const db = await openStore(dbDir, SHORT, { create: false });
  try {
    const now = new Map((await registrationsAt(db, tip)).map((r) => [`${r.firstHeight}:${r.firstIndex}`, r]));
    let listed = 0;
    let renewedLater = 0;
    for (let to = 0; to <= tip; to++) {
      const regs = await registrationsAt(db, to);
      for (const from of new Set([to, Math.max(0, to - 3), Math.max(0, to - 10)])) {
        const want = payeesOf(regs, SHORT, from, to, 0);
        expect(await payouts(db, SHORT, from, to, 0)).toEqual(want);
        listed += want.nodes.length;
      }
      for (const r of regs) if (r.status === 'active' && (now.get(`${r.firstHeight}:${r.firstIndex}`)?.tipHeight ?? 0) > to) renewedLater++;
    }
    expect(listed).toBeGreaterThan(0);
    expect(renewedLater).toBeGreaterThan(0);
  } finally {
    await db.close();
  }
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-payouts-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('nodereg payouts --json equals an independent §2.10 oracle', () => {
  it('on the demo chain: an expiry, a lapse, renewals, a stale branch', async () => {
    const regtest = BUILTIN_NETWORKS.regtest!;
    const cases: Case[] = [
      { from: 236, to: 250, amount: 123_456_789n, weight: 'uptime', minPayout: 546n },
      { from: 425, to: 450, amount: 10n ** 25n + 1n, weight: 'age', minPayout: 546n, via: 'lib' },
      { from: 430, to: 450, amount: 99_999n, weight: 'age', minPayout: 20_000n },
      { from: 441, to: 443, amount: 5n, weight: 'uptime', minPayout: 0n },
    ];
    const { dbDir, exports, lib } = await indexOf('demo', join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), regtest, ['--network', 'regtest'], cases);
    const seen: Seen[] = [];
    for (const q of cases) seen.push(await agrees(dbDir, lib, exports, regtest.expiryBlocks, q));
    expect(seen.some((s) => s.dustRounds > 0) && seen.some((s) => s.remainder > 0n)).toBe(true);
    expect(Math.max(...seen.map((s) => s.maxAgeLevel))).toBe(1);
  }, 300_000);

  it.each([2026])('on a random chain with a stale branch and a reorg (seed %i), several windows, weights and dust levels', async (seed) => {
    const chain = randomChain(seed);
    const dir = join(tmp, `chain-${seed}`);
    writeBlocksDir(join(dir, 'blocks'), storageOrder(chain), fixtureLayout(chain));
    const paramsFile = join(dir, 'params.json');
    writeFileSync(paramsFile, JSON.stringify(paramsToJson(SHORT)));
    const tip = chain.height;
    const cases: Case[] = [
      { from: 98, to: tip, amount: 1_000_003n, weight: 'uptime', minPayout: 546n },
      { from: 98, to: tip, amount: 1_000_003n, weight: 'age', minPayout: 546n, via: 'lib' },
      { from: 110, to: 135, amount: 10n ** 20n + 13n, weight: 'age', minPayout: 0n },
      { from: tip - 12, to: tip, amount: 40_000n, weight: 'age', minPayout: 4_000n, via: 'lib' },
      { from: 120, to: 120, amount: 3n, weight: 'uptime', minPayout: 0n, via: 'lib' },
      { from: 5, to: 12, amount: 1_000n, weight: 'uptime', minPayout: 546n, via: 'lib' },
    ];
    const { dbDir, exports, lib } = await indexOf(`db-${seed}`, join(dir, 'blocks'), SHORT, ['--params', paramsFile], cases);
    // The exports the oracle trusts agree at the tip with a naive replay of the chosen chain.
    expect(exports(-1).height).toBe(tip);
    const live = exports(tip).nodes.filter((n) => n.status === 'active').map((n) => n.stakeScript);
    expect(live.sort()).toEqual([...replayRegistry(chain.bestChain(), SHORT).live].sort());
    expect(exports(tip).nodes.map((n) => n.status)).toEqual(expect.arrayContaining(['expired', 'lapsed']));
    await sameLiveListing(dbDir, tip);
    const seen: Seen[] = [];
    for (const q of cases) seen.push(await agrees(dbDir, lib, exports, SHORT.expiryBlocks, q));
    expect(seen.some((s) => s.dustRounds > 0)).toBe(true);
    expect(seen.some((s) => s.remainder > 0n)).toBe(true);
    expect(Math.max(...seen.map((s) => s.maxAgeLevel))).toBeGreaterThanOrEqual(3);
  }, 300_000);

  it('an index of schema version 1 (no lifetime rows) is refused with the rebuild advice, not answered wrongly', async () => {
    const dbDir = join(tmp, 'schema1');
    const db = await openStore(dbDir, BUILTIN_NETWORKS.regtest!, { create: true });
    await db.put(K.meta('schema'), Buffer.from('1'));
    await db.close();
    const res = nodereg(['payouts', '--db', dbDir, '--from', '0', '--to', '0', '--amount', '1000']);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 1, stderr: expect.stringMatching(/^nodereg: the index at .* has schema version 1, but this nodereg uses 2; delete the directory and rebuild it/) });
  });
});

/** §2.10's shares in BigInts throughout, as the oracle above does them: the reference for shareOut's Number shortcut. */
function bigShares(weights: number[], amount: bigint, minPayout: bigint): Array<[number, string]> {
  let kept = weights.map((w, i) => ({ i, w: BigInt(w) }));
  let shares: bigint[] = [];
  for (;;) {
    const total = kept.reduce((t, k) => t + k.w, 0n);
    shares = kept.map((k) => (total === 0n ? 0n : (amount * k.w) / total));
    if (shares.every((x) => x >= minPayout)) break;
    kept = kept.filter((_, j) => shares[j]! >= minPayout);
  }
  let remainder = amount - shares.reduce((t, x) => t + x, 0n);
  return kept.map((k, j) => {
    const extra = remainder > 0n ? 1n : 0n;
    remainder -= extra;
    return [k.i, (shares[j]! + extra).toString()];
  });
}

describe('payout arithmetic and JSON beyond what the chains above reach', () => {
  it('shares equal BigInt arithmetic for amounts and weights on both sides of 2^53', () => {
    const near = (x: bigint): fc.Arbitrary<bigint> => fc.bigInt({ min: x - 5000n, max: x + 5000n });
    const amount = fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 6n }), near(2n ** 53n), fc.bigInt({ min: 1n, max: 10n ** 30n }));
    const weight = fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 2 ** 20, max: 2 ** 27 }), fc.integer({ min: 1, max: 2 ** 31 }));
    fc.assert(fc.property(fc.array(weight, { minLength: 1, maxLength: 60 }), amount, fc.bigInt({ min: 0n, max: 10n ** 7n }), (weights, a, minPayout) => {
      const got = shareOut(weights.map((weight, i) => ({ weight, i })), a, minPayout).map((s) => [s.recipient.i, s.amount]);
      expect(got).toEqual(bigShares(weights, a, minPayout));
    }), { numRuns: 1500 });
  });

  it('the table JSON written in pieces is JSON.stringify of the table, minified and indented, across piece boundaries', () => {
    for (const n of [0, 1, 399, 400, 401, 1234]) {
      const table = {
        from: 7, to: 1006, amount: '123456789012345678901', weight: 'age' as const,
        payouts: Array.from({ length: n }, (_, i) => ({ stakeScript: `0014${i.toString(16).padStart(40, '0')}`, address: i % 3 === 0 ? null : `bcrt1q${i}`, weight: i + 1, amount: String(1000 + i) })),
        payoutsHash: 'ab'.repeat(32),
      };
      for (const indent of [0, 2] as const) {
        expect(payoutTableJson(table, indent).toString()).toBe(JSON.stringify(table, null, indent));
        expect(Buffer.concat(payoutTableJsonPieces(table, indent)).equals(payoutTableJson(table, indent))).toBe(true);
      }
    }
  });
});
