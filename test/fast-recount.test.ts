import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { readBlockRecords } from '../indexer/chain/blkfiles.js';
import { writeBlkDir } from './helpers/blocksdir.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-fast-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** `recount --json` in this process (`noderegIn`); the spill case below spawns the binary once. */
const recount = async (args: string[]): Promise<string> => {
  const res = await noderegIn(['recount', '--json', ...args]);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return res.stdout;
};

type CoinFileModule = typeof import('../indexer/store/coinfile.js');

/**
 * The 40k-tx chain's arguments, its JSON from the database engine (under
 * `name` in the cache), and the built CLI's own coin-file module, the one
 * noderegIn runs, for a test to watch or slow down.
 */
async function againstDb(name: string): Promise<{ args: string[]; reference: string; mod: CoinFileModule }> {
  const chain = benchChain(cache, 40_000, undefined, 7);
  const args = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
  const reference = await recount([...args, '--db', join(cache, name)]);
  const mod = (await import(join(ROOT, 'dist', 'indexer', 'store', 'coinfile.js'))) as CoinFileModule;
  return { args, reference, mod };
}

describe('recount --fast', () => {
  it('prints byte-identical JSON to the full recount on the demo chain', async () => {
    const demo = ['--network', 'regtest', '--blocks-dir', join(ROOT, 'fixtures', 'chains', 'demo', 'blocks')];
    expect(await recount([...demo, '--fast'])).toBe(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8'));
  });

  it.each([1, 2, 3])('prints byte-identical JSON to the full recount on random chain %i', async (seed) => {
    const chain = benchChain(cache, 6000 + 1000 * seed, undefined, seed);
    const args = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
    const full = await recount(args);
    const parsed = JSON.parse(full) as { nodes: Array<{ status: string; renewals: number }>; rejected: unknown[] };
    expect(parsed.nodes.length).toBeGreaterThan(3);
    expect(await recount([...args, '--fast'])).toBe(full);
  });

  it('on a bigger random chain, the database engine, the in-memory engine and --fast print the same JSON', async () => {
    const chain = benchChain(cache, 40_000, undefined, 7);
    const args = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
    // --utxo-memory-mib is the deprecated spelling of --memory-mib: 0 spills after every block.
    const onDisk = await recount([...args, '--utxo-memory-mib', '0']);
    expect((JSON.parse(onDisk) as { nodes: unknown[] }).nodes.length).toBeGreaterThan(20);
    expect(await recount(args)).toBe(onDisk);
    expect(await recount([...args, '--fast'])).toBe(onDisk);
    expect(await recount([...args, '--threads', '1'])).toBe(onDisk);
    // No txids kept by the chain pass: worker threads sweep every block for the few the connect needs, which then spills every block.
    expect(await recount([...args, '--fast', '--memory-mib', '0'])).toBe(onDisk);
    expect(await recount([...args, '--fast', '--memory-mib', '0', '--threads', '1'])).toBe(onDisk);
  });

  it('a damaged coin file (a fake fault: the file is unlinked, nothing outside can reach it) is a one-line error naming the temporary directory, which is gone afterwards', async () => {
    const chain = benchChain(cache, 7000, undefined, 1);
    // The built CLI's own module, the one noderegIn runs.
    const mod = (await import(join(ROOT, 'dist', 'indexer', 'store', 'coinfile.js'))) as typeof import('../indexer/store/coinfile.js');
    const proto = mod.CoinFile.prototype;
    const real = proto.get;
    let reads = 0;
    proto.get = function (this: typeof proto, ...a: Parameters<typeof real>) {
      if (++reads === 50) throw new mod.CoinFileError('the coin file is corrupt: an entry fails its check');
      return real.apply(this, a);
    };
    try {
      const res = await noderegIn(['recount', '--params', chain.paramsFile, '--blocks-dir', chain.blocksDir, '--memory-mib', '0']);
      expect(reads).toBe(50);
      expect({ status: res.status, stdout: res.stdout }).toEqual({ status: 1, stdout: '' });
      const m = /^nodereg: the coin file is corrupt: an entry fails its check \(under (.*nodereg-recount-[^)]*)\); check the disk that holds TMPDIR, or set TMPDIR to another, and run the command again\n$/.exec(res.stderr);
      expect(m).not.toBeNull();
      expect(existsSync(m![1]!)).toBe(false);
    } finally {
      proto.get = real;
    }
  });

  it('reads made ahead for the coin file are taken between spills, never across one: the same JSON as the database engine', async () => {
    // Each file's figures as it closes.
    const { args, reference, mod } = await againstDb('ahead-reference');
    type File = import('../indexer/store/coinfile.js').CoinFile;
    const proto = mod.CoinFile.prototype;
    const { close, preread } = proto;
    const closed: Array<{ lookups: number; answered: number; grows: number }> = [];
    proto.close = function (this: File) {
      closed.push({ lookups: this.lookups, answered: this.answered, grows: this.grows });
      close.call(this);
    };
    try {
      for (const inline of [false, true]) {
        // Inline: each block's coins are read when asked, before the block
        // ahead of it connects and spills: stale for the block after each
        // spill. Otherwise on the reader thread, whenever it gets to them.
        proto.preread = function (this: File, ...a: Parameters<File['preread']>) {
          if (inline) (this as unknown as { prereads: string }).prereads = 'inline';
          preread.apply(this, a);
        };
        // Inline (no thread for the budget to count), 100 MiB leaves the
        // tables room for several blocks: a few spills, most blocks read
        // ahead between two; 96 MiB spills after nearly every block, so
        // nearly every read ahead is stale. With the reader thread, which
        // the budget counts, both spill after nearly every block.
        for (const mib of ['100', '96']) {
          closed.length = 0;
          const got = await recount([...args, '--memory-mib', mib]);
          // One coin file: a stale answer taken would have failed a block
          // while connecting during the chain pass, and the recount started over.
          expect(closed).toHaveLength(1);
          expect(closed[0]!.grows).toBeGreaterThan(0);
          expect(closed[0]!.lookups).toBeGreaterThan(1000);
          if (inline && mib === '100') expect(closed[0]!.answered).toBeGreaterThan(closed[0]!.lookups / 4);
          if (inline && mib === '96') expect(closed[0]!.answered).toBeLessThan(closed[0]!.lookups / 10);
          expect(got).toBe(reference);
        }
      }
    } finally {
      proto.close = close;
      proto.preread = preread;
    }
  });

  it('a reader thread stuck inside every third lookup holds nothing up: those coins are read on the main thread, and the JSON is the same', async () => {
    const { args, reference, mod } = await againstDb('stall-reference');
    type File = import('../indexer/store/coinfile.js').CoinFile;
    const proto = mod.CoinFile.prototype;
    const { close } = proto;
    const closed: Array<{ lookups: number; overtaken: number }> = [];
    proto.close = function (this: File) {
      closed.push({ lookups: this.lookups, overtaken: this.overtaken });
      close.call(this);
    };
    // The test seam: the reader leaves a stuck lookup only once the main thread has gone past that key, or dropped the request.
    mod.CoinFile.readerStall = 3;
    try {
      const got = await recount([...args, '--memory-mib', '100']);
      // One coin file (no start over), many lookups, and keys the reader had
      // not answered when their lookup came: read there, not waited for (a wait would never end).
      expect(closed.map((c) => ({ lookups: c.lookups > 1000, overtaken: c.overtaken > 0 }))).toEqual([{ lookups: true, overtaken: true }]);
      expect(got).toBe(reference);
    } finally {
      proto.close = close;
      mod.CoinFile.readerStall = 0;
    }
  });

  it('a recount whose coin tables outgrow the memory budget spills them and goes on quietly, with the same result', async () => {
    const chain = benchChain(cache, 7000, undefined, 1);
    const args = ['--params', chain.paramsFile, '--blocks-dir', chain.blocksDir];
    const res = nodereg(['recount', '--json', ...args, '--memory-mib', '0.5']);
    expect(res.status).toBe(0);
    expect(res.stderr).toBe('');
    expect(res.stdout).toBe(await recount([...args, '--db', join(cache, 'spill-reference')]));
  });

  it('reads a blocks directory of several obfuscated files the same on one thread as on worker threads', async () => {
    const blocks: Buffer[] = [];
    for await (const rec of readBlockRecords(join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), 'fabfb5da')) blocks.push(Buffer.from(rec.bytes));
    const third = Math.ceil(blocks.length / 3);
    const dir = writeBlkDir([blocks.slice(0, third), blocks.slice(third, 2 * third), blocks.slice(2 * third)], {
      magic: Buffer.from('fabfb5da', 'hex'), key: Buffer.from('0011223344556677', 'hex'),
    });
    try {
      const expected = readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8');
      for (const threads of ['1', '2', '3']) {
        expect(await recount(['--network', 'regtest', '--blocks-dir', dir, '--threads', threads])).toBe(expected);
        expect(await recount(['--network', 'regtest', '--blocks-dir', dir, '--threads', threads, '--fast'])).toBe(expected);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [['--threads', '0'], /--threads must be a whole number from 1 to 64/],
    [['--threads', '1.5'], /--threads must be a whole number from 1 to 64/],
    [['--memory-mib', '-1'], /--memory-mib must be 0 or more/],
    [['--utxo-memory-mib', 'lots'], /--memory-mib must be 0 or more/],
  ])('refuses %j with a usage error', async (flags, message) => {
    const res = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', cache, ...flags]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('refuses --fast with --db or --utxo-hash, since the index it leaves is partial', async () => {
    const res = await noderegIn(['recount', '--fast', '--db', join(cache, 'x'), '--network', 'regtest', '--blocks-dir', cache]);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/cannot be combined with --db or --utxo-hash/);
  });
});
