import { hash } from 'node:crypto';
import { isUnspendable } from '../../script/opcodes.js';

/**
 * A block's bytes do not follow Bitcoin's serialization. Raised by the scanner
 * for truncated data, counts the remaining bytes could not hold, non-canonical
 * sizes and trailing bytes, so callers can tell corrupt data (this) from bugs
 * (anything else). `offset` is relative to the start of the block.
 */
export class BlockParseError extends Error {
  readonly offset: number;

  constructor(what: string, offset: number) {
    super(`${what} at byte offset ${offset}`);
    this.name = 'BlockParseError';
    this.offset = offset;
  }
}

/** The fields of an 80-byte block header; every Buffer is a view, except `hash`. */
export interface ScannedHeader {
  /** Double SHA-256 of the header, internal (little-endian) byte order. */
  hash: Buffer;
  /** The 80 header bytes. */
  header: Buffer;
  prevHash: Buffer;
  merkleRoot: Buffer;
  time: number;
  bits: number;
}

/** An outpoint being spent; `prevTxid` is a view in internal byte order. */
export interface ScannedInput {
  prevTxid: Buffer;
  prevVout: number;
}

/** A created coin; `script` is a view into the block bytes. */
export interface ScannedOutput {
  value: bigint;
  script: Buffer;
}

export interface ScannedTx {
  /** Position in the block, coinbase at 0. */
  index: number;
  /** Internal byte order (reverse it for RPC hex). */
  txid: Buffer;
  /**
   * True for the block's first transaction when it has the single null
   * prevout. Its input is still listed, so an engine must test this flag
   * before looking the prevout up.
   */
  coinbase: boolean;
  inputs: ScannedInput[];
  outputs: ScannedOutput[];
}

export interface ScannedBlock extends ScannedHeader {
  txs: ScannedTx[];
}

const HEADER_SIZE = 80;
/** version + empty vin + empty vout + locktime: the smallest Core will parse. */
const MIN_TX_SIZE = 10;
/** prevout(36) + empty scriptSig(1) + sequence(4). */
const MIN_INPUT_SIZE = 41;
/** value(8) + empty script(1). */
const MIN_OUTPUT_SIZE = 9;
const TWO_32 = 0x1_0000_0000;

/** Double SHA-256 as a Buffer; by way of `sha256dLatin1`, whose string Buffer.from copies into pooled memory. */
function sha256d(data: Buffer): Buffer {
  return Buffer.from(sha256dLatin1(data), 'latin1');
}

/** Holds the inner digest of `sha256dLatin1` between its two hashes. */
const inner = Buffer.alloc(32);

/**
 * Writes a 32-character latin1 string (a digest) into `out` at `at`. A loop
 * over `charCodeAt` measured about 45 ns cheaper per digest than
 * `Buffer.write(s, at, 32, 'latin1')`, whose argument checks and native call
 * cost more than the copy.
 */
export function putDigest(out: Uint8Array, at: number, s: string): void {
  for (let k = 0; k < 32; k++) out[at + k] = s.charCodeAt(k);
}

/**
 * Double SHA-256 as a latin1 string (one char per byte). Node accepts any
 * buffer encoding for the digest, though its typings list only the text
 * ones. A string costs far less to make than a native-backed Buffer, so the
 * inner digest too comes back as a string and is written into a reused
 * buffer: 0.47 µs per call instead of 0.83 µs with a Buffer in between.
 */
export function sha256dLatin1(data: Uint8Array): string {
  putDigest(inner, 0, hash('sha256', data, 'latin1' as 'hex'));
  return hash('sha256', inner, 'latin1' as 'hex');
}

/**
 * Bounds-checked reading position over one block. Reads use direct indexing
 * rather than `readUInt32LE` because every read is already bounds-checked here.
 */
class Cursor {
  pos = 0;
  /** Set by `parseTx` for the caller: did the last tx look like a coinbase. */
  coinbase = false;
  /**
   * Where we are, for error messages only: labels are constant strings with
   * `#` standing for `item`, so the hot path never formats a string.
   */
  tx = -1;
  item = 0;
  /** Outputs walked so far that could enter the UTXO set (any script not starting with OP_RETURN). */
  spendable = 0;
  /** Where the last transaction's txid bytes are: [txStart, +4), [bodyStart, bodyEnd), [pos - 4, pos). */
  txStart = 0;
  bodyStart = 0;
  bodyEnd = 0;
  segwit = false;
  readonly buf: Buffer;
  readonly end: number;

  constructor(buf: Buffer) {
    this.buf = buf;
    this.end = buf.length;
  }

  need(n: number, what: string): void {
    if (this.end - this.pos < n) this.fail(`truncated ${this.describe(what)}: need ${n} bytes, ${this.end - this.pos} left`, this.pos);
  }

  describe(what: string): string {
    const label = what.replace('#', String(this.item));
    return this.tx < 0 ? label : `${label} of tx ${this.tx}`;
  }

  fail(message: string, offset: number): never {
    throw new BlockParseError(message, offset);
  }

  u32(): number {
    const b = this.buf;
    const p = this.pos;
    this.pos = p + 4;
    return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16)) + b[p + 3] * 0x100_0000;
  }

  /** Bitcoin's CompactSize; rejects non-canonical encodings as Core does. */
  compactSize(what: string): number {
    const start = this.pos;
    this.need(1, what);
    const b = this.buf;
    const first = b[this.pos++];
    if (first < 0xfd) return first;
    let v: number;
    let min: number;
    if (first === 0xfd) {
      this.need(2, what);
      v = b[this.pos] | (b[this.pos + 1] << 8);
      this.pos += 2;
      min = 0xfd;
    } else if (first === 0xfe) {
      this.need(4, what);
      v = this.u32();
      min = 0x1_0000;
    } else {
      this.need(8, what);
      const lo = this.u32();
      v = this.u32() * TWO_32 + lo;
      min = TWO_32;
    }
    if (v < min) this.fail(`non-canonical compact size for ${this.describe(what)}`, start);
    return v;
  }

  /** A CompactSize count of items that each take at least `minSize` bytes. */
  count(what: string, minSize: number): number {
    const start = this.pos;
    const n = this.compactSize(what);
    if (n * minSize > this.end - this.pos) {
      this.fail(`absurd ${this.describe(what)} ${n}: only ${this.end - this.pos} bytes left`, start);
    }
    return n;
  }

  /** Skips a CompactSize-prefixed byte string and returns where its body starts. */
  skipVarBytes(what: string): number {
    const len = this.compactSize(what);
    this.need(len, what);
    const start = this.pos;
    this.pos += len;
    return start;
  }
}

function isNullPrevout(b: Buffer, p: number): boolean {
  for (let i = 0; i < 32; i++) if (b[p + i] !== 0) return false;
  return b[p + 32] === 0xff && b[p + 33] === 0xff && b[p + 34] === 0xff && b[p + 35] === 0xff;
}

/** Sees each OP_RETURN output script as a view into the block (valid only during the call). */
export type OpReturnHook = (script: Buffer, txIndex: number, vout: number) => void;

/**
 * Walks one transaction, showing its inputs and outputs to `v` when given,
 * and returns its txid (or nothing, with `hash` false). Follows Core's
 * deserializer: an empty vin is the segwit marker, flag 1 means witnesses
 * follow, any other non-zero flag is an error, and a witness flag with no
 * witness data at all is rejected ("superfluous").
 */
function parseTx(c: Cursor, index: number, v: TxVisitor | null, hash = true, onOpReturn: OpReturnHook | null = null): Buffer {
  const b = c.buf;
  const txStart = c.pos;
  c.tx = index;
  c.need(MIN_TX_SIZE, 'transaction');
  c.pos += 4;
  let nIn = c.count('input count', MIN_INPUT_SIZE);
  let segwit = false;
  let bodyStart = txStart + 4;
  if (nIn === 0) {
    const flag = b[c.pos];
    if (flag === 1) {
      segwit = true;
      c.pos++;
      bodyStart = c.pos;
      nIn = c.count('input count', MIN_INPUT_SIZE);
    } else if (flag !== 0) {
      c.fail(`unknown segwit flag ${flag} in tx ${index}`, c.pos);
    }
    // Flag 0: Core reads an empty tx (no vin, no vout); reading that byte as
    // the output count below gives the same result over the same bytes.
  }
  c.coinbase = false;
  for (let i = 0; i < nIn; i++) {
    c.item = i;
    c.need(36, 'prevout of input #');
    const p = c.pos;
    if (index === 0 && nIn === 1 && isNullPrevout(b, p)) c.coinbase = true;
    c.pos = p + 36;
    if (v !== null) v.input(b, p, c.coinbase);
    c.skipVarBytes('scriptSig of input #');
    c.need(4, 'sequence of input #');
    c.pos += 4;
  }
  const nOut = c.count('output count', MIN_OUTPUT_SIZE);
  for (let i = 0; i < nOut; i++) {
    c.item = i;
    c.need(8, 'value of output #');
    const valueAt = c.pos;
    c.pos += 8;
    const s = c.skipVarBytes('script of output #');
    if (v !== null) v.output(b, i, valueAt, s, c.pos);
    if (!isUnspendable(b, s, c.pos)) c.spendable++;
    else if (onOpReturn !== null) onOpReturn(b.subarray(s, c.pos), index, i);
  }
  const bodyEnd = c.pos;
  if (segwit) {
    let anyWitness = false;
    for (let i = 0; i < nIn; i++) {
      c.item = i;
      const items = c.count('witness item count of input #', 1);
      if (items > 0) anyWitness = true;
      for (let k = 0; k < items; k++) c.skipVarBytes('witness item of input #');
    }
    if (!anyWitness) c.fail(`superfluous witness flag in tx ${index}`, bodyEnd);
  }
  c.need(4, 'locktime');
  c.pos += 4;
  c.txStart = txStart;
  c.bodyStart = bodyStart;
  c.bodyEnd = bodyEnd;
  c.segwit = segwit;
  return hash ? Buffer.from(txidLatin1(c), 'latin1') : NO_TXID;
}

/**
 * The txid, as a latin1 string, of the transaction `parseTx` just walked. A
 * legacy transaction is hashed where it lies. A segwit one is hashed where it
 * lies too, for a moment made contiguous: its version is written over the 4
 * bytes before the body (the version's last two bytes, the marker and the
 * flag) and its locktime over the 4 bytes after it (the start of the
 * witnesses, or of the locktime itself), and the 8 bytes are put back before
 * returning. Copying each body into a scratch buffer instead cost more than
 * a tenth of the chain pass (the copy out of a SharedArrayBuffer is slow).
 * The block's bytes therefore must be writable and not read elsewhere during
 * the call; every caller owns its block buffer for the walk.
 */
function txidLatin1(c: Cursor): string {
  const b = c.buf;
  if (!c.segwit) return sha256dLatin1(b.subarray(c.txStart, c.pos));
  const t = c.txStart;
  const f = c.bodyStart - 4;
  const e = c.bodyEnd;
  const l = c.pos - 4;
  const v0 = b[t], v1 = b[t + 1], v2 = b[t + 2], v3 = b[t + 3];
  const l0 = b[l], l1 = b[l + 1], l2 = b[l + 2], l3 = b[l + 3];
  const f0 = b[f], f1 = b[f + 1], f2 = b[f + 2], f3 = b[f + 3];
  const e0 = b[e], e1 = b[e + 1], e2 = b[e + 2], e3 = b[e + 3];
  b[f] = v0; b[f + 1] = v1; b[f + 2] = v2; b[f + 3] = v3;
  b[e] = l0; b[e + 1] = l1; b[e + 2] = l2; b[e + 3] = l3;
  // Every saved byte was read before either write, so putting both ranges
  // back restores the block even where the second overlaps the locktime.
  try {
    return sha256dLatin1(b.subarray(f, e + 4));
  } finally {
    b[f] = f0; b[f + 1] = f1; b[f + 2] = f2; b[f + 3] = f3;
    b[e] = e0; b[e + 1] = e1; b[e + 2] = e2; b[e + 3] = e3;
  }
}

/**
 * Reads an 80-byte header (extra bytes after it are ignored, so a whole block
 * may be passed). Only `hash` is a fresh buffer; the rest are views.
 */
export function scanHeader(bytes: Buffer): ScannedHeader {
  if (bytes.length < HEADER_SIZE) {
    throw new BlockParseError(`truncated header: need ${HEADER_SIZE} bytes, ${bytes.length} left`, 0);
  }
  const header = bytes.subarray(0, HEADER_SIZE);
  return {
    hash: sha256d(header),
    header,
    prevHash: bytes.subarray(4, 36),
    merkleRoot: bytes.subarray(36, 68),
    time: bytes.readUInt32LE(68),
    bits: bytes.readUInt32LE(72),
  };
}

function txCount(c: Cursor): number {
  c.pos = HEADER_SIZE;
  c.tx = -1;
  return c.count('transaction count', MIN_TX_SIZE);
}

function checkEnd(c: Cursor): void {
  if (c.pos !== c.end) throw new BlockParseError(`${c.end - c.pos} trailing bytes after the last transaction`, c.pos);
}

const NO_TXID = Buffer.alloc(0);

/**
 * Walks a serialized block without copying it: scripts and prevout txids are
 * `subarray` views into `bytes`, so they are only valid while `bytes` is, and
 * must be copied before being kept beyond the block. This is the recount's
 * hot path, which is why it does not use bitcoinjs-lib (see docs/spec.md §4).
 * `knownTxids` (32 bytes per transaction, from an earlier pass that checked
 * them against the merkle root) skips hashing the transactions again.
 */
export function scanBlock(bytes: Buffer, knownTxids?: Buffer): ScannedBlock {
  const header = scanHeader(bytes);
  const c = new Cursor(bytes);
  const n = txCount(c);
  if (knownTxids !== undefined && knownTxids.length !== n * 32) {
    throw new BlockParseError(`block has ${n} transactions but ${knownTxids.length / 32} txids were given`, 80);
  }
  const txs: ScannedTx[] = new Array<ScannedTx>(n);
  const collect = new Collector();
  for (let i = 0; i < n; i++) {
    collect.inputs = [];
    collect.outputs = [];
    const parsed = parseTx(c, i, collect, knownTxids === undefined);
    const txid = knownTxids === undefined ? parsed : knownTxids.subarray(i * 32, i * 32 + 32);
    txs[i] = { index: i, txid, coinbase: c.coinbase, inputs: collect.inputs, outputs: collect.outputs };
  }
  checkEnd(c);
  return { ...header, txs };
}

/**
 * The least a reader must do per block: validate the whole serialization and
 * compute every txid, without building input or output objects. Returns the
 * transaction count. (The chain pass and the floor use `walkTxidsInto`.)
 */
export function forEachTxid(bytes: Buffer, fn: (txid: Buffer, index: number) => void): number {
  if (bytes.length < HEADER_SIZE) scanHeader(bytes);
  const c = new Cursor(bytes);
  const n = txCount(c);
  for (let i = 0; i < n; i++) fn(parseTx(c, i, null), i);
  checkEnd(c);
  return n;
}

/**
 * The chain pass's walk: like `forEachTxid`, but writes each txid into `out`
 * at `at + 32 * index` and returns how many there were, or throws
 * BlockParseError before writing past `out` (the caller sizes it from the
 * transaction count, `blockTxCount`). Writing hashes as latin1 strings
 * avoids a native buffer per txid, the costliest part of hashing small
 * inputs.
 */
export function walkTxidsInto(bytes: Buffer, out: Buffer, at: number, onOpReturn: OpReturnHook | null): { txs: number; spendable: number } {
  // Also shows every OP_RETURN script to `onOpReturn` and counts the outputs
  // that could enter the UTXO set: what later passes want to know of a block.
  if (bytes.length < HEADER_SIZE) scanHeader(bytes);
  const c = new Cursor(bytes);
  const n = txCount(c);
  if (at + n * 32 > out.length) throw new RangeError('txid buffer too small for the block');
  for (let i = 0; i < n; i++) {
    parseTx(c, i, null, false, onOpReturn);
    putDigest(out, at + i * 32, txidLatin1(c));
  }
  checkEnd(c);
  return { txs: n, spendable: c.spendable };
}

/** A block's transaction count (its header must be there); throws BlockParseError when unreadable. */
export function blockTxCount(bytes: Buffer): number {
  if (bytes.length < HEADER_SIZE) scanHeader(bytes);
  return txCount(new Cursor(bytes));
}

/** What a transaction walk reports: each input, then each output, in order. */
export interface TxVisitor {
  /** An input; its 36-byte prevout (txid, vout LE) starts at `b[at]`. `coinbase`: it is a coinbase's null prevout. */
  input(b: Buffer, at: number, coinbase: boolean): void;
  /** An output: its 8-byte value starts at `valueAt`, its script is `b[scriptStart..scriptEnd)`. */
  output(b: Buffer, vout: number, valueAt: number, scriptStart: number, scriptEnd: number): void;
}

/** What `visitBlock` reports, in block order: per transaction, its inputs, then its outputs, then its end. */
export interface BlockVisitor extends TxVisitor {
  /** After the transaction's outputs. */
  txEnd(index: number, coinbase: boolean): void;
}

/** Builds `scanBlock`'s input and output objects. */
class Collector implements TxVisitor {
  inputs: ScannedInput[] = [];
  outputs: ScannedOutput[] = [];

  input(b: Buffer, at: number): void {
    this.inputs.push({ prevTxid: b.subarray(at, at + 32), prevVout: b.readUInt32LE(at + 32) });
  }

  output(b: Buffer, _vout: number, valueAt: number, s: number, e: number): void {
    this.outputs.push({ value: b.readBigUInt64LE(valueAt), script: b.subarray(s, e) });
  }
}

/**
 * Walks a block's transactions without building any object per input or
 * output, for the in-memory recount. Bounds are checked as in `scanBlock`;
 * txids are not computed (the chain pass has them).
 */
export function visitBlock(bytes: Buffer, v: BlockVisitor): number {
  // Only the header's length matters here: hashing it is the caller's business.
  if (bytes.length < HEADER_SIZE) scanHeader(bytes);
  const c = new Cursor(bytes);
  const n = txCount(c);
  for (let i = 0; i < n; i++) {
    parseTx(c, i, v, false);
    v.txEnd(i, c.coinbase);
  }
  checkEnd(c);
  return n;
}

/**
 * Like `visitBlock`, and after each transaction for which `wantTxid(index)`
 * (asked after its outputs, before `txEnd`) says so, writes its txid into
 * `out` at 32 × index. For sweeps that need the txids of a few transactions.
 */
export function visitBlockTxids(bytes: Buffer, v: BlockVisitor, wantTxid: (index: number) => boolean, out: Buffer, txAt?: Uint32Array): number {
  // `txAt`, when given, gets each transaction's offset in the block (for `TxWalker`).
  if (bytes.length < HEADER_SIZE) scanHeader(bytes);
  const c = new Cursor(bytes);
  const n = txCount(c);
  if (n * 32 > out.length || (txAt !== undefined && n > txAt.length)) throw new RangeError('txid buffer too small for the block');
  for (let i = 0; i < n; i++) {
    if (txAt !== undefined) txAt[i] = c.pos;
    parseTx(c, i, v, false);
    if (wantTxid(i)) putDigest(out, i * 32, txidLatin1(c));
    v.txEnd(i, c.coinbase);
  }
  checkEnd(c);
  return n;
}

/**
 * Walks single transactions of a block at offsets an earlier walk recorded
 * (`visitBlockTxids`'s `txAt`), for a connect that skips the transactions
 * it knows cannot matter to it. Bounds are checked as in `visitBlock`.
 */
export class TxWalker {
  private readonly c: Cursor;

  constructor(bytes: Buffer) {
    this.c = new Cursor(bytes);
  }

  /** Shows the transaction at `offset`, the block's `index`th, to `v`; returns whether it is a coinbase. */
  visit(offset: number, index: number, v: TxVisitor): boolean {
    const c = this.c;
    c.pos = offset;
    parseTx(c, index, v, false);
    return c.coinbase;
  }
}

/**
 * A txid's first 30 bits (from its 32 bytes at `b[at]`) as a small integer:
 * what a fast connect remembers of the txids whose outputs it holds, to tell
 * the inputs that may spend one of them from those that cannot.
 */
export function txidPrint(b: Uint8Array, at: number): number {
  return b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | ((b[at + 3]! & 0x3f) << 24);
}
