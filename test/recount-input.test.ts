/**
 * Bad raw chain data (docs/spec.md §2.8, "Raw chain data") and bad arguments:
 * the recount never crashes with a stack trace and never quietly counts
 * something wrong. Unreadable data stops it with the file and offset;
 * invalid or unconnected blocks are dropped with a warning.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Block } from 'bitcoinjs-lib';
import type { SpawnSyncReturns } from 'node:child_process';
import type { ExportJson } from '../indexer/read/queries.js';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { layoutBlkFiles, storageOrder, writeBlocksDir, type BlkLayoutOptions } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder, type MinedBlock } from '../fixtures/generator/chain.js';
import { payTo, type Coin } from '../fixtures/generator/wallet.js';
import { nodereg, noderegIn, type CliRun } from './helpers/cli.js';

const COIN = 100_000_000n;

let tmp: string;
let dirs = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-input-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const freshDir = (name: string): string => {
  const d = join(tmp, `${dirs++}-${name}`);
  mkdirSync(d);
  return d;
};

/** A short dummy-signed chain: mature coins, amy funded and registered, a little traffic. */
function baseChain(seed: string): ChainBuilder {
  const c = new ChainBuilder({ seed, sign: 'dummy' });
  c.mineEmpty(101);
  const amy = c.account('amy', 'p2wpkh');
  const bob = c.account('bob', 'p2tr');
  c.wallet.pay(c.miner, [payTo(amy, 50n * COIN)]);
  c.mine();
  c.wallet.pay(amy, [carrier(newNode(amy, c.nextTime()))]);
  c.wallet.pay(amy, [payTo(bob, COIN)]);
  c.mine();
  c.wallet.pay(bob, [payTo(amy, COIN / 2n)]);
  c.mine();
  c.mineEmpty(2);
  return c;
}

/** Writes `blocks` as a blocks directory (plain, one file, unless told otherwise). */
function blocksDirOf(name: string, blocks: readonly Uint8Array[], layout: Omit<BlkLayoutOptions, 'magic'> = {}): string {
  const dir = join(freshDir(name), 'blocks');
  writeBlocksDir(dir, blocks, { magic: 'fabfb5da', ...layout });
  return dir;
}

/** In-process (see noderegIn): what recount says about its input is tested, not the process. */
const recountCli = (dir: string, extra: string[] = []): Promise<CliRun> =>
  noderegIn(['recount', '--network', 'regtest', '--blocks-dir', dir, '--json', ...extra]);

/** Exit status 1 or 2 with exactly one line of error on stderr, no stack trace, nothing on stdout. */
function expectCleanFailure(res: CliRun | SpawnSyncReturns<string>, status: number, message: RegExp): void {
  expect({ status: res.status, stdout: res.stdout }).toEqual({ status, stdout: '' });
  const lines = res.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^nodereg: /);
  expect(lines[0]).toMatch(message);
  expect(lines.slice(1).every((l) => l.startsWith('Run with --help'))).toBe(true);
  expect(res.stderr).not.toMatch(/\n\s+at |internal error/);
}

/** A successful recount's JSON and the warnings it printed. */
async function recounted(dir: string, extra: string[] = []): Promise<{ json: ExportJson; warnings: string[] }> {
  const res = await recountCli(dir, extra);
  expect(res.stderr).not.toMatch(/\n\s+at |internal error|nodereg: /);
  expect(res.status).toBe(0);
  const warnings = res.stderr.split('\n').filter((l) => l !== '');
  for (const w of warnings) expect(w).toMatch(/^warning: /);
  return { json: JSON.parse(res.stdout) as ExportJson, warnings };
}

const base = baseChain('recount-input');
const baseBlocks = storageOrder(base);
const busiest = base.chainBlocks().reduce((a, b) => (b.txids.length > a.txids.length ? b : a));
let baseline: ExportJson;

beforeAll(async () => {
  baseline = (await recounted(blocksDirOf('baseline', baseBlocks))).json;
  expect(baseline.height).toBe(base.height);
  expect(baseline.nodes).toHaveLength(1);
});

describe('unreadable records stop the recount with the file and offset', () => {
  /** The busiest block's record, in a single plain file: where its bytes start. */
  function placement(): { bytes: Buffer; start: number; size: number } {
    const [file] = layoutBlkFiles(baseBlocks, { magic: 'fabfb5da' });
    const index = baseBlocks.findIndex((b) => Buffer.from(b).equals(Buffer.from(busiest.raw)));
    const rec = file!.records.find((r) => r.index === index)!;
    expect(index).toBeLessThan(baseBlocks.length - 1);
    return { bytes: Buffer.from(file!.bytes), start: rec.offset + 8, size: busiest.raw.length };
  }

  /** The file with the busiest block's record missing its last `cut` bytes, the next record following at once. */
  function cutShort(name: string, cut: number): { dir: string; start: number; size: number } {
    const { bytes, start, size } = placement();
    const dir = join(freshDir(name), 'blocks');
    mkdirSync(dir);
    writeFileSync(join(dir, 'blk00000.dat'), Buffer.concat([bytes.subarray(0, start + size - cut), bytes.subarray(start + size)]));
    return { dir, start, size };
  }

  it('a record cut short in the middle of a file', async () => {
    const { dir, start } = cutShort('truncated', 100);
    expectCleanFailure(await recountCli(dir), 1, new RegExp(`blk00000\\.dat at offset ${start}: block does not parse: .* of the block$`));
  });

  it('a record cut short by a few bytes, so that it still parses, does not silently swallow the record after it', async () => {
    // The short record borrows the next record's magic, size and first header bytes to make up its
    // declared size; the reader then finds no magic where the next record should start.
    const { dir, start, size } = cutShort('truncated-slightly', 10);
    expectCleanFailure(await recountCli(dir), 1, new RegExp(`blk00000\\.dat at offset (${start}|${start + size})\\b`));
  });

  it('a record whose size runs past the end of a file that is not the last', async () => {
    // In the last file this is a block a live node is still writing (see recount-dirs.test.ts).
    const dir = join(freshDir('cut-off'), 'blocks');
    mkdirSync(dir);
    const half = Math.floor(baseBlocks.length / 2);
    const [file] = layoutBlkFiles(baseBlocks.slice(0, half), { magic: 'fabfb5da' });
    const [second] = layoutBlkFiles(baseBlocks.slice(half), { magic: 'fabfb5da' });
    const last = file!.records[file!.records.length - 1]!;
    writeFileSync(join(dir, 'blk00000.dat'), Buffer.from(file!.bytes).subarray(0, file!.bytes.length - 7));
    writeFileSync(join(dir, 'blk00001.dat'), second!.bytes);
    expectCleanFailure(await recountCli(dir), 1, new RegExp(`blk00000\\.dat at offset ${last.offset + 8}: record of \\d+ bytes runs past the end of the file`));
  });

  it('a block with bytes flipped inside a transaction, in an obfuscated directory', async () => {
    const raw = Buffer.from(busiest.raw);
    const coinbaseSize = Block.fromBuffer(raw).transactions![0]!.byteLength();
    expect(busiest.txids.length).toBeLessThan(0xfd);
    const tx1 = 80 + 1 + coinbaseSize;
    raw[tx1 + 4]! ^= 0xff; // the input count (or segwit marker) of the block's second transaction
    const blocks = baseBlocks.map((b) => (Buffer.from(b).equals(Buffer.from(busiest.raw)) ? raw : b));
    const files = layoutBlkFiles(blocks, { magic: 'fabfb5da', xorKey: Buffer.from('0123456789abcdef', 'hex') });
    const rec = files[0]!.records.find((r) => blocks[r.index] === raw)!;
    const dir = blocksDirOf('flipped', blocks, { xorKey: Buffer.from('0123456789abcdef', 'hex'), zeroTail: 512 });
    expectCleanFailure(await recountCli(dir), 1, new RegExp(`blk00000\\.dat at offset ${rec.offset + 8}: block does not parse: .* of the block$`));
  });
});

describe('invalid and unconnected blocks are dropped with a warning', () => {
  const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

  it('a block failing proof of work is dropped with its descendants, even when its branch has the most work', async () => {
    const c = baseChain('bad-pow');
    const h = c.height;
    const cy = c.account('cy', 'p2wpkh');
    c.wallet.pay(c.miner, [payTo(cy, 50n * COIN)]);
    c.mine();
    c.wallet.pay(cy, [carrier(newNode(cy, c.nextTime()))]);
    const bad = c.mine(undefined, { corrupt: 'pow' });
    c.mineEmpty(2);
    const good = c.fork(h);
    good.mineEmpty(2);
    const { json, warnings } = await recounted(blocksDirOf('bad-pow', storageOrder(c)));
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^warning: block ${bad.hash} in .*blk00000\\.dat at offset \\d+ fails proof of work: dropped with its 2 descendant\\(s\\)$`))]);
    expect(json.height).toBe(h + 2);
    expect(json.tip).toBe(good.tip.hash);
    expect(json.nodes.map((n) => n.stakeScript)).toEqual([hex(c.account('amy', 'p2wpkh').script)]);
  });

  it('a block with a wrong merkle root is dropped with its descendants, and the recount ends at the valid tip', async () => {
    const c = baseChain('bad-merkle');
    const h = c.height;
    const valid = c.tip;
    const bad = c.mine([], { corrupt: 'merkle' });
    c.mineEmpty(1);
    const { json, warnings } = await recounted(blocksDirOf('bad-merkle', storageOrder(c)));
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^warning: block ${bad.hash} .* has a wrong merkle root: dropped with its 1 descendant\\(s\\)$`))]);
    expect([json.height, json.tip]).toEqual([h, valid.hash]);
  });

  it('an orphan block is ignored with a warning', async () => {
    const other = new ChainBuilder({ seed: 'elsewhere', sign: 'dummy' });
    other.mineEmpty(3);
    const orphan: MinedBlock = other.tip;
    const blocks = [...baseBlocks.slice(0, 50), orphan.raw, ...baseBlocks.slice(50)];
    const { json, warnings } = await recounted(blocksDirOf('orphan', blocks));
    expect(warnings).toEqual([expect.stringMatching(new RegExp(`^warning: block ${orphan.hash} .*does not connect to genesis.*ignored$`))]);
    expect(json).toEqual(baseline);
  });

  it('a block stored twice counts once, even when one of the copies is damaged', async () => {
    const damaged = Buffer.from(busiest.raw);
    damaged[damaged.length - 1]! ^= 0x01; // the last transaction's locktime: it parses, but the merkle root no longer matches
    const i = baseBlocks.indexOf(busiest.raw);
    const twice = [...baseBlocks.slice(0, i), damaged, ...baseBlocks.slice(i), busiest.raw, damaged];
    const { json, warnings } = await recounted(blocksDirOf('twice', twice, { maxFileSize: 4096 }));
    expect(warnings).toEqual([]);
    expect(json).toEqual(baseline);
  });
});

describe('incomplete chain data', () => {
  it('an input spending an unknown output stops the recount naming the block and outpoint, and loses nothing', async () => {
    const c = baseChain('missing-input');
    const amy = c.account('amy', 'p2wpkh');
    const ghost = createHash('sha256').update('no such transaction').digest('hex');
    const coin: Coin = { txid: ghost, vout: 7, value: 10n * COIN, script: amy.script, height: c.height, coinbase: false, pending: false };
    const spend = c.wallet.spend([coin], [payTo(c.account('bob', 'p2tr'), 5n * COIN)]);
    const h = c.height;
    const bad = c.mine([spend], { allowMissingInputs: true });
    c.mineEmpty(1);
    const dir = blocksDirOf('missing-input', storageOrder(c));
    const db = join(freshDir('missing-input-db'), 'db');

    const res = await recountCli(dir, ['--db', db]);
    expectCleanFailure(res, 1, new RegExp(`block ${bad.height} \\(${bad.hash}\\) spends ${ghost}:7, an output the index does not have`));

    // The index is left as of its last flush: usable, and it completes up to the block before.
    const partial = (await recounted(dir, ['--db', db, '--height', String(h)])).json;
    expect(partial).toEqual((await recounted(dir, ['--height', String(h)])).json);
    expect(partial.height).toBe(h);
  });
});

describe('bad arguments', () => {
  const dir = (): string => blocksDirOf('args', baseBlocks);

  it('--height above the tip, negative or not a number is a clear error', async () => {
    const d = dir();
    expectCleanFailure(await recountCli(d, ['--height', String(base.height + 1)]), 1, new RegExp(`--height ${base.height + 1} is above the best chain's tip at ${base.height}`));
    expectCleanFailure(await recountCli(d, ['--height=-1']), 2, /--height must be a whole number/);
    expectCleanFailure(await recountCli(d, ['--height', 'tip']), 2, /--height must be a whole number/);
    expectCleanFailure(await recountCli(d, ['--height', '2.5']), 2, /--height must be a whole number/);
    expect((await recounted(d, ['--height', String(base.height)])).json).toEqual(baseline);
  });

  it('a --blocks-dir that does not exist, or is a file, is a clear error', async () => {
    const missing = join(tmp, 'no-such-dir');
    expectCleanFailure(await recountCli(missing), 1, new RegExp(`${missing}.*cannot list the blocks directory \\(ENOENT\\)`));
    const file = join(freshDir('file'), 'blk00000.dat');
    writeFileSync(file, '');
    expectCleanFailure(await recountCli(file), 1, /cannot list the blocks directory \(ENOTDIR\)/);
  });

  it('a directory without blk files is a clear error', async () => {
    const empty = freshDir('empty');
    writeFileSync(join(empty, 'xor.dat'), Buffer.alloc(8));
    expectCleanFailure(await recountCli(empty), 1, new RegExp(`no blk\\*\\.dat files in ${empty}: pass bitcoind's blocks/ directory`));
  });
});
