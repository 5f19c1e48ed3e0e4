import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { BlkFileError, BlockReader, deobfuscate, listBlkFiles, readBlockRecords, readXorKey, type BlkRecord } from '../indexer/chain/blkfiles.js';
import { scanBlock } from '../indexer/chain/scanner.js';
import { coreRegtest, writeBlkDir, type BlkDirOptions } from './helpers/blocksdir.js';

const { blocksDir: FIXTURE, node } = coreRegtest();
const MAGIC = Buffer.from('fabfb5da', 'hex');
const KEY = Buffer.from('0123456789abcdef', 'hex');
const rpc = (internal: Uint8Array): string => Buffer.from(internal).reverse().toString('hex');

const scratchDirs: string[] = [];
afterAll(() => scratchDirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** Writes blocks as a bitcoind blocks directory (with MAGIC), removed after the tests: one inner array per blk file. */
function writeBlocksDir(files: Buffer[][], opts: Omit<BlkDirOptions, 'magic'> = {}): string {
  const dir = writeBlkDir(files, { magic: MAGIC, ...opts });
  scratchDirs.push(dir);
  return dir;
}

async function collect(dir: string): Promise<BlkRecord[]> {
  const out: BlkRecord[] = [];
  for await (const rec of readBlockRecords(dir, MAGIC)) out.push(rec);
  return out;
}

async function rejection(dir: string): Promise<unknown> {
  try {
    await collect(dir);
  } catch (err) {
    return err;
  }
  throw new Error('expected the blocks directory to be rejected');
}

let fixture: BlkRecord[];
let fixtureBlocks: Buffer[];
beforeAll(async () => {
  fixture = await collect(FIXTURE);
  fixtureBlocks = fixture.map((r) => Buffer.from(r.bytes));
});

describe('reading the Core regtest blocks directory', () => {
  test('it finds all 118 records despite the obfuscation and the zero tail', () => {
    expect(fixture).toHaveLength(118);
  });

  test('the directory is obfuscated with a non-zero key', async () => {
    expect(await readXorKey(FIXTURE)).toEqual(Buffer.from('47fafc45165137ba', 'hex'));
  });

  test('every record but the stale one is a block at a height node.json knows', () => {
    const known = new Set(Object.values(node.heights).map((h) => h.hash));
    const unknown = fixture.filter((r) => !known.has(rpc(r.header.hash)));
    expect(unknown).toHaveLength(1);
    expect(fixture.filter((r) => known.has(rpc(r.header.hash)))).toHaveLength(node.height + 1);
  });

  test('records point at the block data right after magic and size', () => {
    expect(fixture[0].offset).toBe(8);
    expect(fixture[1].offset).toBe(8 + fixture[0].bytes.length + 8);
    expect(fixture.every((r) => basename(r.file) === 'blk00000.dat')).toBe(true);
  });

  test('each record carries the txids of its block', () => {
    for (const r of fixture) expect(r.txids).toEqual(scanBlock(r.bytes).txs.map((t) => t.txid));
  });

  test('a block reader re-reads every record byte for byte', async () => {
    const reader = await BlockReader.open(FIXTURE);
    try {
      for (const r of fixture) expect(reader.read({ file: r.file, offset: r.offset, size: r.bytes.length }).equals(r.bytes)).toBe(true);
    } finally {
      reader.close();
    }
  });

  test('progress reaches the total size of the blk files', async () => {
    const calls: Array<[number, number]> = [];
    for await (const rec of readBlockRecords(FIXTURE, 'fabfb5da', { onProgress: (d, t) => calls.push([d, t]) })) void rec;
    const size = readFileSync(join(FIXTURE, 'blk00000.dat')).length;
    expect(calls.at(-1)).toEqual([size, size]);
    expect(calls.every(([d], i) => i === 0 || d >= calls[i - 1][0])).toBe(true);
  });
});

describe('rewritten blocks directories', () => {
  const hashes = (recs: BlkRecord[]): string[] => recs.map((r) => rpc(r.header.hash));

  test('without xor.dat the files are read in the clear', async () => {
    const dir = writeBlocksDir([fixtureBlocks]);
    expect(await readXorKey(dir)).toBeNull();
    expect(hashes(await collect(dir))).toEqual(hashes(fixture));
  });

  test('an all-zero xor.dat means not obfuscated', async () => {
    const dir = writeBlocksDir([fixtureBlocks], { keyFile: true });
    expect(await readXorKey(dir)).toBeNull();
    expect(hashes(await collect(dir))).toEqual(hashes(fixture));
  });

  test('another key with raw zero tails reads the same records', async () => {
    const dir = writeBlocksDir([fixtureBlocks], { key: KEY, zeroTail: 9999 });
    expect(hashes(await collect(dir))).toEqual(hashes(fixture));
  });

  test('two files are read in numeric order, each record naming its file', async () => {
    const dir = writeBlocksDir([fixtureBlocks.slice(0, 50), fixtureBlocks.slice(50)], { key: KEY });
    const recs = await collect(dir);
    expect(hashes(recs)).toEqual(hashes(fixture));
    expect(recs.map((r) => basename(r.file))).toEqual(fixture.map((_, i) => (i < 50 ? 'blk00000.dat' : 'blk00001.dat')));
    expect(recs[50].offset).toBe(8);
  });

  test('blk files sort by number, not by name', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-blk-'));
    scratchDirs.push(dir);
    for (const name of ['blk100000.dat', 'blk99999.dat', 'blk00002.dat', 'rev00000.dat']) writeFileSync(join(dir, name), '');
    expect((await listBlkFiles(dir)).map((f) => basename(f))).toEqual(['blk00002.dat', 'blk99999.dat', 'blk100000.dat']);
  });

  test('a record whose size runs past the end of the file is an error naming the file and offset', async () => {
    const dir = writeBlocksDir([fixtureBlocks], { key: KEY, zeroTail: 0 });
    const file = join(dir, 'blk00000.dat');
    const whole = readFileSync(file);
    writeFileSync(file, whole.subarray(0, whole.length - 10));
    const err = await rejection(dir);
    expect(err).toBeInstanceOf(BlkFileError);
    expect(err).toMatchObject({ file, offset: fixture[117].offset });
    expect((err as Error).message).toMatch(new RegExp(`^${file} at offset ${fixture[117].offset}: record of \\d+ bytes runs past the end of the file`));
  });

  test('a record whose block does not parse is an error naming the file and offset', async () => {
    const blocks = fixtureBlocks.slice(0, 3);
    blocks[1] = Buffer.concat([blocks[1], Buffer.from([0])]);
    const dir = writeBlocksDir([blocks], { key: KEY });
    const err = await rejection(dir);
    expect(err).toBeInstanceOf(BlkFileError);
    const offset = 8 + fixtureBlocks[0].length + 8;
    expect((err as Error).message).toBe(`${join(dir, 'blk00000.dat')} at offset ${offset}: block does not parse: 1 trailing bytes after the last transaction at byte offset ${blocks[1].length - 1} of the block`);
  });

  test('a missing directory is an error that says what to pass', async () => {
    await expect(collect(join(tmpdir(), 'nodereg-no-such-dir'))).rejects.toThrow(/cannot list the blocks directory \(ENOENT\); pass bitcoind's blocks\/ directory/);
  });

  test('an xor.dat of the wrong size is an error', async () => {
    const dir = writeBlocksDir([fixtureBlocks.slice(0, 1)]);
    writeFileSync(join(dir, 'xor.dat'), Buffer.alloc(4, 1));
    await expect(collect(dir)).rejects.toThrow(/obfuscation key must be 8 bytes, got 4/);
  });
});

describe('de-obfuscation', () => {
  test('it XORs the byte at file offset p with key[p % 8], whatever the buffer alignment and start offset', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 100 }), fc.nat(1000), fc.nat(7),
      (keyBytes, data, fileOffset, shift) => {
        const key = Buffer.from(keyBytes);
        const backing = Buffer.alloc(data.length + 8);
        const buf = backing.subarray(shift, shift + data.length);
        buf.set(data);
        deobfuscate(buf, fileOffset, key);
        expect([...buf]).toEqual([...data].map((b, i) => b ^ key[(fileOffset + i) % 8]));
      }), { numRuns: 500 });
  });
});
