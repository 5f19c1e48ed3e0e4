import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ecc from '@bitcoinerlab/secp256k1';
import { Block, Transaction } from 'bitcoinjs-lib';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { REASON_CODES } from '../script/reasons.js';
import { layoutBlkFiles, storageOrder, writeBlocksDir, type BlkLayoutOptions } from '../fixtures/generator/blkwriter.js';
import { REGTEST_BITS, subsidy } from '../fixtures/generator/block.js';
import { BCOIN_REGTEST_SEGWIT_HEIGHT, ChainBuilder, type MinedBlock } from '../fixtures/generator/chain.js';
import { chainManifest, type ChainManifest } from '../fixtures/generator/manifest.js';
import { fixtureLayout } from '../fixtures/generator/output.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { replayRegistry } from './helpers/replay.js';

const regtest = BUILTIN_NETWORKS.regtest!;
const MAGIC = Buffer.from(regtest.magic, 'hex');
const KEY = Buffer.from('0102030405060708', 'hex');

/** A tiny, independent blk reader: de-obfuscate, then scan for the magic, as docs/spec.md §2.8 describes. */
function readBlk(files: readonly Uint8Array[], key?: Uint8Array): Buffer[] {
  const out: Buffer[] = [];
  for (const file of files) {
    const buf = Buffer.from(file);
    if (key) for (let p = 0; p < buf.length; p++) buf[p] ^= key[p % 8]!;
    let pos = 0;
    while (pos + 8 <= buf.length) {
      if (!buf.subarray(pos, pos + 4).equals(MAGIC)) {
        pos++;
        continue;
      }
      const size = buf.readUInt32LE(pos + 4);
      out.push(buf.subarray(pos + 8, pos + 8 + size));
      pos += 8 + size;
    }
  }
  return out;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const sortedHex = (bs: readonly Uint8Array[]): string[] => bs.map(hex).sort();

/** Core's `CScript() << height`, written out independently of bitcoinjs-lib. */
function bip34Prefix(height: number): Buffer {
  if (height >= 1 && height <= 16) return Buffer.of(0x50 + height);
  const bytes: number[] = [];
  for (let v = height; v > 0; v = Math.floor(v / 256)) bytes.push(v & 0xff);
  if (bytes[bytes.length - 1]! & 0x80) bytes.push(0);
  return Buffer.from([bytes.length, ...bytes]);
}

/** A short chain with mature coins and a little traffic, cheap enough to build per test. */
function smallChain(seed = 'small'): ChainBuilder {
  const c = new ChainBuilder({ seed });
  c.mineEmpty(101);
  const bob = c.account('bob', 'p2tr');
  c.wallet.pay(c.miner, [payTo(bob, 10n ** 8n), payTo(c.account('amy', 'p2wsh'), 10n ** 8n)]);
  c.mine();
  return c;
}

const demoChain = demo();
const demoBlocks = [demoChain.genesis, ...demoChain.blocks()];
const DEMO_LAYOUT: BlkLayoutOptions = { magic: regtest.magic, xorKey: KEY, zeroTail: 4096 };

describe('the chain generator', () => {
  test('the same seed gives byte-identical blk files', () => {
    const again = demo();
    const a = layoutBlkFiles(storageOrder(demoChain), DEMO_LAYOUT);
    const b = layoutBlkFiles(storageOrder(again), DEMO_LAYOUT);
    expect(b.map((f) => hex(f.bytes))).toEqual(a.map((f) => hex(f.bytes)));
  });

  test('a different seed gives a different chain', () => {
    expect(demo('another seed').tip.hash).not.toBe(demoChain.tip.hash);
  });

  test('every block meets its proof of work and commits to its transactions and witnesses', () => {
    for (const b of demoBlocks) {
      const block = Block.fromBuffer(b.raw);
      expect(block.getId()).toBe(b.hash);
      expect(block.bits).toBe(REGTEST_BITS);
      expect(block.checkProofOfWork()).toBe(true);
      expect(block.checkTxRoots()).toBe(true);
      if (block.transactions!.some((t) => t.hasWitnesses())) expect(block.hasWitnessCommit()).toBe(true);
    }
  });

  test('every block links to its parent and the best chain runs from genesis to the tip', () => {
    const best = demoChain.bestChain();
    expect(best[0]!.hash).toBe(regtest.genesisHash);
    best.forEach((b, h) => {
      expect(b.height).toBe(h);
      if (h > 0) expect(toRpc(Block.fromBuffer(b.raw).prevHash!)).toBe(best[h - 1]!.hash);
    });
  });

  test('each coinbase starts with its height pushed the way Core checks BIP34', () => {
    for (const b of demoChain.blocks()) {
      const cb = Block.fromBuffer(b.raw).transactions![0]!;
      const prefix = bip34Prefix(b.height);
      expect(hex(cb.ins[0]!.script.subarray(0, prefix.length))).toBe(hex(prefix));
      expect(cb.ins[0]!.script.length).toBeGreaterThanOrEqual(2);
      expect(cb.ins[0]!.script.length).toBeLessThanOrEqual(100);
    }
  });

  test('stale blocks at the same height never share a coinbase with the main chain', () => {
    const main = new Map(demoChain.bestChain().map((b) => [b.height, b]));
    for (const s of demoChain.staleBlocks()) expect(s.txids[0]).not.toBe(main.get(s.height)!.txids[0]);
  });

  test('block rewards halve every 150 blocks on regtest and collect the fees', () => {
    expect(subsidy(149, 150)).toBe(5_000_000_000n);
    expect(subsidy(150, 150)).toBe(2_500_000_000n);
    expect(subsidy(450, 150)).toBe(625_000_000n);
    const withTxs = demoChain.bestChain().find((b) => b.txids.length > 1 && b.height > 150)!;
    const block = Block.fromBuffer(withTxs.raw);
    const paid = block.transactions![0]!.outs.reduce((s, o) => s + o.value, 0n);
    expect(paid).toBe(subsidy(withTxs.height, 150) + 1000n * BigInt(block.transactions!.length - 1));
  });

  test('block times start where asked, step evenly, and stay above the median time past', () => {
    const c = new ChainBuilder({ seed: 't', timeStep: 30, firstBlockTime: 1_600_000_000 });
    const blocks = c.mineEmpty(15);
    expect(blocks[0]!.time).toBe(1_600_000_000);
    blocks.slice(1).forEach((b, i) => expect(b.time).toBe(blocks[i]!.time + 30));
    const times = demoBlocks.filter((b) => b.branch === 0).map((b) => b.time);
    times.slice(1).forEach((t, i) => expect(t).toBeGreaterThan(times[i]!));
  });

  test('an explicit block time is used as given, and one not above the median time past is refused', () => {
    const c = new ChainBuilder({ seed: 't' });
    c.mineEmpty(11);
    const mtp = c.medianTimePast();
    expect(() => c.mine([], { time: mtp })).toThrow(/median time past/);
    expect(c.mine([], { time: mtp + 1 }).time).toBe(mtp + 1);
    expect(c.nextTime()).toBeGreaterThan(mtp + 1);
  });

  test('a coinbase output becomes spendable in the block 100 above its own', () => {
    const c = new ChainBuilder({ seed: 't' });
    c.mineEmpty(99);
    expect(c.wallet.coins(c.miner)).toHaveLength(0);
    expect(c.wallet.balance(c.miner)).toBe(99n * 5_000_000_000n);
    c.mineEmpty(1);
    expect(c.wallet.coins(c.miner).map((coin) => coin.height)).toEqual([1]);
  });

  test('witness transactions below the configured segwit height are refused', () => {
    const c = new ChainBuilder({ seed: 't', segwitHeight: BCOIN_REGTEST_SEGWIT_HEIGHT });
    c.mineEmpty(101);
    const amy = c.account('amy', 'p2wpkh');
    c.wallet.pay(c.miner, [payTo(amy, 10n ** 8n)]);
    c.mine();
    c.wallet.pay(amy, [payTo(c.miner, 1000n)]);
    expect(() => c.mine()).toThrow(/witness transactions are not allowed below height 432/);
  });

  test('every account type can pay and be paid, fan-in and fan-out included', () => {
    const c = new ChainBuilder({ seed: 'types' });
    c.mineEmpty(103);
    const types = ['p2pkh', 'p2wpkh', 'p2sh-p2wpkh', 'p2wsh', 'p2tr'] as const;
    const accts = types.map((t) => c.account(`acct-${t}`, t));
    c.wallet.pay(c.miner, accts.map((a) => payTo(a, 2n * 10n ** 8n)), { fee: 5000n });
    c.mine();
    const sink = c.account('sink', 'p2tr');
    const fanIn = c.wallet.pay(accts, [payTo(sink, 9n * 10n ** 8n)]);
    expect(fanIn.ins).toHaveLength(5);
    c.mine();
    expect(c.wallet.balance(sink)).toBe(9n * 10n ** 8n);
    for (const a of accts) expect(c.wallet.balance(a)).toBe(a === accts[0] ? 10n ** 8n - 1000n : 0n);
  });

  test('taproot key-path signatures verify against the BIP86-tweaked output key', () => {
    const c = smallChain();
    const bob = c.account('bob', 'p2tr');
    const coins = c.wallet.coins(bob);
    const tx = c.wallet.spend(coins, [payTo(c.miner, 5000n)]);
    const hash = tx.hashForWitnessV1(0, coins.map((k) => k.script), coins.map((k) => k.value), Transaction.SIGHASH_DEFAULT);
    expect(ecc.verifySchnorr(hash, bob.script.subarray(2), tx.ins[0]!.witness[0]!)).toBe(true);
  });

  test('dummy signing keeps the transaction shapes without computing signatures', () => {
    const c = new ChainBuilder({ seed: 'dummy', sign: 'dummy' });
    c.mineEmpty(101);
    const bob = c.account('bob', 'p2tr');
    c.wallet.pay(c.miner, [payTo(bob, 10n ** 8n)]);
    c.mine();
    c.mineEmpty(1);
    const tx = c.wallet.pay(bob, [payTo(c.miner, 1000n)]);
    expect(tx.ins[0]!.witness).toHaveLength(1);
    expect(tx.ins[0]!.witness[0]).toHaveLength(64);
    expect(Block.fromBuffer(c.mine().raw).checkTxRoots()).toBe(true);
  });
});

describe('forks', () => {
  test('a fork starts from the coins of its fork point and its blocks go stale when the main chain is longer', () => {
    const c = smallChain();
    const bob = c.account('bob', 'p2tr');
    const atFork = c.wallet.balance(bob);
    c.wallet.pay(bob, [payTo(c.miner, 5000n)]);
    c.mine();
    const side = c.fork(c.height - 1);
    expect(side.wallet.balance(bob)).toBe(atFork);
    const s1 = side.mine([]);
    c.mineEmpty(1);
    expect(c.staleBlocks().map((b) => b.hash)).toEqual([s1.hash]);
    expect(c.blocks().map((b) => b.hash)).toContain(s1.hash);
    expect(c.bestChain().at(-1)!.hash).toBe(c.tip.hash);
  });

  test('on equal work the tip mined first stays best, and more work wins over it', () => {
    const c = smallChain();
    const side = c.fork(c.height - 1);
    const rival = side.mine([]);
    expect(c.bestChain().at(-1)!.hash).toBe(c.tip.hash);
    const longer = side.mine([]);
    expect(c.bestChain().at(-1)!.hash).toBe(longer.hash);
    expect(c.bestChain().at(-2)!.hash).toBe(rival.hash);
  });

  test('corrupted blocks fail their checks and, with their descendants, stay off the best chain', () => {
    const c = smallChain();
    const good = c.tip;
    const side = c.fork(c.height);
    const badPow = side.mine([], { corrupt: 'pow' });
    side.mineEmpty(3);
    expect(Block.fromBuffer(badPow.raw).checkProofOfWork()).toBe(false);
    const other = c.fork(c.height).mine([], { corrupt: 'merkle' });
    expect(Block.fromBuffer(other.raw).checkTxRoots()).toBe(false);
    expect(c.bestChain().at(-1)!.hash).toBe(good.hash);
  });

  test('the same transaction can be mined on both branches', () => {
    const c = smallChain();
    const side = c.fork(c.height);
    const bob = c.account('bob', 'p2tr');
    const tx: Transaction = side.wallet.pay(bob, [payTo(c.miner, 5000n)]);
    side.mine();
    c.wallet.addPending(tx);
    const mainBlock = c.mine();
    expect(mainBlock.txids).toContain(tx.getId());
    expect(side.tip.txids).toContain(tx.getId());
  });
});

describe('the blocks-dir writer', () => {
  const c = smallChain('writer');
  c.mineEmpty(20);
  const blocks = storageOrder(c);

  test('records round-trip through obfuscation, shuffling, several files and zero tails', () => {
    const files = layoutBlkFiles(blocks, {
      magic: regtest.magic, xorKey: KEY, shuffle: { seed: 's' }, maxFileSize: 3000, zeroTail: 300, zeroTailOn: 'all',
    });
    expect(files.length).toBeGreaterThan(2);
    const back = readBlk(files.map((f) => f.bytes), KEY);
    expect(sortedHex(back)).toEqual(sortedHex(blocks));
    expect(back.map(hex)).not.toEqual(blocks.map(hex));
    expect(hex(back[0]!)).toBe(hex(c.genesis.raw));
    for (const f of files) {
      expect(f.bytes.length - 300).toBeLessThanOrEqual(3000);
      expect(f.bytes.subarray(-300).every((x) => x === 0)).toBe(true);
    }
  });

  test('obfuscation XORs byte p with key[p mod 8] and leaves the zero tail raw', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-blk-'));
    try {
      writeBlocksDir(dir, blocks, { magic: regtest.magic, xorKey: KEY, zeroTail: 64 });
      expect(readdirSync(dir).sort()).toEqual(['blk00000.dat', 'xor.dat']);
      expect(hex(readFileSync(join(dir, 'xor.dat')))).toBe(hex(KEY));
      const file = readFileSync(join(dir, 'blk00000.dat'));
      expect(hex(file.subarray(0, 4))).toBe(hex(MAGIC.map((m, i) => m ^ KEY[i]!)));
      expect(file.readUInt32LE(4) ^ KEY.readUInt32LE(4)).toBe(c.genesis.raw.length);
      expect(file.subarray(-64).every((x) => x === 0)).toBe(true);
      expect(file.subarray(-65, -64).every((x) => x === 0)).toBe(false);
      expect(sortedHex(readBlk([file], KEY))).toEqual(sortedHex(blocks));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('without a key no xor.dat is written and records start with the plain magic', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-blk-'));
    try {
      writeBlocksDir(dir, blocks, { magic: regtest.magic });
      expect(readdirSync(dir)).toEqual(['blk00000.dat']);
      const file = readFileSync(join(dir, 'blk00000.dat'));
      expect(hex(file.subarray(0, 4))).toBe(regtest.magic);
      expect(readBlk([file]).map(hex)).toEqual(blocks.map(hex));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('shuffling is the same for the same seed, and can move genesis when asked', () => {
    const a = layoutBlkFiles(blocks, { magic: regtest.magic, shuffle: { seed: 'x' } });
    const b = layoutBlkFiles(blocks, { magic: regtest.magic, shuffle: { seed: 'x' } });
    const other = layoutBlkFiles(blocks, { magic: regtest.magic, shuffle: { seed: 'y' } });
    expect(hex(a[0]!.bytes)).toBe(hex(b[0]!.bytes));
    expect(hex(a[0]!.bytes)).not.toBe(hex(other[0]!.bytes));
    const loose = layoutBlkFiles(blocks, { magic: regtest.magic, shuffle: { seed: 'x', keepFirst: false } });
    expect(loose[0]!.records[0]!.index).not.toBe(0);
  });

  test('a record is never split, even when it alone exceeds the file size limit', () => {
    const files = layoutBlkFiles(blocks, { magic: regtest.magic, maxFileSize: 10 });
    expect(files).toHaveLength(blocks.length);
    files.forEach((f, i) => expect(f.bytes.length).toBe(8 + blocks[i]!.length));
  });
});

describe('the demo scenario', () => {
  test('stays small: its blocks dir is well under 1 MiB', () => {
    const bytes = layoutBlkFiles(storageOrder(demoChain), DEMO_LAYOUT).reduce((n, f) => n + f.bytes.length, 0);
    expect(bytes).toBeLessThan(256 * 1024);
  });

  test('the committed fixtures/chains/demo is exactly what the generator writes today', () => {
    const dir = join(process.cwd(), 'fixtures', 'chains', 'demo');
    const fresh = layoutBlkFiles(storageOrder(demoChain), fixtureLayout(demoChain));
    for (const f of fresh) expect(hex(readFileSync(join(dir, 'blocks', f.name)))).toBe(hex(f.bytes));
    expect(hex(readFileSync(join(dir, 'blocks', 'xor.dat')))).toBe(hex(fixtureLayout(demoChain).xorKey!));
    const committed = JSON.parse(readFileSync(join(dir, 'chain.json'), 'utf8')) as ChainManifest;
    const now = chainManifest(demoChain, 'demo');
    expect(committed.tip).toBe(now.tip);
    expect(committed.mainChain).toEqual(now.mainChain);
    expect(committed.announcements).toEqual(now.announcements);
  });

  test('exercises every reason code, an acceptance of each stake type and a stale fork with announcements', () => {
    const outcomes = new Set(demoChain.expectations().map((e) => e.outcome));
    for (const code of REASON_CODES) expect(outcomes).toContain(code);
    expect(demoChain.staleBlocks().length).toBeGreaterThan(0);
  });

  test('its recorded outcomes are what the protocol rules give when the best chain is replayed', () => {
    const replay = replayRegistry(demoChain.bestChain());
    const expected = new Map<string, string>();
    for (const e of demoChain.expectations()) {
      const onMain = demoChain.bestChain().some((b) => b.txids.includes(e.txid));
      if (onMain) expected.set(`${e.txid}:${e.vout}`, e.outcome);
    }
    expect(Object.fromEntries(replay.outcomes)).toEqual(Object.fromEntries(expected));
    expect(replay.ended).toEqual({
      [hex(demoChain.account('carol', 'p2pkh').script)]: 'expired@246',
      [hex(demoChain.account('dave', 'p2sh-p2wpkh').script)]: 'lapsed@442',
    });
    const live = [demoChain.account('alice', 'p2wpkh'), demoChain.account('bob', 'p2tr'), demoChain.account('erin', 'p2wsh')];
    expect(replay.live.sort()).toEqual(live.map((a) => hex(a.script)).sort());
  });
});

const toRpc = (h: Uint8Array): string => Buffer.from(h).reverse().toString('hex');
