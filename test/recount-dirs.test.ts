/**
 * What a blocks directory can be besides bitcoind's own: special files in
 * place of blk files (a device, a pipe), another network's directory, the
 * data directory above it, obfuscated files without their key, and a live
 * node's directory whose newest block is half written. Each gets a clear
 * answer through the CLI, and none hangs or eats memory (docs/spec.md §2.8,
 * docs/operations.md).
 */
import { execFileSync, type SpawnSyncReturns } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { layoutBlkFiles, storageOrder } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { nodereg, noderegIn, type CliRun, ROOT } from './helpers/cli.js';

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const EXPECTED = readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8');
/** Generous: the machine is shared, but a process that hangs must end the test, failing it. */
const SLOW = 180_000;

let tmp: string;
let dirs = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-dirs-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A copy of the demo blocks directory (obfuscated, one file) under a fresh parent. */
function demoCopy(): { parent: string; blocks: string } {
  const parent = join(tmp, `${dirs++}`);
  const blocks = join(parent, 'blocks');
  mkdirSync(blocks, { recursive: true });
  for (const f of ['blk00000.dat', 'xor.dat']) copyFileSync(join(DEMO, f), join(blocks, f));
  return { parent, blocks };
}

/** In-process (see noderegIn): what recount says about its input is tested, not the process. */
const recountCli = (dir: string, extra: string[] = ['--network', 'regtest']): Promise<CliRun> =>
  noderegIn(['recount', '--blocks-dir', dir, '--json', ...extra]);

/** Exit 1 with one line of error, no stack trace, nothing on stdout; a hang (no status) fails too. */
function expectCleanFailure(res: CliRun | SpawnSyncReturns<string>, message: RegExp): void {
  expect({ status: res.status, signal: 'signal' in res ? res.signal : null, stdout: res.stdout }).toEqual({ status: 1, signal: null, stdout: '' });
  expect(res.stderr.trimEnd().split('\n')).toEqual([expect.stringMatching(message)]);
  expect(res.stderr).not.toMatch(/\n\s+at |internal error/);
}

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('special files in a blocks directory are refused without reading them', () => {
  it.each([
    ['a symlink to /dev/zero', (p: string) => symlinkSync('/dev/zero', p), 'a character device'],
    ['a named pipe nobody writes to', (p: string) => execFileSync('mkfifo', [p]), 'a named pipe'],
    ['a directory', (p: string) => mkdirSync(p), 'a directory'],
  ])('blk00001.dat as %s', async (_what, make, kind) => {
    const { blocks } = demoCopy();
    make(join(blocks, 'blk00001.dat'));
    expectCleanFailure(await recountCli(blocks), new RegExp(`^nodereg: ${escape(join(blocks, 'blk00001.dat'))}: is ${kind}, not a regular file; .*move it away$`));
  }, SLOW);

  it.each([
    ['a symlink to /dev/zero', (p: string) => symlinkSync('/dev/zero', p), 'a character device'],
    ['a named pipe nobody writes to', (p: string) => execFileSync('mkfifo', [p]), 'a named pipe'],
  ])('xor.dat as %s', async (_what, make, kind) => {
    const { blocks } = demoCopy();
    rmSync(join(blocks, 'xor.dat'));
    make(join(blocks, 'xor.dat'));
    expectCleanFailure(await recountCli(blocks), new RegExp(`^nodereg: ${escape(join(blocks, 'xor.dat'))}: is ${kind}, not a regular file`));
  }, SLOW);

  it('a blk file that is a symlink to a regular file is read like the file', async () => {
    const { parent, blocks } = demoCopy();
    const elsewhere = join(parent, 'moved.dat');
    copyFileSync(join(blocks, 'blk00000.dat'), elsewhere);
    rmSync(join(blocks, 'blk00000.dat'));
    symlinkSync(elsewhere, join(blocks, 'blk00000.dat'));
    const res = await recountCli(blocks);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    expect(res.stdout).toBe(EXPECTED);
  }, SLOW);
});

describe('the wrong directory gets a hint at the right one', () => {
  it.each(['mainnet', 'testnet4', 'signet'])('a regtest directory recounted as %s names regtest', async (network) => {
    const { blocks } = demoCopy();
    expectCleanFailure(await recountCli(blocks, ['--network', network]),
      new RegExp(`^nodereg: ${escape(blocks)} looks like a regtest blocks directory \\(it starts with regtest's genesis block\\), not ${network}: add --network regtest$`));
  }, SLOW);

  it('the parent of blocks/ suggests blocks/', async () => {
    const { parent, blocks } = demoCopy();
    expectCleanFailure(await recountCli(parent), new RegExp(`^nodereg: no blk\\*\\.dat files in ${escape(parent)}, but bitcoind's blocks are in ${escape(blocks)}: pass --blocks-dir ${escape(blocks)}$`));
  }, SLOW);

  it('a data directory suggests the network subdirectory that holds the blocks', async () => {
    const { parent } = demoCopy();
    const datadir = join(tmp, `${dirs++}`);
    mkdirSync(datadir);
    execFileSync('mv', [parent, join(datadir, 'regtest')]);
    const blocks = join(datadir, 'regtest', 'blocks');
    expectCleanFailure(await recountCli(datadir), new RegExp(`pass --blocks-dir ${escape(blocks)}$`));
  }, SLOW);

  it('obfuscated files without xor.dat: the error says xor.dat may be missing', async () => {
    const { blocks } = demoCopy();
    rmSync(join(blocks, 'xor.dat'));
    expectCleanFailure(await recountCli(blocks), new RegExp(`^nodereg: ${escape(join(blocks, 'blk00000.dat'))}.*xor\\.dat \\(the obfuscation key\\) may be missing$`));
  }, SLOW);
});

describe("a live node's directory: the newest block half written", () => {
  // The tip is stored last, as a node appends it; the two files are obfuscated.
  const c = new ChainBuilder({ seed: 'live-node', sign: 'dummy' });
  c.mineEmpty(30);
  const KEY = Buffer.from('0f1e2d3c4b5a6978', 'hex');
  const files = layoutBlkFiles(storageOrder(c), { magic: 'fabfb5da', xorKey: KEY, maxFileSize: 4000 });
  const lastFile = files[files.length - 1]!;
  const tipAt = lastFile.records[lastFile.records.length - 1]!.offset;
  const tipSize = c.tip.raw.length;

  /** The directory with the last file replaced by `bytes` (raw, as on disk). */
  function liveDir(last: Buffer): string {
    const dir = join(tmp, `${dirs++}`, 'blocks');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'xor.dat'), KEY);
    files.forEach((f, i) => writeFileSync(join(dir, f.name), i === files.length - 1 ? last : f.bytes));
    return dir;
  }
  const whole = Buffer.from(lastFile.bytes);
  let before: string;
  beforeAll(async () => {
    expect(files.length).toBeGreaterThan(1);
    const res = await recountCli(liveDir(whole), ['--network', 'regtest', '--height', String(c.height - 1)]);
    expect(res.status).toBe(0);
    before = res.stdout;
  }, SLOW);

  // The chain pass is the same in every mode: each case runs in one of them.
  it.each([
    ['cut off by the end of the file', () => whole.subarray(0, tipAt + 8 + 100), ['--db', '<db>']],
    ['cut off inside its record header', () => whole.subarray(0, tipAt + 6), ['--fast']],
    // Preallocated space is raw zeros on disk, even in an obfuscated file.
    ['in preallocated space: its last bytes are still zeros', () => Buffer.concat([whole.subarray(0, tipAt + 8 + 100), Buffer.alloc(tipSize - 100 + 4096)]), []],
    ['only part of its magic written, then zeros', () => Buffer.concat([whole.subarray(0, tipAt + 2), Buffer.alloc(4096)]), ['--threads', '1']],
  ])('%s: a warning names the file, and the recount ends at the last complete block', async (_what, bytes, flags) => {
    const dir = liveDir(bytes());
    {
      const extra = flags.map((f) => (f === '<db>' ? join(tmp, `${dirs++}-db`) : f));
      const res = await recountCli(dir, ['--network', 'regtest', ...extra]);
      expect(res.status).toBe(0);
      expect(res.stderr.trimEnd().split('\n')).toEqual([
        `warning: ${join(dir, lastFile.name)} ends in an incomplete block record at offset ${tipAt} (is bitcoind still writing it?): it is left out, and the recount ends at the last complete block`,
      ]);
      expect(res.stdout).toBe(before);
    }
  }, SLOW);

  it('a --db recount of the half-written directory, run again once the block is complete, reaches the tip', async () => {
    const dir = liveDir(whole.subarray(0, tipAt + 8 + 100));
    const db = join(tmp, `${dirs++}-db`);
    expect((await recountCli(dir, ['--network', 'regtest', '--db', db])).stdout).toBe(before);
    writeFileSync(join(dir, lastFile.name), whole);
    const res = await recountCli(dir, ['--network', 'regtest', '--db', db]);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    expect(JSON.parse(res.stdout)).toMatchObject({ height: c.height, tip: c.tip.hash });
  }, SLOW);

  it('a damaged record that is not the newest one is still an error', async () => {
    const damaged = Buffer.from(files[0]!.bytes).subarray(0, files[0]!.bytes.length - 10);
    const dir = liveDir(whole);
    writeFileSync(join(dir, files[0]!.name), damaged);
    const res = await recountCli(dir);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^nodereg: ${escape(join(dir, files[0]!.name))} at offset \\d+: record of \\d+ bytes runs past the end of the file`));
  }, SLOW);
});
