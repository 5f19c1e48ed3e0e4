import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { prng } from '../fixtures/generator/random.js';
import { liveTables, openTables, tableNumber } from '../indexer/store/manifest.js';
import { openStore } from '../indexer/store/store.js';
import { tableFiles } from '../indexer/store/tablecheck.js';
import { BUILTIN_NETWORKS } from '../script/params.js';

/*
 * The open tells the index's tables from a killed process's leftovers by the
 * MANIFEST (store/manifest.ts). Its reader is checked against LevelDB
 * itself: after a clean close, the table files on disk are exactly the live
 * ones, and the open database's own list agrees.
 */

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-manifest-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const onDisk = (path: string): number[] => tableFiles(path).map(tableNumber).sort((a, b) => a - b);
const sorted = (s: Set<number> | null): number[] | null => (s === null ? null : [...s].sort((a, b) => a - b));
const currentManifest = (path: string): string => join(path, readFileSync(join(path, 'CURRENT'), 'utf8').trim());

/** classic-level's calls that the types of `level` lack. */
const classic = (db: Level<Buffer, Buffer>): { compactRange(from: Buffer, to: Buffer): Promise<void>; getProperty(name: string): string } =>
  db as unknown as { compactRange(from: Buffer, to: Buffer): Promise<void>; getProperty(name: string): string };

/** Random puts and deletes, with tables small enough that flushes, compactions and moves between levels happen. */
async function churn(path: string, seed: number, rounds: number, maxFileSize: number): Promise<void> {
  const rnd = prng(seed);
  for (let r = 0; r < rounds; r++) {
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer', writeBufferSize: 64 * 1024, maxFileSize });
    await db.open();
    for (let b = 0; b < 40; b++) {
      const batch = db.batch();
      for (let i = 0; i < 100; i++) {
        const key = Buffer.alloc(12);
        key.writeUInt32BE(Math.floor(rnd() * 20_000), 0);
        key.writeUInt32BE(seed, 4);
        if (rnd() < 0.2) batch.del(key);
        else batch.put(key, Buffer.alloc(40 + Math.floor(rnd() * 200), r));
      }
      await batch.write();
    }
    let listed: Set<number> | null = null;
    if (r % 2 === 1) {
      // Once a manual compaction of every key has ended, no compaction runs
      // and LevelDB's own list of its tables is the oracle.
      await classic(db).compactRange(Buffer.alloc(0), Buffer.alloc(16, 0xff));
      listed = openTables(classic(db).getProperty('leveldb.sstables'));
    }
    await db.close();
    const live = sorted(liveTables(path))!;
    if (listed !== null) {
      expect(live).toEqual(sorted(listed));
      expect(live).toEqual(onDisk(path));
    }
    // Otherwise a compaction may have been cut short by the close, leaving its
    // unlisted output behind; every listed table is on disk.
    expect(onDisk(path)).toEqual(expect.arrayContaining(live));
    expect(live.length).toBeGreaterThan(0);
  }
}

describe('the MANIFEST reader', () => {
  it('lists exactly the table files LevelDB keeps, over rounds of writes, compactions and reopens (LevelDB\'s own list as the oracle)', async () => {
    for (const seed of [1, 2, 3]) await churn(join(dir, `churn-${seed}`), seed, 4, 16 * 1024);
  }, 120_000);

  it('reads a MANIFEST whose records cross its 32 KiB blocks (edits that carry long keys)', async () => {
    const path = join(dir, 'long-keys');
    const rnd = prng(11);
    // Every added table's edit holds its smallest and largest key, here 3 000 bytes each.
    const db = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer', writeBufferSize: 64 * 1024 });
    await db.open();
    for (let b = 0; b < 150; b++) {
      const batch = db.batch();
      for (let i = 0; i < 25; i++) {
        const key = Buffer.alloc(3000, b);
        key.writeUInt32BE(Math.floor(rnd() * 2 ** 32), 0);
        batch.put(key, Buffer.alloc(8, i));
      }
      await batch.write();
    }
    await classic(db).compactRange(Buffer.alloc(0), Buffer.alloc(3001, 0xff));
    const listed = openTables(classic(db).getProperty('leveldb.sstables'));
    await db.close();
    expect(readFileSync(currentManifest(path)).length).toBeGreaterThan(3 * 32 * 1024);
    expect(sorted(liveTables(path))).toEqual(sorted(listed));
    expect(sorted(liveTables(path))).toEqual(onDisk(path));
  }, 120_000);

  it('ignores a record cut short at the end, and gives up (null) on a record that fails its checksum or a missing MANIFEST', async () => {
    const path = join(dir, 'cut');
    await churn(path, 5, 2, 16 * 1024);
    const manifest = currentManifest(path);
    const whole = readFileSync(manifest);
    const live = liveTables(path);
    writeFileSync(manifest, Buffer.concat([whole, Buffer.from([0x11, 0x22, 0x33, 0x44, 0xff, 0x00, 0x01, 0x07])]));
    expect(liveTables(path)).toEqual(live);
    const flipped = Buffer.from(whole);
    flipped[7 + 10]! ^= 0x04; // inside the first record's data (the comparator's name)
    writeFileSync(manifest, flipped);
    expect(liveTables(path)).toBeNull();
    writeFileSync(manifest, whole);
    rmSync(manifest);
    expect(liveTables(path)).toBeNull();
  }, 60_000);
});

describe('the open tells a leftover from the index', () => {
  it('a half-written table the MANIFEST does not list is no damage, whatever its number; a listed one that is damaged is', async () => {
    const path = join(dir, 'index');
    const regtest = BUILTIN_NETWORKS.regtest!;
    const db = await openStore(path, regtest, { create: true });
    for (let i = 0; i < 2000; i++) await db.put(Buffer.from(`row-${i}`), Buffer.alloc(100, i));
    await db.close();
    // A reopen turns the write-ahead log into a table.
    await (await openStore(path, regtest, { create: false })).close();
    const live = liveTables(path)!;
    expect(live.size).toBeGreaterThan(0);
    const bytes = readFileSync(join(path, tableFiles(path).find((f) => live.has(tableNumber(f)))!));
    // Leftovers under the next numbers LevelDB will hand out, and far above them.
    const top = Math.max(...live);
    for (const n of [top + 1, top + 2, top + 3, 999_999]) {
      writeFileSync(join(path, `${String(n).padStart(6, '0')}.ldb`), bytes.subarray(0, bytes.length >> 1));
    }
    const reopened = await openStore(path, regtest, { create: false });
    expect((await reopened.get(Buffer.from('row-1999')))?.equals(Buffer.alloc(100, 1999))).toBe(true);
    await reopened.close();
    expect(readdirSync(path)).not.toContain('999999.ldb');
    const table = join(path, tableFiles(path).find((f) => liveTables(path)!.has(tableNumber(f)))!);
    const damagedBytes = Buffer.from(readFileSync(table));
    damagedBytes[damagedBytes.length >> 2]! ^= 0x20;
    writeFileSync(table, damagedBytes);
    await expect(openStore(path, regtest, { create: false })).rejects.toThrow(/is damaged: \d+\.ldb: .*--reset/);
  }, 60_000);
});
