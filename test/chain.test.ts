import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import BN from 'bn.js';
import fc from 'fast-check';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { BlkFileError, readBlockRecords } from '../indexer/chain/blkfiles.js';
import { ChainError, loadBestChain, openChainReader, readChainBlock, type BestChain } from '../indexer/chain/chain.js';
import { blockHash, blockWork, checkProofOfWork, merkleRoot, merkleTreeOf, targetFromBits } from '../indexer/chain/pow.js';
import { scanBlock } from '../indexer/chain/scanner.js';
import { coreRegtest, writeBlkDir } from './helpers/blocksdir.js';

const { blocksDir: FIXTURE, node } = coreRegtest();
const regtest = BUILTIN_NETWORKS.regtest;
const MAGIC = Buffer.from(regtest.magic, 'hex');
const KEY = Buffer.from('47fafc45165137ba', 'hex');
const rpc = (internal: Uint8Array): string => Buffer.from(internal).reverse().toString('hex');
const hashAt = (height: number): string => node.heights[String(height)].hash;

const scratchDirs: string[] = [];
afterAll(() => scratchDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Writes blocks as an obfuscated bitcoind blocks directory with zero tails, removed after the tests: one inner array per blk file. */
function writeBlocksDir(files: Buffer[][]): string {
  const dir = writeBlkDir(files, { magic: MAGIC, key: KEY });
  scratchDirs.push(dir);
  return dir;
}

/** The fixture's blocks in file order, as plain copies. */
let blocks: Buffer[];
let staleHash: string;
beforeAll(async () => {
  blocks = [];
  for await (const rec of readBlockRecords(FIXTURE, MAGIC)) blocks.push(Buffer.from(rec.bytes));
  const main = new Set(Object.values(node.heights).map((h) => h.hash));
  staleHash = blocks.map((b) => rpc(blockHash(b.subarray(0, 80)))).find((h) => !main.has(h)) ?? '';
});

const hashOf = (b: Buffer): string => rpc(blockHash(b.subarray(0, 80)));
const indexOf = (hash: string): number => blocks.findIndex((b) => hashOf(b) === hash);
/** Where block i's data starts in a file written by writeBlocksDir. */
const dataOffset = (file: Buffer[], i: number): number => file.slice(0, i).reduce((at, b) => at + 8 + b.length, 0) + 8;
const tipOf = (chain: BestChain): string => rpc(chain.blocks[chain.blocks.length - 1].hash);

/** Tries nonces until `want(hash)` holds; regtest's target passes about half of all hashes. */
function grind(block: Buffer, want: (pow: boolean) => boolean): void {
  for (let nonce = 0; ; nonce++) {
    block.writeUInt32LE(nonce, 76);
    if (want(checkProofOfWork(blockHash(block.subarray(0, 80)), block.readUInt32LE(72)))) return;
  }
}

/**
 * Changes one block with `mutate`, then re-links and re-mines every
 * descendant so they still build on it. Returns the rewritten blocks.
 */
function rewrite(height: number, mutate: (block: Buffer) => void): Buffer[] {
  const out = blocks.map((b) => Buffer.from(b));
  const target = indexOf(hashAt(height));
  const renamed = new Map<string, Buffer>();
  const before = hashOf(out[target]);
  mutate(out[target]);
  renamed.set(before, blockHash(out[target].subarray(0, 80)));
  for (let changed = true; changed;) {
    changed = false;
    for (const b of out) {
      const parent = renamed.get(rpc(b.subarray(4, 36)));
      if (parent === undefined || parent.equals(b.subarray(4, 36))) continue;
      const old = hashOf(b);
      parent.copy(b, 4);
      grind(b, (pow) => pow);
      renamed.set(old, blockHash(b.subarray(0, 80)));
      changed = true;
    }
  }
  return out;
}

describe('choosing the chain of the Core regtest blocks directory', () => {
  let chain: BestChain;
  beforeAll(async () => {
    chain = await loadBestChain(FIXTURE, regtest);
  });

  test('the tip is the node\'s bestblockhash at height 116', () => {
    expect(tipOf(chain)).toBe(node.bestblockhash);
    expect(chain.blocks).toHaveLength(node.height + 1);
  });

  test('every height holds the hash the node reports', () => {
    for (const entry of chain.blocks) expect(rpc(entry.hash)).toBe(hashAt(entry.height));
  });

  test('the stale block at height 115 is not in the chain, and nothing is warned about', () => {
    expect(staleHash).toMatch(/^[0-9a-f]{64}$/);
    expect(chain.blocks.map((e) => rpc(e.hash))).not.toContain(staleHash);
    expect(chain.stats).toMatchObject({ records: 118, duplicates: 0, invalid: 0, orphans: 0, stale: 1 });
    expect(chain.warnings).toEqual([]);
  });

  test('chainwork is two per regtest block', () => {
    expect(chain.stats.chainWork).toBe((2 * 117).toString(16));
  });

  test('each entry re-reads to a block with its hash and transaction count', async () => {
    const reader = await openChainReader(FIXTURE);
    try {
      for (const entry of chain.blocks) {
        const scanned = scanBlock(reader.read(entry));
        expect(scanned.hash.equals(entry.hash)).toBe(true);
        expect(scanned.txs).toHaveLength(entry.txCount);
      }
    } finally {
      reader.close();
    }
    expect(scanBlock(readChainBlock(chain.blocks[116], chain.xorKey)).hash.equals(chain.blocks[116].hash)).toBe(true);
  });

  test('progress is reported up to the total size of the files', async () => {
    let last: [number, number] = [0, 0];
    await loadBestChain(FIXTURE, regtest, { onProgress: (done, total) => (last = [done, total]) });
    expect(last[0]).toBe(last[1]);
    expect(last[1]).toBe(readFileSync(join(FIXTURE, 'blk00000.dat')).length);
  });
});

describe('choosing the chain from rewritten directories', () => {
  test('records in any order and split over two files give the same chain', async () => {
    await fc.assert(fc.asyncProperty(
      fc.shuffledSubarray([...Array(118).keys()], { minLength: 118, maxLength: 118 }), fc.nat(118),
      async (order, split) => {
        const shuffled = order.map((i) => blocks[i]);
        const chain = await loadBestChain(writeBlocksDir([shuffled.slice(0, split), shuffled.slice(split)]), regtest);
        expect(chain.blocks.map((e) => rpc(e.hash))).toEqual(chain.blocks.map((e) => hashAt(e.height)));
        expect(tipOf(chain)).toBe(node.bestblockhash);
        expect(chain.warnings).toEqual([]);
      }), { numRuns: 15 });
  });

  test('a block stored twice counts once', async () => {
    const again = indexOf(hashAt(60));
    const chain = await loadBestChain(writeBlocksDir([blocks, [blocks[again]]]), regtest);
    expect(chain.stats.duplicates).toBe(1);
    expect(chain.blocks).toHaveLength(117);
    expect(tipOf(chain)).toBe(node.bestblockhash);
    expect(chain.blocks[60].file).toMatch(/blk00000\.dat$/);
  });

  test('a block failing proof of work is dropped with its descendants, with a warning', async () => {
    const rewritten = rewrite(100, (b) => grind(b, (pow) => !pow));
    const bad = hashOf(rewritten[indexOf(hashAt(100))]);
    const chain = await loadBestChain(writeBlocksDir([rewritten]), regtest);
    expect(tipOf(chain)).toBe(hashAt(99));
    // 101..116 on the main branch plus the stale 115
    expect(chain.warnings).toEqual([expect.stringMatching(new RegExp(`^block ${bad} in .*blk00000\\.dat at offset \\d+ fails proof of work: dropped with its 17 descendant\\(s\\)$`))]);
    expect(chain.stats).toMatchObject({ invalid: 1, invalidDescendants: 17, orphans: 0 });
  });

  test('a block whose transactions do not match its merkle root is dropped with its descendants', async () => {
    const at = indexOf(hashAt(110));
    const corrupt = blocks.map((b, i) => (i === at ? Buffer.concat([b.subarray(0, b.length - 1), Buffer.from([b[b.length - 1] ^ 1])]) : b));
    const chain = await loadBestChain(writeBlocksDir([corrupt]), regtest);
    expect(tipOf(chain)).toBe(hashAt(109));
    expect(chain.warnings).toEqual([expect.stringContaining(`block ${hashAt(110)} in `)]);
    expect(chain.warnings[0]).toMatch(/has a wrong merkle root: dropped with its 7 descendant\(s\)$/);
  });

  test('an intact second copy of a block stands in for a corrupt first copy', async () => {
    const at = indexOf(hashAt(110));
    const bad = Buffer.from(blocks[at]);
    bad[bad.length - 1] ^= 1;
    const chain = await loadBestChain(writeBlocksDir([blocks.map((b, i) => (i === at ? bad : b)), [blocks[at]]]), regtest);
    expect(tipOf(chain)).toBe(node.bestblockhash);
    expect(chain.blocks[110].file).toMatch(/blk00001\.dat$/);
    expect(chain.warnings).toEqual([]);
  });

  test('blocks that do not connect to genesis are ignored with a warning each', async () => {
    const missing = indexOf(hashAt(50));
    const kept = blocks.filter((_, i) => i !== missing);
    const dir = writeBlocksDir([kept]);
    const chain = await loadBestChain(dir, regtest);
    expect(tipOf(chain)).toBe(hashAt(49));
    expect(chain.stats.orphans).toBe(116 - 50 + 1);
    expect(chain.warnings).toHaveLength(67);
    const at51 = kept.findIndex((b) => hashOf(b) === hashAt(51));
    expect(chain.warnings).toContain(
      `block ${hashAt(51)} in ${join(dir, 'blk00000.dat')} at offset ${dataOffset(kept, at51)} does not connect to genesis (parent ${hashAt(50)} unknown): ignored`);
  });

  test('on equal work the tip seen first in file order wins', async () => {
    const without116 = blocks.filter((b) => hashOf(b) !== hashAt(116));
    const main115 = without116.findIndex((b) => hashOf(b) === hashAt(115));
    const stale = without116.findIndex((b) => hashOf(b) === staleHash);
    expect(stale).toBeLessThan(main115); // as the node wrote them
    const staleFirst = await loadBestChain(writeBlocksDir([without116]), regtest);
    expect(tipOf(staleFirst)).toBe(staleHash);
    const swapped = [...without116];
    [swapped[stale], swapped[main115]] = [swapped[main115], swapped[stale]];
    const mainFirst = await loadBestChain(writeBlocksDir([swapped]), regtest);
    expect(tipOf(mainFirst)).toBe(hashAt(115));
  });

  test('more work wins over more height', async () => {
    // A sibling of 115 with a harder target outweighs 115 and 116 at regtest difficulty.
    const heavy = Buffer.from(blocks[indexOf(hashAt(115))]);
    heavy.writeUInt32LE(0x2000ffff, 72);
    grind(heavy, (pow) => pow);
    const chain = await loadBestChain(writeBlocksDir([[...blocks, heavy]]), regtest);
    expect(tipOf(chain)).toBe(hashOf(heavy));
    expect(chain.blocks).toHaveLength(116);
    expect(chain.stats.chainWork).toBe(new BN(2 * 115).add(blockWork(0x2000ffff)).toString(16));
  });

  test('a truncated record stops the load with an error naming the file and offset, unless it ends the last file', async () => {
    const dir = writeBlocksDir([blocks, blocks.slice(0, 1)]);
    const file = join(dir, 'blk00000.dat');
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 4096 - 100));
    const lastOffset = dataOffset(blocks, blocks.length - 1);
    const err = await loadBestChain(dir, regtest).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BlkFileError);
    expect((err as Error).message).toContain(`${file} at offset ${lastOffset}: record of ${blocks[117].length} bytes runs past the end of the file`);

    // In the last file it is the block a live node is writing: left out with a warning.
    rmSync(join(dir, 'blk00001.dat'));
    const chain = await loadBestChain(dir, regtest);
    expect(chain.warnings).toEqual([expect.stringContaining(`${file} ends in an incomplete block record at offset ${lastOffset - 8}`)]);
    expect(chain.stats.records).toBe(blocks.length - 1);
  });

  test('a directory without the network\'s genesis block is refused with a hint', async () => {
    await expect(loadBestChain(FIXTURE, BUILTIN_NETWORKS.testnet)).rejects.toThrow(ChainError);
    await expect(loadBestChain(writeBlocksDir([blocks.slice(1)]), regtest)).rejects.toThrow(/genesis block 0f9188f1.* of network regtest is not in .*; is this the right network's blocks directory\?/);
  });
});

describe('proof of work', () => {
  test('the easiest mainnet target gives Core\'s genesis chainwork', () => {
    expect(blockWork(0x1d00ffff).toString(16)).toBe('100010001');
  });

  test('a regtest block is worth two hashes', () => {
    expect(blockWork(0x207fffff).toNumber()).toBe(2);
  });

  test('compact targets decode as in Core', () => {
    expect(targetFromBits(0x1d00ffff).toString(16)).toBe('ffff' + '0'.repeat(52));
    expect(targetFromBits(0x01123456).toNumber()).toBe(0x12);
    expect(targetFromBits(0x04123456).toNumber()).toBe(0x12345600);
  });

  test('negative, overflowing and zero compact targets are refused', () => {
    expect(() => targetFromBits(0x04923456)).toThrow(/is negative/);
    expect(() => targetFromBits(0xff123456)).toThrow(/overflows 256 bits/);
    expect(() => targetFromBits(0x00123456)).toThrow(/is zero/);
    expect(checkProofOfWork(Buffer.alloc(32), 0x04923456)).toBe(false);
    expect(checkProofOfWork(Buffer.alloc(32), 0xff123456)).toBe(false);
  });

  test('a hash passes exactly when, read little-endian, it is at most the target', () => {
    const target = Buffer.from(targetFromBits(0x1d00ffff).toArray('le', 32));
    expect(checkProofOfWork(target, 0x1d00ffff)).toBe(true);
    const above = Buffer.from(target);
    above[0] = 1;
    expect(checkProofOfWork(above, 0x1d00ffff)).toBe(false);
  });

  test('an odd merkle level repeats its last hash', () => {
    const [a, b, c] = [1, 2, 3].map((n) => Buffer.alloc(32, n));
    expect(merkleRoot([a, b, c]).equals(merkleRoot([a, b, c, c]))).toBe(true);
    expect(merkleRoot([a]).equals(a)).toBe(true);
    expect(() => merkleRoot([])).toThrow(RangeError);
  });

  test('a tree with two equal paired hashes at any level is mutated, as Core reports it, with the same root', () => {
    const [a, b, c, d, e] = [1, 2, 3, 4, 5].map((n) => Buffer.alloc(32, n));
    const tree = (hashes: Buffer[]): { root: string; mutated: boolean } => {
      const t = merkleTreeOf(Buffer.concat(hashes), hashes.length);
      return { root: t.root.toString('hex'), mutated: t.mutated };
    };
    const root = (hashes: Buffer[]): string => merkleRoot(hashes).toString('hex');
    expect(tree([a])).toEqual({ root: root([a]), mutated: false });
    expect(tree([a, b, c])).toEqual({ root: root([a, b, c]), mutated: false });
    expect(tree([a, b, c, c])).toEqual({ root: root([a, b, c]), mutated: true });
    expect(tree([a, a])).toEqual({ root: root([a, a]), mutated: true });
    // b == c are not paired with each other, so nothing is repeated at the leaves.
    expect(tree([a, b, b, c]).mutated).toBe(false);
    // Five leaves: the last pair of the second level is (e, e) only by the odd-level copy, which does not count.
    expect(tree([a, b, c, d, e])).toEqual({ root: root([a, b, c, d, e]), mutated: false });
    // Repeating the last two of six leaves keeps the root and repeats a pair one level up.
    const six = [a, b, c, d, e, a];
    expect(tree([...six, e, a])).toEqual({ root: root(six), mutated: true });
  });
});
