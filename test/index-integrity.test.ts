/**
 * A damaged index is never a different answer (docs/spec.md §2.8's "never a
 * wrong answer with exit 0"): flipped bits in table files are caught by
 * their block checksums at open, rows rewritten with valid checksums by
 * `nodereg check`, and every way an index directory can be broken gets a
 * one-line error naming the cause and the remedy, with exit status 1.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { exportAt } from '../indexer/read/queries.js';
import { openStore } from '../indexer/store/store.js';
import { checkTable } from '../indexer/store/tablecheck.js';
import { K, P } from '../indexer/store/layout.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const regtest = BUILTIN_NETWORKS.regtest!;

let dir: string;
let db: string;
let exported: string;

const copyOf = (name: string): string => {
  const to = join(dir, name);
  cpSync(db, to, { recursive: true });
  return to;
};

const tableOf = (path: string): string => join(path, readdirSync(path).find((n) => n.endsWith('.ldb'))!);

/** One line on stderr, the exit status, and nothing on stdout. The CLI runs in-process (see noderegIn); the index is built by the spawned binary. */
async function fails(args: string[], status: number, pattern: RegExp): Promise<string> {
  const res = await noderegIn(args);
  expect({ status: res.status, stdout: res.stdout }).toEqual({ status, stdout: '' });
  expect(res.stderr).toMatch(/^nodereg: [^\n]+\n$/);
  expect(res.stderr).toMatch(pattern);
  expect(res.stderr).not.toMatch(/internal error/);
  return res.stderr;
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-integrity-'));
  db = join(dir, 'db');
  expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', db]).status).toBe(0);
  // The first read-only open turns the write-ahead log into a table file.
  const res = nodereg(['export', '--db', db]);
  expect(res.status).toBe(0);
  exported = res.stdout;
  expect(readdirSync(db).some((n) => n.endsWith('.ldb'))).toBe(true);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('bit flips in table files', () => {
  it('flipping one bit at 148 positions of the .ldb never gives a different export: the open refuses, or the bit was unused', async () => {
    const original = readFileSync(tableOf(db));
    const target = copyOf('sweep');
    const file = tableOf(target);
    let refused = 0;
    let same = 0;
    for (let i = 0; i < 148; i++) {
      const pos = Math.floor((i * (original.length - 1)) / 147);
      const flipped = Buffer.from(original);
      flipped[pos]! ^= 1 << (i % 8);
      writeFileSync(file, flipped);
      let answer: string | null = null;
      try {
        const opened = await openStore(target, regtest, { create: false });
        try {
          answer = JSON.stringify(await exportAt(opened, regtest), null, 2) + '\n';
        } finally {
          await opened.close();
        }
      } catch (err) {
        expect((err as Error).message).toMatch(/is damaged: .*\.ldb: .*--reset/);
        refused++;
        continue;
      }
      expect(answer).toBe(exported);
      same++;
    }
    // Only the footer's padding between the block handles and the magic number is unused.
    expect(refused).toBeGreaterThanOrEqual(140);
    expect(refused + same).toBe(148);
  }, 300_000);

  it('a half-written table that LevelDB never listed (a process killed while writing it) is no damage: the open drops it', async () => {
    const target = copyOf('leftover');
    const bytes = readFileSync(tableOf(target));
    writeFileSync(join(target, '009999.ldb'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const res = await noderegIn(['export', '--db', target]);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    expect(res.stdout).toBe(exported);
    expect(readdirSync(target)).not.toContain('009999.ldb');
  }, 120_000);

  it('the CLI names the file and the remedy, with exit 1, for export and check alike', async () => {
    const target = copyOf('flip');
    const file = tableOf(target);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 3)]! ^= 0x10;
    writeFileSync(file, bytes);
    expect(checkTable(bytes)).toMatch(/checksum mismatch/);
    await fails(['export', '--db', target], 1, /the index at .* is damaged: \d+\.ldb: checksum mismatch in the data block at offset \d+; rebuild it with "nodereg recount --db .* --reset/);
    await fails(['check', '--db', target], 1, /is damaged: .*checksum mismatch/);
  }, 120_000);
});

describe('nodereg check', () => {
  it('reads every table file, even one an earlier open recorded as checked and whose size and times look unchanged', async () => {
    const target = copyOf('stale-record');
    expect((await noderegIn(['export', '--db', target])).status).toBe(0);
    const file = tableOf(target);
    const { atime, mtime } = statSync(file);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(file, bytes);
    utimesSync(file, atime, mtime);
    await fails(['check', '--db', target], 1, /is damaged: \d+\.ldb: checksum mismatch/);
  }, 120_000);


  it('passes on a sound index, in text and JSON', async () => {
    const res = await noderegIn(['check', '--db', db]);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^ok: at height 450 .*registry root from the registration rows \(3\), registry root from the event history \(3\), proof root from the registration rows \(3\), proof root from the event history \(3\), proof-tree history \(leaf and subtree rows\) as of the tip \(\d+\), lifetime rows from the registration rows \(\d+\), block-time rows, one per block \(451\)\n$/);
    const json = JSON.parse((await noderegIn(['check', '--db', db, '--json'])).stdout) as { result: string; checks: Array<{ ok: boolean; stored: string }> };
    expect(json.result).toBe('ok');
    expect(json.checks.map((c) => c.ok)).toEqual([true, true, true, true, true, true, true]);
    expect(json.checks[0]!.stored).toBe((JSON.parse(exported) as { root: string }).root);
  }, 120_000);

  it('finds one flipped bit in the row of a live registration, rewritten through level with valid checksums', async () => {
    const target = copyOf('row');
    const level = new Level<Buffer, Buffer>(target, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    let flipped = '';
    for await (const [k, v] of level.iterator(K.all(P.registration))) {
      const n = v.readUInt16LE(0);
      if (v[2 + n + 92] !== 0) continue; // status byte: 0 = active
      v[2 + n + 8 + 32 + 4 + 5]! ^= 0x02; // a byte of the tip txid
      await level.put(k, v);
      flipped = `${k.readUInt32BE(1)}:${k.readUInt32BE(5)}`;
      break;
    }
    await level.close();
    expect(flipped).not.toBe('');
    const res = await noderegIn(['check', '--db', target]);
    expect(res.status).toBe(3);
    expect(res.stdout).toMatch(new RegExp(`^MISMATCH: registration ${flipped} of stake [0-9a-f]+ at height 450: tip txid [0-9a-f]{64} in its row, [0-9a-f]{64} from its event history; rebuild it with "nodereg recount --db .* --reset[^\\n]*\\n$`));
    const json = JSON.parse((await noderegIn(['check', '--db', target, '--json'])).stdout) as { result: string; checks: Array<{ what: string; ok: boolean }> };
    expect(json.result).toBe('mismatch');
    expect(json.checks.filter((c) => c.what.includes('root from the registration rows')).map((c) => c.ok)).toEqual([false, false]);
    expect(json.checks.filter((c) => c.what.includes('event history')).map((c) => c.ok)).toEqual([true, true]);
  }, 120_000);

  it('re-derives the lifetime rows from the registration rows, and finds one moved to another end height, one rewritten and one missing', async () => {
    const level = new Level<Buffer, Buffer>(copyOf('lifetime-rows'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    const rows: Array<[Buffer, Buffer]> = [];
    for await (const row of level.iterator(K.all(P.lifetime))) rows.push(row);
    await level.close();
    expect(rows.length).toBeGreaterThan(2);
    const name = (k: Buffer): string => `registration ${k.readUInt32BE(5)}:${k.readUInt32BE(9)}`;
    let copies = 0;
    const tampered = async (change: (l: Level<Buffer, Buffer>) => Promise<void>): Promise<string> => {
      const copy = copyOf(`lifetime-${copies++}`);
      const l = new Level<Buffer, Buffer>(copy, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
      await change(l);
      await l.close();
      const res = await noderegIn(['check', '--db', copy]);
      expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 3, stderr: '' });
      return res.stdout;
    };
    const [k0, v0] = rows[0]!;
    const moved = Buffer.from(k0);
    moved.writeUInt32BE(k0.readUInt32BE(1) === 0xffffffff ? 0xfffffffe : k0.readUInt32BE(1) + 1, 1);
    expect(await tampered(async (l) => l.batch([{ type: 'del', key: k0 }, { type: 'put', key: moved, value: v0 }])))
      .toMatch(new RegExp(`^MISMATCH: the lifetime rows from the registration rows: the lifetime row of ${name(k0)} \\(ended (never|\\d+)\\) has no registration row to match it;`));
    const [k1, v1] = rows[1]!;
    const other = Buffer.from(v1);
    other[other.length - 1]! ^= 0x01;
    expect(await tampered(async (l) => l.put(k1, other))).toMatch(new RegExp(`^MISMATCH: the lifetime rows from the registration rows: the lifetime row of ${name(k1)} .* names stake ${other.toString('hex')}, but its registration row ${v1.toString('hex')};`));
    const [k2] = rows[2]!;
    expect(await tampered(async (l) => l.del(k2))).toMatch(new RegExp(`^MISMATCH: the lifetime rows from the registration rows: the lifetime row of ${name(k2)} .* is missing, though its registration row says so;`));
  }, 120_000);

  it('compares the proof-tree history at the tip with the tree of the live registrations, and finds a rewritten leaf and a subtree row above the tip', async () => {
    const leafCopy = copyOf('proof-leaf');
    const level = new Level<Buffer, Buffer>(leafCopy, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    let key: Buffer | null = null;
    let value: Buffer | null = null;
    for await (const [k, v] of level.iterator(K.all(P.proofLeaf))) {
      if (v.length !== 32) continue;
      key = Buffer.from(k.subarray(1, 33));
      value = Buffer.from(v);
    }
    expect(key).not.toBeNull();
    value![0]! ^= 0x01;
    // A later row for the key, within the chain, that says another leaf.
    await level.put(K.proofLeaf(key!, 450), value!);
    await level.close();
    const res = await noderegIn(['check', '--db', leafCopy]);
    expect(res.status).toBe(3);
    expect(res.stdout).toMatch(new RegExp(`^MISMATCH: the proof-tree history \\(leaf and subtree rows\\) as of the tip: key ${key!.toString('hex')}: its latest leaf row says ${value!.toString('hex')}, the live registrations `));
    const above = copyOf('proof-subtree-above');
    const l = new Level<Buffer, Buffer>(above, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await l.put(K.proofSubtree(7, 451), Buffer.of(0));
    await l.close();
    expect((await noderegIn(['check', '--db', above])).stdout).toMatch(/^MISMATCH: the proof-tree history \(leaf and subtree rows\) as of the tip: a subtree row of subtree 7 is for height 451, above the tip 450;/);
  }, 120_000);

  it('finds a missing block-time row and one above the tip', async () => {
    const target = copyOf('blocktime');
    const level = new Level<Buffer, Buffer>(target, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await level.del(K.blockTime(200));
    await level.close();
    expect((await noderegIn(['check', '--db', target])).stdout).toMatch(/^MISMATCH: the block-time rows, one per block: the block-time row of height 200 is missing;/);
    const above = copyOf('blocktime-above');
    const l = new Level<Buffer, Buffer>(above, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    await l.put(K.blockTime(451), Buffer.alloc(4));
    await l.close();
    const res = await noderegIn(['check', '--db', above]);
    expect(res.status).toBe(3);
    expect(res.stdout).toMatch(/^MISMATCH: the block-time rows, one per block: there is a block-time row for height 451, above the tip 450;/);
  }, 120_000);

  it('re-derives the UTXO-set hash of an index that keeps one, and finds a rewritten coin', async () => {
    const target = join(dir, 'utxo');
    expect((await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', target, '--utxo-hash'])).status).toBe(0);
    const ok = JSON.parse((await noderegIn(['check', '--db', target, '--json'])).stdout) as { result: string; checks: Array<{ what: string; rows: number }> };
    expect(ok.result).toBe('ok');
    expect(ok.checks.map((c) => c.what)).toContain('UTXO-set MuHash from the coin rows');
    const level = new Level<Buffer, Buffer>(target, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    for await (const [k, v] of level.iterator({ ...K.all(P.coin), limit: 1 })) {
      v[0]! ^= 0x01; // the value's lowest bit
      await level.put(k, v);
    }
    await level.close();
    const res = await noderegIn(['check', '--db', target]);
    expect(res.status).toBe(3);
    expect(res.stdout).toMatch(/^MISMATCH: the UTXO-set MuHash from the coin rows \(\d+ coins\) is [0-9a-f]{64}, but the hash stored for height 450 is [0-9a-f]{64}; rebuild/);
  }, 300_000);
});

describe('a broken index directory names its cause', () => {
  it('a deleted .ldb, MANIFEST or CURRENT', async () => {
    const noTable = copyOf('no-ldb');
    rmSync(tableOf(noTable));
    await fails(['export', '--db', noTable], 1, /is damaged: its table file \d+\.ldb is missing; rebuild it with "nodereg recount --db .* --reset/);
    const noManifest = copyOf('no-manifest');
    for (const n of readdirSync(noManifest)) if (n.startsWith('MANIFEST-')) rmSync(join(noManifest, n));
    await fails(['nodes', '--db', noManifest], 1, /is damaged: its file MANIFEST-\d+ is missing; rebuild/);
    const noCurrent = copyOf('no-current');
    rmSync(join(noCurrent, 'CURRENT'));
    await fails(['export', '--db', noCurrent], 1, /is damaged: its CURRENT file is missing/);
    // A recount must not silently start over on top of it either.
    await fails(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', noCurrent], 1, /its CURRENT file is missing/);
  }, 120_000);

  it('--db naming a file, or a path below a file', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not an index');
    await fails(['export', '--db', file], 1, /--db .*a-file is a file, not a directory/);
    await fails(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', join(file, 'db')], 1, /a part of the path is a file, not a directory/);
  }, 120_000);

  it('a foreign LevelDB is not described as built from a params file', async () => {
    const foreign = join(dir, 'foreign');
    const other = new Level(foreign);
    await other.put('hello', 'world');
    await other.close();
    const err = await fails(['nodes', '--db', foreign], 1, /is a LevelDB database but not a nodereg index/);
    expect(err).not.toMatch(/undefined|params file/);
  }, 120_000);

  // Needs root to switch users, and a checkout that uid 65534 can reach (a
  // clone inside a 0700 directory is not): otherwise skipped, never faked.
  const asNobody = process.getuid?.() === 0
    && spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), '--version'], { uid: 65534, gid: 65534 }).status === 0;
  (asNobody ? it : it.skip)('an unreadable index directory, and an unwritable place for a new one (run as uid 65534)', () => {
    const locked = copyOf('locked');
    chmodSync(locked, 0o700);
    chmodSync(dir, 0o755);
    const run = (args: string[]): { status: number | null; stderr: string } => {
      return spawnSync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', uid: 65534, gid: 65534 });
    };
    let res = run(['export', '--db', locked]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^nodereg: cannot read the index directory .*locked: permission denied; run as the user who owns it, or choose another --db\n$/);
    res = run(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', join(locked, 'sub')]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^nodereg: cannot \w+ the index directory .*: permission denied[^\n]*\n$/);
  }, 120_000);
});
