import { closeSync, constants, fstatSync, openSync, type Stats } from 'node:fs';
import { open, stat } from 'node:fs/promises';

/**
 * A blocks directory that cannot be read as bitcoind wrote it. The message
 * names the file (and the byte offset, when there is one) so the user can
 * inspect or replace it; the recount cannot continue because any block
 * could be missing.
 */
export class BlkFileError extends Error {
  readonly file: string;
  /** Byte offset in the file, or null when the whole file is at fault. */
  readonly offset: number | null;
  /** The system error code (ENOENT, EACCES…) when the file could not be read at all. */
  readonly code: string | null;

  constructor(file: string, offset: number | null, what: string, code: string | null = null) {
    super(offset === null ? `${file}: ${what}` : `${file} at offset ${offset}: ${what}`);
    this.name = 'BlkFileError';
    this.file = file;
    this.offset = offset;
    this.code = code;
  }
}

/**
 * Bigger than any blk file a node writes (bitcoind starts a new one before
 * 128 MiB). A file past it is not a blk file, and since a file is read whole,
 * reading it could exhaust memory.
 */
export const MAX_BLK_FILE_BYTES = 1024 * 1024 * 1024;

/**
 * O_NONBLOCK: opening a named pipe for reading would otherwise wait, in a
 * thread no signal reaches, until something writes to it. Regular files
 * ignore the flag.
 */
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Refuses anything but a regular file of at most `maxBytes` (a symlink counts as what it points to). */
function checkRegular(path: string, st: Stats, maxBytes: number): void {
  if (!st.isFile()) {
    throw new BlkFileError(path, null, `is ${kindOf(st)}, not a regular file; a blocks directory holds only files bitcoind wrote: move it away`);
  }
  if (st.size > maxBytes) {
    throw new BlkFileError(path, null, `is ${st.size} bytes, more than any file bitcoind writes there (at most ${maxBytes}): move it away`);
  }
}

function cannotRead(path: string, err: unknown): BlkFileError {
  if (err instanceof BlkFileError) return err;
  const code = (err as NodeJS.ErrnoException).code;
  return new BlkFileError(path, null, `cannot read (${code ?? String(err)})`, code ?? null);
}

/** The size of a file of a blocks directory, refusing pipes, devices, directories and oversized files. */
export async function regularFileSize(path: string, maxBytes = MAX_BLK_FILE_BYTES): Promise<number> {
  let st: Stats;
  try {
    st = await stat(path);
  } catch (err) {
    throw cannotRead(path, err);
  }
  checkRegular(path, st, maxBytes);
  return st.size;
}

/**
 * Reads at most `size` bytes of a regular file from its start, into `into`
 * when it is big enough (else into a new buffer), and returns the view of
 * what was read. The file is checked again after opening, since it may have
 * been swapped since it was listed. Reads are asynchronous and bounded, so a
 * signal handler runs during them and memory never follows a device's
 * endless stream.
 */
export async function readRegularFile(path: string, size: number, into?: Buffer, maxBytes = MAX_BLK_FILE_BYTES): Promise<Buffer> {
  let fh;
  try {
    fh = await open(path, OPEN_FLAGS);
    const st = await fh.stat();
    checkRegular(path, st, maxBytes);
    const want = Math.min(size, st.size);
    const buf = into !== undefined && into.length >= want ? into.subarray(0, want) : Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const { bytesRead } = await fh.read(buf, got, want - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return buf.subarray(0, got);
  } catch (err) {
    throw cannotRead(path, err);
  } finally {
    await fh?.close();
  }
}

/** Opens a regular file for synchronous positional reads; the caller closes the descriptor. */
export function openRegularFileSync(path: string, maxBytes = MAX_BLK_FILE_BYTES): number {
  let fd = -1;
  try {
    fd = openSync(path, OPEN_FLAGS);
    checkRegular(path, fstatSync(fd), maxBytes);
    return fd;
  } catch (err) {
    if (fd >= 0) closeSync(fd);
    throw cannotRead(path, err);
  }
}
