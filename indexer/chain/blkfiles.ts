import { closeSync, readSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BlkFileError, openRegularFileSync, readRegularFile, regularFileSize } from './blkread.js';
import { BlockParseError, forEachTxid, scanHeader, type ScannedHeader } from './scanner.js';

export { BlkFileError } from './blkread.js';

/** One block record, de-obfuscated and checked to parse. */
export interface BlkRecord {
  /** Path of the blk file. */
  file: string;
  /** Absolute file offset of the block data (after magic and size). */
  offset: number;
  /**
   * The block bytes: a view into the whole de-obfuscated file, so keeping it
   * keeps the file (up to 128 MiB) alive. Copy what must outlive the record.
   */
  bytes: Buffer;
  header: ScannedHeader;
  /** Every txid, internal order, computed while checking that the block parses. */
  txids: Buffer[];
}

export interface ReadOptions {
  /** Called after each record with bytes consumed so far and the total of all blk files. */
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
}

const XOR_KEY_SIZE = 8;
/** Uint32Array uses the host's byte order; the word path assumes little-endian. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `blk00000.dat`, `blk00001.dat`, … in numeric order (Core pads to 5 digits, more past 99999). */
export async function listBlkFiles(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new BlkFileError(dir, 0, `cannot list the blocks directory (${code}); pass bitcoind's blocks/ directory`);
  }
  return names
    .map((name) => /^blk(\d+)\.dat$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => join(dir, m[0]));
}

/**
 * The obfuscation key from `xor.dat` (Core 28+), or null when the files are
 * stored in the clear: no xor.dat and an all-zero key mean the same.
 */
export async function readXorKey(dir: string): Promise<Buffer | null> {
  const path = join(dir, 'xor.dat');
  let size: number;
  try {
    size = await regularFileSize(path, Number.MAX_SAFE_INTEGER);
  } catch (err) {
    if (err instanceof BlkFileError && err.code === 'ENOENT') return null;
    throw err;
  }
  if (size !== XOR_KEY_SIZE) throw new BlkFileError(path, 0, `obfuscation key must be ${XOR_KEY_SIZE} bytes, got ${size}`);
  const key = await readRegularFile(path, XOR_KEY_SIZE);
  if (key.length !== XOR_KEY_SIZE) throw new BlkFileError(path, 0, `obfuscation key must be ${XOR_KEY_SIZE} bytes, got ${key.length}`);
  return key.every((b) => b === 0) ? null : key;
}

/**
 * Undoes Core's obfuscation in place: the byte at absolute file offset p was
 * XORed with key[p % 8]. `fileOffset` is where `buf` starts in the file. Works
 * a 32-bit word at a time with the key rotated to the buffer's phase, because
 * this touches every byte of the chain.
 */
export function deobfuscate(buf: Buffer, fileOffset: number, key: Buffer | null): void {
  if (key === null) return;
  const n = buf.length;
  let i = 0;
  for (; i < n && (buf.byteOffset + i) % 4 !== 0; i++) buf[i] ^= key[(fileOffset + i) % 8];
  const words = (n - i) >>> 3;
  if (words > 0 && LITTLE_ENDIAN) {
    const phase = (fileOffset + i) % 8;
    const k = (j: number): number => key[(phase + j) % 8];
    const k0 = (k(0) | (k(1) << 8) | (k(2) << 16) | (k(3) << 24)) >>> 0;
    const k1 = (k(4) | (k(5) << 8) | (k(6) << 16) | (k(7) << 24)) >>> 0;
    const u32 = new Uint32Array(buf.buffer, buf.byteOffset + i, words * 2);
    for (let w = 0; w < u32.length; w += 2) {
      u32[w] ^= k0;
      u32[w + 1] ^= k1;
    }
    i += words * 8;
  }
  for (; i < n; i++) buf[i] ^= key[(fileOffset + i) % 8];
}

/**
 * Core preallocates blk files with zeros, which read as the key pattern once
 * de-obfuscated. Returns the offset of the first byte in [from, to) that is
 * not such padding, or -1. Anything else between records means a record was
 * cut short (and the next one's bytes were taken as its tail) or corruption.
 */
function firstNonPadding(buf: Buffer, from: number, to: number, key: Buffer | null): number {
  for (let i = from; i < to; i++) if (buf[i] !== (key ? key[i % 8] : 0)) return i;
  return -1;
}

/** Turns the scanner's complaint into the user-facing reason; anything else is a bug and propagates. */
export function parseFailure(err: unknown): string {
  if (err instanceof BlockParseError) return `block does not parse: ${err.message} of the block`;
  throw err;
}

/**
 * Every block record of a bitcoind blocks directory, in file order (which is
 * not height order). One whole file is read at a time. Between records only
 * Core's preallocated zero padding (the key pattern once de-obfuscated) is
 * skipped, up to the next magic or EOF; any other byte is an error.
 * A record that runs past the end of its file or does not parse throws
 * BlkFileError: the data is corrupt or was copied while bitcoind was writing.
 */
export async function* readBlockRecords(dir: string, magic: string | Buffer, opts: ReadOptions = {}): AsyncGenerator<BlkRecord> {
  const magicBytes = magicOf(magic);
  const files = await listBlkFiles(dir);
  const key = await readXorKey(dir);
  const sizes = await Promise.all(files.map((f) => regularFileSize(f)));
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  for (const [fileIndex, file] of files.entries()) {
    const buf = await readRegularFile(file, sizes[fileIndex]!);
    deobfuscate(buf, 0, key);
    const { ranges, error } = splitRecords(buf, file, magicBytes, key);
    for (let r = 0; r < ranges.length; r += 2) {
      const offset = ranges[r]!;
      const bytes = buf.subarray(offset, offset + ranges[r + 1]!);
      const txids: Buffer[] = [];
      let header: ScannedHeader;
      try {
        header = scanHeader(bytes);
        forEachTxid(bytes, (txid) => txids.push(txid));
      } catch (err) {
        throw new BlkFileError(file, offset, parseFailure(err));
      }
      opts.onProgress?.(done + offset + bytes.length, total);
      yield { file, offset, bytes, header, txids };
    }
    if (error !== null) throw error;
    done += sizes[fileIndex];
    opts.onProgress?.(done, total);
  }
}

/** A network magic as 4 bytes, from hex or bytes. */
export function magicOf(magic: string | Buffer): Buffer {
  const bytes = typeof magic === 'string' ? Buffer.from(magic, 'hex') : magic;
  if (bytes.length !== 4) throw new RangeError(`blk magic must be 4 bytes, got ${bytes.length}`);
  return bytes;
}

/**
 * Finds the block records of one de-obfuscated blk file without parsing
 * them: [offset, size] pairs of the block data, in file order. Between
 * records only Core's preallocated zero padding (the key pattern once
 * de-obfuscated) may appear, up to the next magic or EOF; any other byte, or
 * a record running past the end of the file, ends the list with `error`.
 * The caller reports that error only after the records before it parse, so
 * the first problem in file order (often its cause) is the one named.
 *
 * In the `last` file a node may be writing its newest block right now: a
 * record cut off by the end of the file, with no other record inside it, or
 * a partial record header followed only by padding, is that block half
 * written. It is not an error: `incomplete` says where it starts.
 */
export function splitRecords(
  buf: Buffer, file: string, magicBytes: Buffer, key: Buffer | null, last = false,
): { ranges: number[]; error: BlkFileError | null; incomplete: number | null } {
  const ranges: number[] = [];
  try {
    return { ranges, error: null, incomplete: findRecords(buf, file, magicBytes, key, ranges, last) };
  } catch (err) {
    if (err instanceof BlkFileError) return { ranges, error: err, incomplete: null };
    throw err;
  }
}

/** A record header is the 4-byte magic and the 4-byte size. */
const RECORD_HEADER = 8;

function findRecords(buf: Buffer, file: string, magicBytes: Buffer, key: Buffer | null, ranges: number[], last: boolean): number | null {
  let pos = 0;
  for (;;) {
    if (buf.length - pos < 4) return null;
    if (buf.compare(magicBytes, 0, 4, pos, pos + 4) !== 0) {
      const next = buf.indexOf(magicBytes, pos + 1);
      // A file without a single record of this magic belongs to another network (or is
      // obfuscated without its key): chain selection then explains the missing genesis.
      if (pos === 0 && next < 0) return null;
      const end = next < 0 ? buf.length : next;
      const junk = firstNonPadding(buf, pos, end, key);
      if (junk >= 0) {
        if (last && next < 0 && pos > 0 && firstNonPadding(buf, pos + RECORD_HEADER, end, key) < 0) return pos;
        const hint = pos === 0 && key === null ? XOR_HINT : 'the record before it is cut short, or the file is corrupt';
        throw new BlkFileError(file, pos, `expected a block record or zero padding here: ${hint}`);
      }
      if (next < 0) return null;
      pos = next;
    }
    if (buf.length - pos < RECORD_HEADER) {
      if (last) return pos;
      throw new BlkFileError(file, pos, 'record header runs past the end of the file');
    }
    const size = buf.readUInt32LE(pos + 4);
    const offset = pos + RECORD_HEADER;
    if (size > buf.length - offset) {
      if (last && buf.indexOf(magicBytes, offset) < 0) return pos;
      throw new BlkFileError(file, offset, `record of ${size} bytes runs past the end of the file (${buf.length - offset} bytes left)`);
    }
    ranges.push(offset, size);
    pos = offset + size;
  }
}

/** What a file that does not start with a record may mean when there is no key. */
export const XOR_HINT = 'if the directory comes from Bitcoin Core 28 or later, its xor.dat (the obfuscation key) may be missing';

/** The warning for a newest block that a node is still writing (see splitRecords). */
export function incompleteWarning(file: string, offset: number): string {
  return `${file} ends in an incomplete block record at offset ${offset} (is bitcoind still writing it?): it is left out, and the recount ends at the last complete block`;
}

/** Where a block lives on disk, as the chain pass records it. */
export interface BlockLocation {
  file: string;
  offset: number;
  size: number;
}

/**
 * Re-reads single blocks by location, keeping the last file open, so a later
 * pass can walk the chain in height order without holding every block in
 * memory. Reads are synchronous: one positional read per block avoids a
 * promise per block on the recount's hot path.
 */
export class BlockReader {
  private fd = -1;
  private openFile = '';
  private readonly key: Buffer | null;

  constructor(key: Buffer | null) {
    this.key = key;
  }

  /** Opens a reader for a blocks directory, picking up its xor.dat. */
  static async open(dir: string): Promise<BlockReader> {
    return new BlockReader(await readXorKey(dir));
  }

  /** A fresh, de-obfuscated copy of the block's bytes. */
  read(loc: BlockLocation): Buffer {
    return this.readInto(loc, Buffer.allocUnsafe(loc.size));
  }

  /** The block's bytes, de-obfuscated, into `buf` (exactly `loc.size` long), which it returns. */
  readInto(loc: BlockLocation, buf: Buffer): Buffer {
    if (loc.file !== this.openFile) {
      this.close();
      this.fd = openRegularFileSync(loc.file);
      this.openFile = loc.file;
    }
    let got = 0;
    while (got < loc.size) {
      const n = readSync(this.fd, buf, got, loc.size - got, loc.offset + got);
      if (n === 0) throw new BlkFileError(loc.file, loc.offset, `file ends after ${got} of ${loc.size} block bytes; was it changed since the chain was loaded?`);
      got += n;
    }
    deobfuscate(buf, loc.offset, this.key);
    return buf;
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    this.openFile = '';
  }
}
