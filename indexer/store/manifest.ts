import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32c, unmask, varint } from './tablecheck.js';

/*
 * Which table files belong to a LevelDB database. CURRENT names the
 * MANIFEST; the MANIFEST is a log (LevelDB's doc/log_format.md: 32 KiB
 * blocks of records, each with a masked CRC32C, a length and a fragment
 * type) of version edits (db/version_edit.cc: tagged fields), each adding
 * and removing table files by number. A table is listed only once it is
 * wholly written and synced, so a file the MANIFEST does not list is
 * leftover work of a process that stopped (LevelDB deletes it at the next
 * open, and may reuse its number at once for a new table it is writing).
 */

const BLOCK = 32 * 1024;
const HEADER = 7;
const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;

/** The records of a LevelDB log file, or null if one fails its checksum or the fragments do not fit together. */
function logRecords(file: Buffer): Buffer[] | null {
  const records: Buffer[] = [];
  let parts: Buffer[] | null = null;
  for (let block = 0; block < file.length; block += BLOCK) {
    const end = Math.min(block + BLOCK, file.length);
    let o = block;
    while (o + HEADER <= end) {
      const length = file.readUInt16LE(o + 4);
      const type = file[o + 6]!;
      if (type === 0 && length === 0) break; // zero padding, as a preallocated file ends
      // A record cut short by the end of the file was being appended when
      // its writer stopped; LevelDB ignores it too.
      if (o + HEADER + length > end) return end === file.length ? records : null;
      if (unmask(file.readUInt32LE(o)) !== crc32c(file, o + 6, o + HEADER + length)) return null;
      const data = file.subarray(o + HEADER, o + HEADER + length);
      o += HEADER + length;
      if (type === FULL && parts === null) records.push(data);
      else if (type === FIRST && parts === null) parts = [data];
      else if (type === MIDDLE && parts !== null) parts.push(data);
      else if (type === LAST && parts !== null) {
        records.push(Buffer.concat([...parts, data]));
        parts = null;
      } else return null;
    }
  }
  return records;
}

/** Applies one version edit to `live`; false if it holds a field this reader does not know. */
function applyEdit(edit: Buffer, live: Set<number>): boolean {
  const at = { o: 0 };
  const end = edit.length;
  const skipSlice = (): void => {
    const length = varint(edit, at, end); // read before at.o is: the read moves it
    at.o += length;
  };
  const removed: number[] = [];
  const added: number[] = [];
  while (at.o < end) {
    const tag = varint(edit, at, end);
    if (tag === 1) skipSlice(); // comparator name
    else if (tag === 2 || tag === 3 || tag === 4 || tag === 9) varint(edit, at, end); // log, next file, sequence, previous log
    else if (tag === 5) { // compaction pointer: level, key
      varint(edit, at, end);
      skipSlice();
    } else if (tag === 6) { // deleted file: level, number
      varint(edit, at, end);
      removed.push(varint(edit, at, end));
    } else if (tag === 7) { // new file: level, number, size, smallest key, largest key
      varint(edit, at, end);
      added.push(varint(edit, at, end));
      varint(edit, at, end);
      skipSlice();
      skipSlice();
    } else return false;
    if (at.o > end) return false;
  }
  // Removals first, as LevelDB applies them: a file moved down a level is
  // removed from one level and added to the next in the same edit.
  for (const n of removed) live.delete(n);
  for (const n of added) live.add(n);
  return true;
}

/**
 * The numbers of the table files the database at `dir` lists as live, or
 * null if its CURRENT or MANIFEST cannot be read or parsed (LevelDB's own
 * open then decides what is wrong).
 */
export function liveTables(dir: string): Set<number> | null {
  let manifest: Buffer;
  try {
    const current = readFileSync(join(dir, 'CURRENT'), 'utf8');
    if (!/^MANIFEST-\d+\n$/.test(current)) return null;
    manifest = readFileSync(join(dir, current.trim()));
  } catch {
    return null;
  }
  const records = logRecords(manifest);
  if (records === null) return null;
  const live = new Set<number>();
  try {
    for (const edit of records) if (!applyEdit(edit, live)) return null;
  } catch {
    return null; // a varint ran past its record
  }
  return live;
}

/** The number in a table file's name (`000053.ldb` → 53). */
export function tableNumber(file: string): number {
  return Number.parseInt(file, 10);
}

/**
 * The table numbers an open database reports as live
 * (`leveldb.sstables`: a line ` <number>:<size>[<smallest> .. <largest>]`
 * per file, keys escaped, under a header per level).
 */
export function openTables(sstables: string): Set<number> {
  return new Set([...sstables.matchAll(/^ (\d+):\d+\[/gm)].map((m) => Number(m[1])));
}
