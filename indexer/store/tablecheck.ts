import { closeSync, openSync, readdirSync, readFileSync, readSync, renameSync, fstatSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/*
 * LevelDB keeps a CRC32C over every block of its table files but, as opened
 * through `level`, checks it only when asked (ReadOptions::verify_checksums),
 * and classic-level has no way to ask. Without it a flipped bit in a
 * compressed block that still decompresses, or in an uncompressed one, reads
 * back as a different value and nothing notices. So the tables are checked
 * here, block by block, before the database is opened (and again, all of
 * them, by `nodereg check`). The file format is LevelDB's documented table
 * format (doc/table_format.md): blocks, each followed by a type byte and a
 * masked CRC32C, an index block naming them, and a 48-byte footer.
 */

const CRC_TABLE = (() => {
  const t = new Int32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) t[s * 256 + i] = (t[(s - 1) * 256 + i]! >>> 8) ^ t[t[(s - 1) * 256 + i]! & 0xff]!;
  }
  return t;
})();

/** CRC32C (Castagnoli) of `b[from, to)`, slicing by 8. */
export function crc32c(b: Uint8Array, from = 0, to = b.length, seed = 0): number {
  const t = CRC_TABLE;
  let c = ~seed;
  let i = from;
  for (; i + 8 <= to; i += 8) {
    c ^= b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
    c = t[7 * 256 + (c & 0xff)]! ^ t[6 * 256 + ((c >>> 8) & 0xff)]! ^ t[5 * 256 + ((c >>> 16) & 0xff)]! ^ t[4 * 256 + (c >>> 24)]!
      ^ t[3 * 256 + b[i + 4]!]! ^ t[2 * 256 + b[i + 5]!]! ^ t[256 + b[i + 6]!]! ^ t[b[i + 7]!]!;
  }
  for (; i < to; i++) c = t[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** LevelDB stores CRCs masked, so that a CRC of data that embeds CRCs is not trivially related to them. */
export function unmask(m: number): number {
  const rot = (m - 0xa282ead8) >>> 0;
  return ((rot >>> 17) | (rot << 15)) >>> 0;
}

class Bad extends Error {}

/** A LevelDB varint (up to 64 bits, but only safe integers are accepted) at `at.o`, moving `at.o` past it. */
export function varint(b: Uint8Array, at: { o: number }, end: number): number {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (at.o >= end) throw new Bad('a varint runs past its block');
    const x = b[at.o++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80) {
      if (!Number.isSafeInteger(v)) break;
      return v;
    }
    mul *= 128;
  }
  throw new Bad('an oversized varint');
}

/** Raw snappy, as LevelDB compresses blocks (type 1). */
function unsnappy(src: Uint8Array): Buffer {
  const at = { o: 0 };
  const n = varint(src, at, src.length);
  if (n > 64 * 1024 * 1024) throw new Bad('a compressed block claims an implausible size');
  const out = Buffer.allocUnsafe(n);
  let o = 0;
  let i = at.o;
  while (i < src.length) {
    const tag = src[i++]!;
    let len: number;
    let off: number;
    if ((tag & 3) === 0) {
      len = (tag >>> 2) + 1;
      if (len > 60) {
        const k = len - 60;
        if (i + k > src.length) throw new Bad('a snappy literal length is cut off');
        len = 0;
        for (let j = 0; j < k; j++) len |= src[i + j]! << (8 * j);
        len = (len >>> 0) + 1;
        i += k;
      }
      if (i + len > src.length || o + len > n) throw new Bad('a snappy literal runs past its block');
      out.set(src.subarray(i, i + len), o);
      o += len;
      i += len;
      continue;
    }
    if ((tag & 3) === 1) {
      if (i >= src.length) throw new Bad('a snappy copy is cut off');
      len = ((tag >>> 2) & 7) + 4;
      off = ((tag >>> 5) << 8) | src[i++]!;
    } else if ((tag & 3) === 2) {
      if (i + 2 > src.length) throw new Bad('a snappy copy is cut off');
      len = (tag >>> 2) + 1;
      off = src[i]! | (src[i + 1]! << 8);
      i += 2;
    } else {
      if (i + 4 > src.length) throw new Bad('a snappy copy is cut off');
      len = (tag >>> 2) + 1;
      off = (src[i]! | (src[i + 1]! << 8) | (src[i + 2]! << 16) | (src[i + 3]! << 24)) >>> 0;
      i += 4;
    }
    if (off === 0 || off > o || o + len > n) throw new Bad('a snappy copy points outside its block');
    for (let j = 0; j < len; j++, o++) out[o] = out[o - off]!;
  }
  if (o !== n) throw new Bad('a compressed block is shorter than it claims');
  return out;
}

interface Handle { offset: number; size: number }

/** Checks one block's trailer CRC and returns its (decompressed) contents. */
function readBlock(file: Buffer, h: Handle, what: string): Buffer {
  const end = h.offset + h.size;
  if (end + 5 > file.length) throw new Bad(`the ${what} at offset ${h.offset} runs past the end of the file`);
  const stored = unmask(file.readUInt32LE(end + 1));
  if (crc32c(file, h.offset, end + 1) !== stored) throw new Bad(`checksum mismatch in the ${what} at offset ${h.offset}`);
  const type = file[end]!;
  if (type === 0) return file.subarray(h.offset, end);
  if (type === 1) return unsnappy(file.subarray(h.offset, end));
  throw new Bad(`unknown compression type ${type} in the ${what} at offset ${h.offset}`);
}

/** The values (block handles) of every entry of an index or metaindex block. */
function handlesIn(block: Buffer, what: string): Handle[] {
  if (block.length < 4) throw new Bad(`the ${what} is too short`);
  const restarts = block.readUInt32LE(block.length - 4);
  const limit = block.length - 4 - 4 * restarts;
  if (restarts < 1 || limit < 0) throw new Bad(`the ${what} has a bad restart array`);
  const out: Handle[] = [];
  const at = { o: 0 };
  while (at.o < limit) {
    varint(block, at, limit); // shared key bytes
    const unshared = varint(block, at, limit);
    const valueLen = varint(block, at, limit);
    at.o += unshared;
    const valueEnd = at.o + valueLen;
    if (valueEnd > limit) throw new Bad(`an entry of the ${what} runs past its block`);
    out.push({ offset: varint(block, at, valueEnd), size: varint(block, at, valueEnd) });
    at.o = valueEnd;
  }
  return out;
}

const FOOTER = 48;
const MAGIC_LO = 0x8b80fb57;
const MAGIC_HI = 0xdb477524;

/** Why one table file's bytes are not what LevelDB wrote, or null when every block checks out. */
export function checkTable(file: Buffer): string | null {
  try {
    if (file.length < FOOTER) throw new Bad('the file is shorter than a table footer');
    const f = file.length - FOOTER;
    if (file.readUInt32LE(f + 40) !== MAGIC_LO || file.readUInt32LE(f + 44) !== MAGIC_HI) throw new Bad('the table footer\'s magic number is wrong');
    const at = { o: f };
    const meta = { offset: varint(file, at, f + 40), size: varint(file, at, f + 40) };
    const index = { offset: varint(file, at, f + 40), size: varint(file, at, f + 40) };
    for (const h of handlesIn(readBlock(file, index, 'index block'), 'index block')) readBlock(file, h, 'data block');
    for (const h of handlesIn(readBlock(file, meta, 'metaindex block'), 'metaindex block')) readBlock(file, h, 'filter block');
    return null;
  } catch (err) {
    if (err instanceof Bad) return err.message;
    throw err;
  }
}

function readWhole(path: string): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null; // compacted away meanwhile
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = readSync(fd, buf, done, size - done, done);
      if (n === 0) break;
      done += n;
    }
    return buf.subarray(0, done);
  } finally {
    closeSync(fd);
  }
}

export interface TableFault {
  readonly file: string;
  readonly reason: string;
}

/** The table files of a LevelDB directory, in name order. */
export function tableFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => /^\d+\.(ldb|sst)$/.test(n)).sort();
}

/**
 * Table files that passed, by name, with the size, mtime and inode they had
 * then. LevelDB never rewrites a table file, so one that still matches is
 * not read again: a command on a large index then costs a stat per file, not
 * a read of the whole index. `nodereg check` ignores this record.
 */
export const CHECKED_FILE = 'nodereg-tables-checked.json';

const stamp = (path: string): string | null => {
  try {
    const s = statSync(path);
    return `${s.size}:${s.mtimeMs}:${s.ino}`;
  } catch {
    return null;
  }
};

/**
 * Checks every block checksum of the index's table files; every fault, in
 * name order. With `all` false, files already checked and unchanged since
 * are skipped. A fault may be a table that a killed LevelDB left half
 * written and never listed in its MANIFEST: the caller tells those apart.
 */
export function checkTables(dir: string, all = true): TableFault[] {
  const faults: TableFault[] = [];
  let known: Record<string, string> = {};
  if (!all) {
    try {
      known = JSON.parse(readFileSync(join(dir, CHECKED_FILE), 'utf8')) as Record<string, string>;
    } catch {
      known = {};
    }
  }
  const passed: Record<string, string> = {};
  for (const name of tableFiles(dir)) {
    const path = join(dir, name);
    const before = stamp(path);
    if (before === null) continue;
    if (known[name] === before) {
      passed[name] = before;
      continue;
    }
    const bytes = readWhole(path);
    if (bytes === null) continue;
    const reason = checkTable(bytes);
    if (reason !== null) faults.push({ file: name, reason });
    else passed[name] = before;
  }
  try {
    const tmp = join(dir, `${CHECKED_FILE}.tmp`);
    writeFileSync(tmp, JSON.stringify(passed));
    renameSync(tmp, join(dir, CHECKED_FILE));
  } catch {
    // Only a cache: a read-only directory checks every file each time.
  }
  return faults;
}
