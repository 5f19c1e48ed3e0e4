import { closeSync, existsSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';

/*
 * The coins a throwaway recount spills, in a file of its own instead of a
 * temporary LevelDB: an open-addressing hash table of 4 KiB pages keyed by a
 * hash of the outpoint (`outpointHash`, whose high bits name a coin's home
 * page, as they name its slot in the coin table that spills into the file).
 * A lookup reads its home page with one pread (and the
 * next page only when the home page once overflowed); a spill merges its
 * writes into the file a run of pages at a time. Reads go through the page
 * cache, never a memory map, so the coins cost the process no RSS.
 *
 * The file is unlinked as soon as it is opened: it is gone when the process
 * closes it or dies, however it dies.
 *
 * Page: u16 end of the entries, u8 flags (OVERFLOW: an entry whose probe
 * passed this page lives further on), u8 0, then entries: the 36-byte
 * outpoint (txid, u32be vout), u16 value length, u32 check (`entrySum` of the
 * rest of the entry), the value. A value longer than INLINE goes to a side
 * file of blobs (u32 crc32, then the bytes) and the entry holds BLOB as its
 * length and a u32 length and u48 offset as its value. An all-zero page
 * (never written) is empty. Every entry a lookup returns is checked, and every
 * length a walk meets: a damaged file is an error, never another coin.
 */
export const PAGE = 4096;
const HEAD = 4;
const KEY = 36;
/** Key, u16 length, u32 check. */
const ENTRY = KEY + 6;
const OVERFLOW = 1;
const BLOB = 0xffff;
const INLINE = 512;
const BLOB_REF = 10;
/** Pages merged per read and write of a spill (256 KiB). */
const RUN = 64;
/**
 * Grow when the entries would fill more than this share of the pages. Every
 * spill reads and writes about the whole file (its puts land on most pages),
 * so the file's size is the spill's cost: at 0.8 a page of ~76-byte coins
 * holds 43 on average before a grow, against 54 at most, and few overflow.
 */
const LOAD = 0.8;

export class CoinFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CoinFileError';
  }
}

/** What a spill writes: keys to delete (all present), then keys to put (new or replacing). */
export interface CoinWrites {
  readonly dels: number;
  readonly puts: number;
  /** Key `i` to delete: 36 bytes at `buf[at..]`. */
  delKey(i: number): { buf: Uint8Array; at: number };
  putKey(i: number): { buf: Uint8Array; at: number };
  /** Length of put `i`'s value, without building it. */
  putLength(i: number): number;
  /** Put `i`'s value (may be a reused buffer, read before the next call). */
  putValue(i: number): Uint8Array;
  /**
   * True when the writer knows that no put's key is in the file, once the
   * deletes are done: each put is then added without first looking for an
   * entry to replace. Absent or false, every put replaces what its key holds.
   */
  readonly fresh?: boolean;
  /**
   * With `fresh`: true for a put whose key may still be in the file after
   * all, which then replaces what its key holds. A false "may" costs only
   * the look; a false "may not" would leave the key in the file twice.
   */
  mayRepeat?(i: number): boolean;
  /**
   * Writes put `i`'s key at `out[keyAt..]` and its value (`putLength(i)`
   * bytes) at `out[valueAt..]`: a fresh put goes straight into its page this
   * way, with no key or value buffer between. Optional (`putKey` and
   * `putValue` otherwise), and never asked for a value longer than a page holds inline.
   */
  putInto?(i: number, out: Buffer, keyAt: number, valueAt: number): void;
}

const u32le = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
const u32be = (b: Uint8Array, p: number): number => ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!) >>> 0;

function entrySize(valueLength: number): number {
  return ENTRY + (valueLength > INLINE ? BLOB_REF : valueLength);
}

/** A 32-bit check of bytes [s, e) mixed into `h`, a word at a time. */
function mix(h: number, b: Uint8Array, s: number, e: number): number {
  let p = s;
  for (; p + 4 <= e; p += 4) {
    h = Math.imul(h ^ u32le(b, p), 0x5bd1e995);
    h ^= h >>> 15;
  }
  for (; p < e; p++) h = Math.imul(h ^ b[p]!, 0x01000193);
  return h;
}

/** The check of the entry at `e` whose stored value is `n` bytes: its key, length and value. */
function entrySum(b: Uint8Array, e: number, n: number): number {
  const h = mix(mix(0x2545f491, b, e, e + KEY + 2), b, e + ENTRY, e + ENTRY + n);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Bytes the entry at `e` takes, checked to end by `end`. */
function sizeAt(b: Buffer, e: number, end: number): number {
  const n = b.readUInt16LE(e + KEY);
  const size = ENTRY + (n === BLOB ? BLOB_REF : n);
  if (e + ENTRY > end || e + size > end) throw new CoinFileError('the coin file is corrupt: an entry runs past its page');
  return size;
}

/**
 * The process's seed of `outpointHash`: random, so that a chain cannot be
 * made to pile its coins onto a few pages, and the same for every table of a
 * process (a reader thread gets it from the owner, CTL_SEED).
 */
export const OUTPOINT_SEED = randomBytes(4).readUInt32LE(0);

/**
 * The 32-bit hash of an outpoint (txid words `w0`, `w1`, output `vout`) that
 * orders both this file and the in-memory coin table (memtables.ts
 * `CoinTable`): each puts a coin at the place its hash's high bits name (a
 * page here, a slot there). So the table's coins, read in slot order, come
 * in page order: a spill walks the table and the file both from start to
 * end, where a hash of its own would have it read the table at random.
 */
export function outpointHash(seed: number, w0: number, w1: number, vout: number): number {
  let h = Math.imul(seed ^ w0, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h ^ w1, 0xc2b2ae35);
  h ^= h >>> 16;
  h = Math.imul(h ^ vout, 0x9e3779b1);
  h ^= h >>> 15;
  return h >>> 0;
}

/** The page, in a file of `pages` (a power of two), of an outpoint with hash `h`: its high bits. */
function pageOf(h: number, pages: number): number {
  return pages === 1 ? 0 : h >>> (Math.clz32(pages) + 1);
}

/** The hash of outpoint `b[at..at+36)` (txid | u32be vout) under `seed`. */
function hashAt(seed: number, b: Uint8Array, at: number): number {
  return outpointHash(seed, u32le(b, at), u32le(b, at + 4), u32be(b, at + 32));
}

/** The home page, in a file of `pages` hashed with `seed`, of outpoint `b[at..at+36)`. */
function homeOf(seed: number, pages: number, b: Uint8Array, at: number): number {
  return pageOf(hashAt(seed, b, at), pages);
}

function readPageOf(fd: number, pages: number, p: number, into: Buffer): void {
  const n = readSync(fd, into, 0, PAGE, p * PAGE);
  if (n !== PAGE) throw new CoinFileError(`the coin file is truncated: page ${p} of ${pages} read ${n} of ${PAGE} bytes`);
}

/** Pages the last `probe` read. */
let probeReads = 0;

/**
 * Looks up outpoint `k[at..]` in the page file `fd` of `pages` pages hashed
 * with `seed`: its home page, and on past each page once overflowed. Leaves
 * the page holding it in `page` and returns the entry's offset there, or -1
 * when absent. The one lookup of both the owner (`CoinFile.get`) and the
 * reader thread (`preread`, coinreader.ts).
 */
export function probe(fd: number, pages: number, seed: number, k: Uint8Array, at: number, page: Buffer): number {
  let p = homeOf(seed, pages, k, at);
  probeReads = 0;
  for (let n = 0; n < pages; n++) {
    readPageOf(fd, pages, p, page);
    probeReads++;
    const e = CoinFile.find(page, 0, k, at);
    if (e >= 0) return e;
    if ((page[2]! & OVERFLOW) === 0) return -1;
    p = (p + 1) & (pages - 1);
  }
  return -1;
}

/** The inline value of the entry at `e` of `page`, or null when it lives in the blob file. */
export function inlineValue(page: Buffer, e: number): Buffer | null {
  const n = page.readUInt16LE(e + KEY);
  return n === BLOB ? null : page.subarray(e + ENTRY, e + ENTRY + n);
}

/*
 * Words shared with the reader thread (coinreader.ts). The file changes only
 * in `write` (a spill, and the grow it may start): around it the owner makes
 * EPOCH odd and makes it even again, two higher, once FD and PAGES name the
 * file as it now is. A reader looks at EPOCH before each lookup, reads only
 * while it is even, and stamps its answers with it; the owner takes an
 * answer only while EPOCH still has that value: the file is then byte for
 * byte what it was when the answer was read. Nothing else makes an answer
 * safe to take: a read that overlaps a change (or meets a descriptor a grow
 * closed) yields an answer stamped with an epoch that is gone. READERS counts
 * readers inside a lookup, so that a change may wait a moment for them to
 * leave (`lockOut`); the wait is short and bounded, never needed for safety.
 */
export const CTL_EPOCH = 0;
export const CTL_READERS = 1;
export const CTL_FD = 2;
export const CTL_PAGES = 3;
export const CTL_SEED = 4;
const CTL_WORDS = 5;

/** A reader's answer for key `i`: `index[2i]` its value's offset in `data`, `index[2i+1]` its length, or one of these. */
export const ANSWER_ABSENT = -1;
/** No answer (a blob, a damaged page, or the file was changing): the owner reads the key itself. */
export const ANSWER_NONE = -2;
/** Not answered (yet): the owner reads the key itself rather than wait. */
export const ANSWER_PENDING = -3;

/*
 * A request (`Ask`) lives in shared buffers the owner makes and reuses: the
 * keys, two words of answer a key, the answers' values, and a head of a few
 * words both sides move with atomics. The owner never waits for the reader:
 * it takes each answer that is there when its lookup comes (ANSWER_PENDING
 * otherwise: it reads that key itself) and tells the reader, through PASSED,
 * which keys it no longer needs; the reader skips those and goes on ahead.
 *
 * STATE moves FREE -> POSTED (owner: keys written, every answer PENDING)
 * -> READING (reader claims it) -> DONE (reader: no more answers) -> FREE
 * (owner: answers dropped). The owner drops a request it no longer needs
 * from any state: POSTED -> FREE (never claimed: the reader skips it),
 * READING -> STOPPED (the reader leaves at its next key and makes it FREE),
 * DONE -> FREE. The owner writes a request's buffers only while it is FREE,
 * and reads an answer only once its length word is no longer PENDING (the
 * reader writes the offset and value first): neither side reads what the
 * other is writing. A message naming a request is only a wake-up: the
 * reader serves the request only if it finds it POSTED, whatever it holds.
 */
const H_STATE = 0;
/** Keys asked. */
const H_N = 1;
/** The next key the reader looks at (kept for a reader stepped a few keys at a time, in tests). */
const H_NEXT = 2;
/** Keys before this one the owner has gone past: the reader skips them. */
const H_PASSED = 3;
/** The epoch every answer of the request was read in (-1 before the first). */
const H_EPOCH = 4;
/** Bytes of `data` used. */
const H_USED = 5;
/** 1 when the reader stopped for want of room in `data` (the owner gives it more next time). */
const H_FULL = 6;
const H_WORDS = 8;

const FREE = 0;
const POSTED = 1;
const READING = 2;
const STOPPED = 3;
const DONE = 4;

/** A request's shared buffers, as sent to the reader thread. */
export interface PrereadRequest {
  head: SharedArrayBuffer;
  /** Outpoints, 36 bytes each. */
  keys: SharedArrayBuffer;
  /** Two words a key: see ANSWER_ABSENT. */
  index: SharedArrayBuffer;
  /** The answers' values. */
  data: SharedArrayBuffer;
}

/** How `serve` runs: at most `keys` lookups (tests step a reader); `stall`, a test's slow reader (coinreader.ts). */
export interface ServeOptions {
  keys?: number;
  /** Resume a request left READING by an earlier `serve` that ran out of `keys`. */
  resume?: boolean;
  /** Called inside each lookup, before its read, with the request's head and the key's number. */
  stall?: (head: Int32Array, i: number) => void;
}

const servePage = Buffer.allocUnsafe(PAGE);

/**
 * Answers a request against the file `ctl` names: the reader thread's work
 * (tests call it on their own thread). Each answer is published on its own,
 * its length word last, so that the owner can take it the moment it is there.
 */
export function serve(ctl: Int32Array, req: PrereadRequest, opts: ServeOptions = {}): void {
  const head = new Int32Array(req.head);
  const state = Atomics.load(head, H_STATE);
  if (state === STOPPED) {
    // Left by a stepped reader when the owner dropped it: give it back.
    Atomics.store(head, H_STATE, FREE);
    return;
  }
  if (!(state === READING && opts.resume === true) && Atomics.compareExchange(head, H_STATE, POSTED, READING) !== POSTED) return;
  const n = head[H_N]!;
  const keys = new Uint8Array(req.keys, 0, 36 * n);
  const index = new Int32Array(req.index, 0, 2 * n);
  const data = Buffer.from(req.data);
  const page = servePage;
  let budget = opts.keys ?? Infinity;
  let i = head[H_NEXT]!;
  let used = head[H_USED]!;
  let epoch = head[H_EPOCH]!;
  let over = false;
  for (; i < n; i++) {
    if (Atomics.load(head, H_STATE) !== READING) {
      over = true;
      break;
    }
    const passed = Atomics.load(head, H_PASSED);
    if (i < passed) {
      i = passed - 1;
      continue;
    }
    if (budget-- <= 0) break;
    Atomics.add(ctl, CTL_READERS, 1);
    try {
      const e = Atomics.load(ctl, CTL_EPOCH);
      if ((e & 1) !== 0 || (epoch >= 0 && e !== epoch)) {
        over = true;
        break;
      }
      if (epoch < 0) {
        epoch = e;
        Atomics.store(head, H_EPOCH, e);
      }
      opts.stall?.(head, i);
      let at: number;
      try {
        at = probe(Atomics.load(ctl, CTL_FD), Atomics.load(ctl, CTL_PAGES), Atomics.load(ctl, CTL_SEED) >>> 0, keys, 36 * i, page);
      } catch {
        // The owner meets the same fault itself, and reports it.
        Atomics.store(index, 2 * i + 1, ANSWER_NONE);
        continue;
      }
      if (at < 0) {
        index[2 * i] = 0;
        Atomics.store(index, 2 * i + 1, ANSWER_ABSENT);
        continue;
      }
      const v = inlineValue(page, at);
      if (v === null) {
        Atomics.store(index, 2 * i + 1, ANSWER_NONE);
        continue;
      }
      if (used + v.length > data.length) {
        Atomics.store(head, H_FULL, 1);
        over = true;
        break;
      }
      v.copy(data, used);
      index[2 * i] = used;
      Atomics.store(index, 2 * i + 1, v.length);
      used += v.length;
    } finally {
      if (Atomics.sub(ctl, CTL_READERS, 1) === 1) Atomics.notify(ctl, CTL_READERS);
    }
  }
  head[H_NEXT] = i;
  head[H_USED] = used;
  if (!over && i < n) return; // out of `keys`: still READING
  // No more answers: DONE, or FREE if the owner dropped it meanwhile.
  if (Atomics.compareExchange(head, H_STATE, READING, DONE) !== READING) Atomics.store(head, H_STATE, FREE);
}

/** A test's slow reader (coinreader.ts): blocks until the owner has gone past key `i` of the request or dropped it. */
export function stallUntilPassed(head: Int32Array, i: number): void {
  for (;;) {
    const passed = Atomics.load(head, H_PASSED);
    if (passed > i || Atomics.load(head, H_STATE) !== READING) return;
    Atomics.wait(head, H_PASSED, passed, 1);
  }
}

const READER_BYTES = 16 * 1024 * 1024;

/** The reader thread's compiled entry; without it (TypeScript run directly, as under the test runner) nothing is read ahead on a thread. */
const READER_URL = new URL('./coinreader.js', import.meta.url);

/** Requests kept at once: the one being answered, the one before it the reader may still be leaving, and one spare. */
const ASKS = 3;
/** How long a change of the file waits at most for a reader inside a lookup (ms): a reader off the CPU must not hold the owner. */
const LOCKOUT_WAIT_MS = 1;

/** A request's buffers on the owner's side. */
interface Ask {
  req: PrereadRequest;
  head: Int32Array;
  /** Keys the buffers hold room for. */
  room: number;
}

/** The request whose answers the current lookups take, matched in the order asked (`CoinFile.get`). */
interface Answers {
  ask: Ask;
  keys: Uint8Array;
  n: number;
  index: Int32Array;
  data: Buffer;
  next: number;
  /** The reader's PASSED, as last set. */
  passed: number;
}

function newAsk(room: number, dataBytes: number): Ask {
  const req: PrereadRequest = {
    head: new SharedArrayBuffer(4 * H_WORDS),
    keys: new SharedArrayBuffer(36 * room),
    index: new SharedArrayBuffer(8 * room),
    data: new SharedArrayBuffer(dataBytes),
  };
  return { req, head: new Int32Array(req.head), room };
}

/** Gives back a request the owner no longer needs: at once, or by the reader as it leaves. */
function dropAsk(head: Int32Array): void {
  for (;;) {
    const s = Atomics.load(head, H_STATE);
    if (s === POSTED || s === DONE) {
      if (Atomics.compareExchange(head, H_STATE, s, FREE) === s) return;
    } else if (s === READING) {
      if (Atomics.compareExchange(head, H_STATE, READING, STOPPED) === READING) return;
    } else {
      return;
    }
  }
}

/** A file whose name is gone: unlinked at once where the system allows, else when closed. */
class HiddenFile {
  readonly fd: number;
  private readonly dir: string | null;
  constructor(dir: string) {
    const own = mkdtempSync(join(dir, 'nodereg-coins-'));
    const path = join(own, 'f');
    try {
      this.fd = openSync(path, 'w+');
    } catch (err) {
      rmSync(own, { recursive: true, force: true });
      throw err;
    }
    try {
      unlinkSync(path);
      rmSync(own, { recursive: true, force: true });
      this.dir = null;
    } catch {
      this.dir = own;
    }
  }
  close(): void {
    closeSync(this.fd);
    if (this.dir !== null) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One spill into the file, for figures (`CoinFile.spills`, `recount --stats`). */
export interface SpillRecord {
  /** Coins deleted and put. */
  readonly dels: number;
  readonly puts: number;
  /** Puts that looked for an entry of their key to replace (the rest were vouched new: `CoinWrites.fresh`). */
  readonly replacing: number;
  /** Entries in the file after it, and its page file's size in bytes. */
  readonly count: number;
  readonly fileBytes: number;
  /** Whether it first rehashed the file into a bigger one. */
  readonly grew: boolean;
  /** Time it took (ms), and bytes of pages it read and wrote, the grow's included. */
  readonly ms: number;
  readonly readBytes: number;
  readonly writtenBytes: number;
}

/** A page during a spill: the buffer holding it and its offset there. */
interface Slot { buf: Buffer; at: number }

export class CoinFile {
  private file: HiddenFile;
  private blobs: HiddenFile | null = null;
  private blobEnd = 0;
  private pages: number;
  private mask: number;
  private readonly seed = OUTPOINT_SEED;
  /** Bytes of every entry in the pages, and how many entries. */
  private bytes = 0;
  count = 0;
  private readonly one = Buffer.alloc(PAGE);
  private run = Buffer.alloc(RUN * PAGE);
  private runFirst = -1;
  private runPages = 0;
  /** Pages read outside the current run during a spill, written back when it ends. */
  private readonly outside = new Map<number, Buffer>();
  private readonly dirty = new Uint8Array(RUN);
  /** Runs of the page file ever written: one never written is all zeros, and is not read. */
  private written: Uint8Array;
  /** Pages lookups read, lookups, and rehashes into a bigger file (for tests and figures). */
  reads = 0;
  lookups = 0;
  grows = 0;
  /** Every spill so far (`write`), in order. */
  readonly spills: SpillRecord[] = [];
  /** Bytes of pages the spill under way has read and written. */
  private spillRead = 0;
  private spillWritten = 0;
  /** Lookups answered by a read made ahead on the reader thread (for tests and figures). */
  answered = 0;
  /** Keys asked ahead that the lookups came to before the reader had answered them: read on this thread instead (for tests and figures). */
  overtaken = 0;
  /**
   * A test's slow reader: when N > 0, reader threads started from now on
   * stall inside every Nth lookup of a request until this thread has gone
   * past that key or dropped the request (coinreader.ts). Never set outside tests.
   */
  static readerStall = 0;
  /** Shared with the reader thread: see CTL_EPOCH. */
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * CTL_WORDS));
  private reader: Worker | null = null;
  /**
   * Whether reads ahead use a thread ('thread'), are answered at once on
   * this one ('inline', for tests), wait for a test to step them on this
   * one ('manual', `stepReader`), or are off.
   */
  private prereads: 'thread' | 'inline' | 'manual' | 'off';
  /** The requests' buffers, reused (see `Ask`). */
  private readonly asks: Ask[] = [];
  /** The last request made, until `settle` takes it. */
  private posted: Ask | null = null;
  private answers: Answers | null = null;

  private constructor(private readonly dir: string, pages: number, prereads: 'thread' | 'inline' | 'manual' | 'off') {
    this.pages = pages;
    this.mask = pages - 1;
    this.written = new Uint8Array(Math.ceil(pages / RUN));
    this.file = new HiddenFile(dir);
    try {
      ftruncateSync(this.file.fd, pages * PAGE);
    } catch (err) {
      this.file.close();
      throw err;
    }
    this.prereads = prereads === 'thread' && !(READER_URL.protocol === 'file:' && existsSync(fileURLToPath(READER_URL))) ? 'off' : prereads;
    this.ctl[CTL_SEED] = this.seed | 0;
    this.publish();
  }

  /**
   * An empty coin file in a new hidden file under `dir` (default: the
   * system's temporary directory). `prereads`: how `preread` reads ahead
   * (default: on a thread of its own when the compiled reader is there).
   */
  static create(dir: string = tmpdir(), pages = 256, prereads: 'thread' | 'inline' | 'manual' | 'off' = 'thread'): CoinFile {
    let p = 1;
    while (p < pages) p *= 2;
    return new CoinFile(dir, p, prereads);
  }

  /** Names the file as it is now to readers, and lets them read (EPOCH even again). */
  private publish(): void {
    Atomics.store(this.ctl, CTL_FD, this.file.fd);
    Atomics.store(this.ctl, CTL_PAGES, this.pages);
    if ((Atomics.load(this.ctl, CTL_EPOCH) & 1) !== 0) Atomics.add(this.ctl, CTL_EPOCH, 1);
  }

  /**
   * Keeps readers out (EPOCH odd): the file may change. A reader inside a
   * lookup leaves after it, so this waits a moment for one, at most
   * LOCKOUT_WAIT_MS: a reader the system has taken off the CPU (or a thread
   * killed inside a read) must not hold the spill. Safety does not rest on
   * the wait: an answer read while the file changes is stamped with an epoch
   * that is gone and never taken, and a read of a descriptor closed
   * meanwhile changes nothing.
   */
  private lockOut(): void {
    const ctl = this.ctl;
    if ((Atomics.load(ctl, CTL_EPOCH) & 1) === 0) Atomics.add(ctl, CTL_EPOCH, 1);
    const n = Atomics.load(ctl, CTL_READERS);
    if (n !== 0) Atomics.wait(ctl, CTL_READERS, n, LOCKOUT_WAIT_MS);
  }

  /**
   * What the reader thread costs the process once started (for the memory
   * budget): measured, a thread of its own of about 9 MiB and its requests'
   * garbage, 16 MiB after a thousand blocks.
   */
  get readerBytes(): number {
    return this.reader === null ? 0 : READER_BYTES;
  }

  /** The file's epoch: it moves (by two) with every change, and is odd during one. */
  get epoch(): number {
    return Atomics.load(this.ctl, CTL_EPOCH);
  }

  /**
   * Starts reading `keys` (outpoints, 36 bytes each, `n` of them) on the
   * reader thread, for the next `get`s after `settle`: the coins a block
   * about to be connected will look up, read while the block before it
   * connects. Any earlier request is dropped. Answers are taken only while
   * the file has not changed since they were read (CTL_EPOCH); `get` reads
   * any other key itself, and any key the reader has not got to yet.
   */
  preread(keys: Uint8Array, n: number): void {
    this.dropAnswers();
    if (this.posted !== null) dropAsk(this.posted.head);
    this.posted = null;
    if (n === 0 || this.prereads === 'off') return;
    const w = this.prereads === 'thread' ? this.startReader() : null;
    if (this.prereads === 'thread' && w === null) return;
    const ask = this.freeAsk(n);
    // None free: the reader is behind on all of them (off the CPU, most likely); this block is read here.
    if (ask === null) return;
    const { head, req } = ask;
    new Uint8Array(req.keys, 0, 36 * n).set(keys.subarray(0, 36 * n));
    new Int32Array(req.index, 0, 2 * n).fill(ANSWER_PENDING);
    head[H_N] = n;
    head[H_NEXT] = 0;
    head[H_PASSED] = 0;
    head[H_EPOCH] = -1;
    head[H_USED] = 0;
    head[H_FULL] = 0;
    Atomics.store(head, H_STATE, POSTED);
    this.posted = ask;
    if (this.prereads === 'inline') serve(this.ctl, req);
    else if (w !== null) w.postMessage(req);
  }

  /** A request FREE for `n` keys, made or made bigger if need be; null when every one kept is still the reader's. */
  private freeAsk(n: number): Ask | null {
    for (let i = 0; i < ASKS; i++) {
      const ask = this.asks[i];
      if (ask === undefined) {
        const made = newAsk(Math.max(n, 1024), 64 * Math.max(n, 1024));
        this.asks.push(made);
        return made;
      }
      if (Atomics.load(ask.head, H_STATE) !== FREE) continue;
      const { req } = ask;
      // The old buffers are left to the garbage collector: a message naming them finds them FREE, and is skipped.
      if (ask.room < n || ask.head[H_FULL] === 1) {
        const room = Math.max(n, ask.room);
        const made = newAsk(room, Math.max(64 * room, ask.head[H_FULL] === 1 ? 2 * req.data.byteLength : req.data.byteLength));
        this.asks[i] = made;
        return made;
      }
      return ask;
    }
    return null;
  }

  private startReader(): Worker | null {
    if (this.reader !== null) return this.reader;
    let w: Worker;
    try {
      // Small heaps: it holds one block's keys and coins at a time.
      w = new Worker(READER_URL, { workerData: { ctl: this.ctl, stall: CoinFile.readerStall }, resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 8 } });
    } catch {
      return null;
    }
    w.unref();
    // A reader that fails only costs the reads ahead: `get` reads everything itself.
    const gone = (): void => {
      this.reader = null;
      this.prereads = 'off';
    };
    w.on('error', gone);
    w.on('exit', gone);
    this.reader = w;
    return w;
  }

  /**
   * Makes the last `preread`'s answers the ones the `get`s that follow
   * take, as the reader gives them. Never waits for the reader.
   */
  settle(): void {
    const ask = this.posted;
    this.posted = null;
    this.dropAnswers();
    if (ask === null) return;
    const { req, head } = ask;
    const n = head[H_N]!;
    this.answers = { ask, keys: new Uint8Array(req.keys, 0, 36 * n), n, index: new Int32Array(req.index, 0, 2 * n), data: Buffer.from(req.data), next: 0, passed: 0 };
  }

  private dropAnswers(): void {
    const a = this.answers;
    if (a === null) return;
    this.answers = null;
    dropAsk(a.ask.head);
  }

  /**
   * Test seam for 'manual' reads ahead: runs the reader's work on this
   * thread for at most `keys` lookups on each request kept (or only on the
   * one the lookups now take, if `onlyCurrent`), as a reader thread would
   * between two of this thread's steps. A request the owner dropped is
   * given back at once, whatever `keys`.
   */
  stepReader(keys: number, onlyCurrent = false): void {
    const current = this.answers?.ask ?? this.posted;
    for (const ask of onlyCurrent ? (current === null ? [] : [current]) : this.asks) serve(this.ctl, ask.req, { keys, resume: true });
  }

  /**
   * The answer read ahead for key `k[at..]`, matched from where the last
   * match left off (keys are looked up in the order they were asked for):
   * null when there is none to take (not asked, not answered yet, or read
   * before the file last changed).
   */
  private answerFor(k: Uint8Array, at: number): Buffer | undefined | null {
    const a = this.answers;
    if (a === null) return null;
    const keys = a.keys;
    for (let i = a.next; i < a.n; i++) {
      const o = 36 * i;
      let same = true;
      for (let j = 0; j < KEY; j++) {
        if (keys[o + j] !== k[at + j]) {
          same = false;
          break;
        }
      }
      if (!same) continue;
      a.next = i + 1;
      const len = Atomics.load(a.index, 2 * i + 1);
      // The reader skips every key up to this one from now on. When this one
      // was the reader's to read and is not there yet, it also skips half of
      // those after it, which this thread reads itself, while the reader goes
      // on with the other half. (Skipping only this one would leave both
      // threads reading the same keys in step: the reader always inside the
      // key this thread comes to next.)
      const passed = len === ANSWER_PENDING && i >= a.passed ? i + 1 + ((a.n - i - 1) >> 1) : i + 1;
      if (passed > a.passed) {
        a.passed = passed;
        Atomics.store(a.ask.head, H_PASSED, passed);
      }
      if (len === ANSWER_PENDING) {
        this.overtaken++;
        return null;
      }
      if (len === ANSWER_NONE) return null;
      // Read after the length: an answer is there only once its epoch is.
      if (Atomics.load(a.ask.head, H_EPOCH) !== this.epoch) {
        this.dropAnswers();
        return null;
      }
      this.answered++;
      if (len === ANSWER_ABSENT) return undefined;
      const from = a.index[2 * i]!;
      return a.data.subarray(from, from + len);
    }
    return null;
  }

  get pageCount(): number {
    return this.pages;
  }

  private home(b: Uint8Array, at: number): number {
    return homeOf(this.seed, this.pages, b, at);
  }

  private readPage(fd: number, p: number, into: Buffer): void {
    readPageOf(fd, this.pages, p, into);
  }

  /** Where the entries of the page at `at` end (checked). */
  private static endOf(b: Buffer, at: number): number {
    const end = b.readUInt16LE(at);
    if (end === 0) return HEAD;
    if (end < HEAD || end > PAGE) throw new CoinFileError(`the coin file is corrupt: a page has its entries end at ${end}`);
    return end;
  }

  /** Throws unless the entry at `e` matches its check. */
  private static verify(b: Buffer, e: number): void {
    const n = b.readUInt16LE(e + KEY);
    if (entrySum(b, e, n === BLOB ? BLOB_REF : n) !== b.readUInt32LE(e + KEY + 2)) throw new CoinFileError('the coin file is corrupt: an entry fails its check');
  }

  /** Offset in `b` of the entry for key `k[ka..]` in the page at `at`, or -1. */
  static find(b: Buffer, at: number, k: Uint8Array, ka: number): number {
    const end = at + CoinFile.endOf(b, at);
    const k0 = k[ka]!;
    const first = u32le(k, ka);
    for (let e = at + HEAD; e < end;) {
      // Each entry's size, checked to end in the page (`sizeAt`, by hand: this loop runs for every lookup and delete).
      const n = b[e + KEY]! | (b[e + KEY + 1]! << 8);
      const size = ENTRY + (n === BLOB ? BLOB_REF : n);
      if (e + size > end) throw new CoinFileError('the coin file is corrupt: an entry runs past its page');
      // Its first byte tells most entries apart before a word is put together.
      if (b[e] === k0 && u32le(b, e) === first) {
        let same = true;
        for (let i = 4; i < KEY; i++) {
          if (b[e + i] !== k[ka + i]) {
            same = false;
            break;
          }
        }
        if (same) {
          CoinFile.verify(b, e);
          return e;
        }
      }
      e += size;
    }
    return -1;
  }

  private valueAt(b: Buffer, e: number): Buffer {
    const n = b.readUInt16LE(e + KEY);
    if (n !== BLOB) return Buffer.from(b.subarray(e + ENTRY, e + ENTRY + n));
    const len = b.readUInt32LE(e + ENTRY);
    const off = b.readUIntLE(e + ENTRY + 4, 6);
    if (this.blobs === null) throw new CoinFileError('the coin file is corrupt: an entry names a blob that was never written');
    const out = Buffer.allocUnsafe(4 + len);
    const got = readSync(this.blobs.fd, out, 0, 4 + len, off);
    if (got !== 4 + len) throw new CoinFileError(`the coin file's blobs are truncated at offset ${off}`);
    if (crc32(out.subarray(4)) >>> 0 !== out.readUInt32LE(0)) throw new CoinFileError(`the coin file is corrupt: the blob at offset ${off} fails its checksum`);
    return out.subarray(4);
  }

  /** The value stored under outpoint `k[at..at+36)`, or undefined. */
  get(k: Uint8Array, at = 0): Buffer | undefined {
    this.lookups++;
    const ahead = this.answerFor(k, at);
    if (ahead !== null) return ahead;
    const b = this.one;
    const e = probe(this.file.fd, this.pages, this.seed, k, at, b);
    this.reads += probeReads;
    return e >= 0 ? this.valueAt(b, e) : undefined;
  }

  /** Every key (36 bytes) and value in the file, in page order. */
  *entries(): Generator<[Buffer, Buffer]> {
    const b = Buffer.alloc(RUN * PAGE);
    for (let first = 0; first < this.pages; first += RUN) {
      const n = Math.min(RUN, this.pages - first);
      const got = readSync(this.file.fd, b, 0, n * PAGE, first * PAGE);
      if (got !== n * PAGE) throw new CoinFileError(`the coin file is truncated: pages from ${first} read ${got} of ${n * PAGE} bytes`);
      for (let i = 0; i < n; i++) {
        const at = i * PAGE;
        const end = at + CoinFile.endOf(b, at);
        for (let e = at + HEAD; e < end;) {
          const size = sizeAt(b, e, end);
          CoinFile.verify(b, e);
          yield [Buffer.from(b.subarray(e, e + KEY)), this.valueAt(b, e)];
          e += size;
        }
      }
    }
  }

  // --- spills -------------------------------------------------------------

  /** Page `p` during a spill: in the current run, or read on its own (written back at the run's end). */
  private slot(p: number): Slot {
    const i = p - this.runFirst;
    if (i >= 0 && i < this.runPages) {
      this.dirty[i] = 1;
      return { buf: this.run, at: i * PAGE };
    }
    let b = this.outside.get(p);
    if (b === undefined) {
      b = Buffer.alloc(PAGE);
      this.readPage(this.file.fd, p, b);
      this.spillRead += PAGE;
      this.outside.set(p, b);
    }
    return { buf: b, at: 0 };
  }

  /** Removes key `k[ka..]` homed at page `home`, wherever its probe put it; false when absent. */
  private remove(home: number, k: Uint8Array, ka: number): boolean {
    let p = home;
    for (let n = 0; n < this.pages; n++) {
      const { buf, at } = this.slot(p);
      const e = CoinFile.find(buf, at, k, ka);
      if (e >= 0) {
        const end = at + CoinFile.endOf(buf, at);
        const size = sizeAt(buf, e, end);
        buf.copy(buf, e, e + size, end);
        buf.fill(0, end - size, end);
        buf.writeUInt16LE(end - size - at, at);
        this.bytes -= size;
        this.count--;
        return true;
      }
      if ((buf[at + 2]! & OVERFLOW) === 0) return false;
      p = (p + 1) & this.mask;
    }
    return false;
  }

  /** Adds key `k[ka..]` with `value` at its home page or the first page after it with room. */
  private insert(home: number, k: Uint8Array, ka: number, value: Uint8Array): void {
    const size = entrySize(value.length);
    const { buf, at, end } = this.roomFor(home, size);
    const e = at + end;
    buf.set(k.subarray(ka, ka + KEY), e);
    if (value.length > INLINE) {
      buf.writeUInt16LE(BLOB, e + KEY);
      buf.writeUInt32LE(value.length, e + ENTRY);
      buf.writeUIntLE(this.blob(value), e + ENTRY + 4, 6);
      buf.writeUInt32LE(entrySum(buf, e, BLOB_REF), e + KEY + 2);
    } else {
      buf.writeUInt16LE(value.length, e + KEY);
      buf.set(value, e + ENTRY);
      buf.writeUInt32LE(entrySum(buf, e, value.length), e + KEY + 2);
    }
    buf.writeUInt16LE(end + size, at);
    this.bytes += size;
    this.count++;
  }

  /** Adds put `i` of `w` (fresh, its value inline) at its home page or the first page after it with room, written there by `w.putInto`. */
  private insertFrom(home: number, w: CoinWrites, i: number): void {
    const n = w.putLength(i);
    const size = ENTRY + n;
    const { buf, at, end } = this.roomFor(home, size);
    const e = at + end;
    w.putInto!(i, buf, e, e + ENTRY);
    buf.writeUInt16LE(n, e + KEY);
    buf.writeUInt32LE(entrySum(buf, e, n), e + KEY + 2);
    buf.writeUInt16LE(end + size, at);
    this.bytes += size;
    this.count++;
  }

  /**
   * The page where an entry of `size` bytes homed at `home` goes: the home
   * page or the first after it with room, each full page passed marked as
   * overflowed (a lookup then reads on past it).
   */
  private roomFor(home: number, size: number): { buf: Buffer; at: number; end: number } {
    let p = home;
    for (let n = 0; n < this.pages; n++) {
      const { buf, at } = this.slot(p);
      const end = CoinFile.endOf(buf, at);
      if (end + size <= PAGE) return { buf, at, end };
      buf[at + 2] = buf[at + 2]! | OVERFLOW;
      p = (p + 1) & this.mask;
    }
    throw new CoinFileError('the coin file is full');
  }

  private blob(value: Uint8Array): number {
    this.blobs ??= new HiddenFile(this.dir);
    const b = Buffer.allocUnsafe(4 + value.length);
    b.writeUInt32LE(crc32(value) >>> 0, 0);
    b.set(value, 4);
    const off = this.blobEnd;
    writeSync(this.blobs.fd, b, 0, b.length, off);
    this.blobEnd += b.length;
    return off;
  }

  /** Starts the run of pages from `first`, reading them (zero pages past a fresh file's end are empty). */
  private openRun(first: number): void {
    const n = Math.min(RUN, this.pages - first);
    if (this.written[first / RUN] === 0) {
      // Never written since the file was made (a grow fills a new file a run at a time, most of them once).
      this.run.fill(0, 0, n * PAGE);
    } else {
      const got = readSync(this.file.fd, this.run, 0, n * PAGE, first * PAGE);
      if (got !== n * PAGE) throw new CoinFileError(`the coin file is truncated: pages from ${first} read ${got} of ${n * PAGE} bytes`);
      this.spillRead += got;
    }
    this.runFirst = first;
    this.runPages = n;
    this.dirty.fill(0);
  }

  /** Writes back the run's changed pages (one write from the first to the last) and the pages read outside it. */
  private closeRun(): void {
    let lo = -1;
    let hi = -1;
    for (let i = 0; i < this.runPages; i++) {
      if (this.dirty[i] === 0) continue;
      if (lo < 0) lo = i;
      hi = i;
    }
    if (lo >= 0) {
      this.written[this.runFirst / RUN] = 1;
      this.writeAt(this.run, lo * PAGE, (hi - lo + 1) * PAGE, (this.runFirst + lo) * PAGE);
    }
    for (const [p, b] of this.outside) {
      this.written[Math.floor(p / RUN)] = 1;
      this.writeAt(b, 0, PAGE, p * PAGE);
    }
    this.outside.clear();
    this.runFirst = -1;
    this.runPages = 0;
  }

  private writeAt(b: Buffer, at: number, n: number, pos: number): void {
    let done = 0;
    while (done < n) done += writeSync(this.file.fd, b, at + done, n - done, pos + done);
    this.spillWritten += n;
  }

  /**
   * Applies a spill: every delete, then every put (a put replaces the key if
   * present, unless the writer vouches that none is: `CoinWrites.fresh`).
   * The file first grows so that it stays under its load factor with every
   * put added. Ops are bucketed by run of pages, and each run is
   * read, changed and written once.
   */
  write(w: CoinWrites): void {
    // Readers out while the pages change (and while a grow swaps the file); back in once it is whole again.
    this.dropAnswers();
    this.lockOut();
    const started = performance.now();
    const grows = this.grows;
    this.spillRead = 0;
    this.spillWritten = 0;
    let replacing = 0;
    try {
      replacing = this.apply(w);
    } finally {
      this.publish();
    }
    this.spills.push({
      dels: w.dels, puts: w.puts, replacing, count: this.count, fileBytes: this.pages * PAGE, grew: this.grows !== grows,
      ms: performance.now() - started, readBytes: this.spillRead, writtenBytes: this.spillWritten,
    });
  }

  /** Applies `w` (`write`); returns how many puts looked for their key first. */
  private apply(w: CoinWrites): number {
    const total = w.dels + w.puts;
    const fresh = w.fresh === true;
    const mayRepeat = fresh && w.mayRepeat !== undefined ? w.mayRepeat.bind(w) : null;
    let replacing = 0;
    // Each key's hash first (homes are its high bits, taken once the size is known).
    const homes = new Uint32Array(total);
    let added = 0;
    for (let i = 0; i < w.dels; i++) {
      const { buf, at } = w.delKey(i);
      homes[i] = hashAt(this.seed, buf, at);
    }
    for (let i = 0; i < w.puts; i++) {
      const { buf, at } = w.putKey(i);
      homes[w.dels + i] = hashAt(this.seed, buf, at);
      added += entrySize(w.putLength(i));
    }
    if (this.bytes + added > LOAD * this.pages * (PAGE - HEAD)) this.grow(this.bytes + added);
    for (let i = 0; i < total; i++) homes[i] = pageOf(homes[i]!, this.pages);
    const order = this.byRun(homes);
    const runs = Math.ceil(this.pages / RUN);
    let k = 0;
    for (let r = 0; r < runs && k < total; r++) {
      const first = r * RUN;
      if (Math.floor(homes[order[k]!]! / RUN) !== r) continue;
      this.openRun(first);
      const from = k;
      while (k < total && Math.floor(homes[order[k]!]! / RUN) === r) k++;
      // Deletes first (the order keeps them ahead), so that a key deleted and put again ends as put.
      for (let j = from; j < k; j++) {
        const i = order[j]!;
        if (i < w.dels) {
          const { buf, at } = w.delKey(i);
          if (!this.remove(homes[i]!, buf, at)) {
            throw new CoinFileError(`the coin file lacks a coin it was asked to delete (${Buffer.from(buf.subarray(at, at + 32)).reverse().toString('hex')}:${u32be(buf, at + 32)}): it is corrupt`);
          }
        } else {
          const p = i - w.dels;
          // Almost every put is a coin no spill wrote before: looking for one to replace finds nothing.
          const replace = !fresh || (mayRepeat !== null && mayRepeat(p));
          if (!replace && w.putInto !== undefined && w.putLength(p) <= INLINE) {
            this.insertFrom(homes[i]!, w, p);
            continue;
          }
          const { buf, at } = w.putKey(p);
          if (replace) {
            replacing++;
            this.remove(homes[i]!, buf, at);
          }
          this.insert(homes[i]!, buf, at, w.putValue(p));
        }
      }
      this.closeRun();
    }
    return replacing;
  }

  /** Indices of `homes` ordered by run of pages (a counting sort, stable: deletes stay ahead of puts). */
  private byRun(homes: Uint32Array): Uint32Array {
    const runs = Math.ceil(this.pages / RUN);
    const start = new Uint32Array(runs + 1);
    for (let i = 0; i < homes.length; i++) start[Math.floor(homes[i]! / RUN) + 1]!++;
    for (let r = 0; r < runs; r++) start[r + 1]! += start[r]!;
    const order = new Uint32Array(homes.length);
    for (let i = 0; i < homes.length; i++) order[start[Math.floor(homes[i]! / RUN)]!++] = i;
    return order;
  }

  /** Rehashes every entry into a new file big enough for `bytes` within the load factor. */
  private grow(bytes: number): void {
    this.grows++;
    let pages = this.pages;
    while (bytes > LOAD * pages * (PAGE - HEAD)) pages *= 2;
    const old = this.file;
    const oldPages = this.pages;
    const oldRun = this.run;
    const oldWritten = this.written;
    const { bytes: oldBytes, count: oldCount } = this;
    this.file = new HiddenFile(this.dir);
    try {
      ftruncateSync(this.file.fd, pages * PAGE);
      this.pages = pages;
      this.mask = pages - 1;
      this.bytes = 0;
      this.count = 0;
      this.run = Buffer.alloc(RUN * PAGE);
      this.written = new Uint8Array(Math.ceil(pages / RUN));
      const from = Buffer.alloc(RUN * PAGE);
      // Each run of old pages lands in a few runs of the new file: gather its
      // entries, then insert them run by run as a spill does.
      const keys: Buffer[] = [];
      const values: Buffer[] = [];
      for (let first = 0; first < oldPages; first += RUN) {
        const n = Math.min(RUN, oldPages - first);
        const got = readSync(old.fd, from, 0, n * PAGE, first * PAGE);
        if (got !== n * PAGE) throw new CoinFileError(`the coin file is truncated: pages from ${first} read ${got} of ${n * PAGE} bytes`);
        this.spillRead += got;
        keys.length = 0;
        values.length = 0;
        for (let i = 0; i < n; i++) {
          const at = i * PAGE;
          const end = at + CoinFile.endOf(from, at);
          for (let e = at + HEAD; e < end;) {
            const size = sizeAt(from, e, end);
            CoinFile.verify(from, e);
            keys.push(from.subarray(e, e + KEY));
            // Length, check and value (or blob reference) move as they are: the blob file stays.
            values.push(from.subarray(e + KEY, e + size));
            e += size;
          }
        }
        this.moveIn(keys, values);
      }
    } catch (err) {
      this.file.close();
      this.file = old;
      this.pages = oldPages;
      this.mask = oldPages - 1;
      this.run = oldRun;
      this.written = oldWritten;
      this.bytes = oldBytes;
      this.count = oldCount;
      this.outside.clear();
      throw err;
    }
    old.close();
  }

  /** Inserts raw entries (value with its u16 length or blob reference) into the new file of `grow`. */
  private moveIn(keys: Buffer[], raws: Buffer[]): void {
    const homes = new Uint32Array(keys.length);
    for (let i = 0; i < keys.length; i++) homes[i] = this.home(keys[i]!, 0);
    const order = this.byRun(homes);
    let k = 0;
    while (k < keys.length) {
      const r = Math.floor(homes[order[k]!]! / RUN);
      this.openRun(r * RUN);
      while (k < keys.length && Math.floor(homes[order[k]!]! / RUN) === r) {
        const i = order[k++]!;
        this.insertRaw(homes[i]!, keys[i]!, raws[i]!);
      }
      this.closeRun();
    }
  }

  /** Adds an entry whose bytes after the key (`raw`: length, check, value or blob reference) are already made: a grow moving entries. */
  private insertRaw(home: number, key: Buffer, raw: Buffer): void {
    const size = KEY + raw.length;
    const { buf, at, end } = this.roomFor(home, size);
    key.copy(buf, at + end);
    raw.copy(buf, at + end + KEY);
    buf.writeUInt16LE(end + size, at);
    this.bytes += size;
    this.count++;
  }

  /** The page file's descriptor (tests damage the file through it). */
  get fd(): number {
    return this.file.fd;
  }

  /** Size of the page file in bytes (for tests). */
  get fileBytes(): number {
    return fstatSync(this.file.fd).size;
  }

  close(): void {
    // Readers out for good (EPOCH stays odd), then the thread goes.
    this.lockOut();
    this.dropAnswers();
    if (this.posted !== null) dropAsk(this.posted.head);
    this.posted = null;
    if (this.reader !== null) {
      this.reader.removeAllListeners('exit');
      void this.reader.terminate();
      this.reader = null;
    }
    this.file.close();
    this.blobs?.close();
    this.blobs = null;
  }
}
