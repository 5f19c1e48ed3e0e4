import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import fc from 'fast-check';
import { BlkFileError, BlockReader, deobfuscate, listBlkFiles, readBlockRecords, readXorKey, splitRecords, type BlkRecord } from '../indexer/chain/blkfiles.js';
import { openRegularFileSync, readRegularFile, regularFileSize } from '../indexer/chain/blkread.js';
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

describe('reading only regular files, with a size bound', () => {
  const scratch = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'nodereg-regular-'));
    scratchDirs.push(d);
    return d;
  };

  test('a device, a named pipe and a directory are refused by their kind, without being opened for a blocking read', async () => {
    const d = scratch();
    symlinkSync('/dev/zero', join(d, 'zero'));
    execFileSync('mkfifo', [join(d, 'pipe')]);
    mkdirSync(join(d, 'dir'));
    for (const [name, kind] of [['zero', 'a character device'], ['pipe', 'a named pipe'], ['dir', 'a directory']] as const) {
      const path = join(d, name);
      await expect(regularFileSize(path)).rejects.toThrow(`${path}: is ${kind}, not a regular file`);
      await expect(readRegularFile(path, 100)).rejects.toThrow(`${path}: is ${kind}, not a regular file`);
      expect(() => openRegularFileSync(path)).toThrow(`${path}: is ${kind}, not a regular file`);
    }
  });

  test('a file over the bound is refused, and a read never returns more than asked', async () => {
    const d = scratch();
    const path = join(d, 'blk00000.dat');
    writeFileSync(path, Buffer.alloc(100, 7));
    await expect(regularFileSize(path, 99)).rejects.toThrow(/is 100 bytes, more than any file bitcoind writes there \(at most 99\)/);
    expect(await regularFileSize(path, 100)).toBe(100);
    expect((await readRegularFile(path, 10)).length).toBe(10);
    const into = Buffer.alloc(200);
    const view = await readRegularFile(path, 1000, into);
    expect([view.length, view.buffer === into.buffer]).toEqual([100, true]);
    await expect(readRegularFile(join(d, 'missing'), 10)).rejects.toMatchObject({ code: 'ENOENT', offset: null });
  });
});

describe('the end of the last file, where a live node writes', () => {
  const records = (...sizes: number[]): Buffer => Buffer.concat(sizes.map((n) => {
    const head = Buffer.alloc(8);
    MAGIC.copy(head);
    head.writeUInt32LE(n, 4);
    return Buffer.concat([head, Buffer.alloc(n, 0xaa)]);
  }));

  test.each([
    ['a record cut off by the end of the file', records(10, 20).subarray(0, 18 + 8 + 5)],
    ['a record header cut off', records(10, 20).subarray(0, 18 + 6)],
    ['part of a magic, then zeros', Buffer.concat([records(10), MAGIC.subarray(0, 2), Buffer.alloc(50)])],
  ])('%s is incomplete in the last file and an error in any other', (_what, buf) => {
    expect(splitRecords(buf, 'f', MAGIC, null, true)).toEqual({ ranges: [8, 10], error: null, incomplete: 18 });
    const other = splitRecords(buf, 'f', MAGIC, null, false);
    expect([other.ranges, other.incomplete]).toEqual([[8, 10], null]);
    expect(other.error).toBeInstanceOf(BlkFileError);
  });

  test('a cut-off record with another record inside it, or junk past a partial header, is corruption even in the last file', () => {
    // A size field grown by a flipped bit swallows the records after it.
    const grown = records(10, 20, 30);
    grown.writeUInt32LE(10 + 1000, 4);
    expect(splitRecords(grown, 'f', MAGIC, null, true).error?.message).toMatch(/^f at offset 8: record of 1010 bytes runs past the end of the file/);
    const junk = Buffer.concat([records(10), MAGIC.subarray(0, 2), Buffer.alloc(20), Buffer.from('junk')]);
    expect(splitRecords(junk, 'f', MAGIC, null, true).error?.message).toMatch(/^f at offset 18: expected a block record or zero padding here/);
  });

  test('a file that does not start with a record, without a key, suggests a missing xor.dat', () => {
    const buf = Buffer.concat([Buffer.from('0123456789'), records(10)]);
    expect(splitRecords(buf, 'f', MAGIC, null, false).error?.message).toMatch(/^f at offset 0: .*xor\.dat \(the obfuscation key\) may be missing$/);
  });
});
