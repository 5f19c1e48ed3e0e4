import { CorruptRecordError, decodeCoin } from './codec.js';
import type { Coin } from '../types.js';
import type { ScriptBytes } from './layout.js';

/**
 * What it takes to disconnect one block. UTXO changes are kept as an ordered
 * log (an output created and spent in the same block appears twice and
 * cancels out on replay); every other row written by the block is kept as
 * (key, value before the block), which makes disconnect exact by
 * construction.
 */
export type CoinOp =
  | { readonly added: true; readonly outpoint: Buffer }
  | { readonly added: false; readonly outpoint: Buffer; readonly coin: Coin };

export interface UndoRecord {
  readonly coinOps: CoinOp[];
  readonly kv: Array<{ readonly key: Buffer; readonly prior: Buffer | null }>;
}

/*
 * Two formats are stored (docs/schema.md, "Undo"). Format 1, written before
 * this one, begins with its u32le count of coin ops; format 2 begins with
 * MARK, a count no record can reach, then its version byte. Both decode to
 * the same UndoRecord, so an index keeps working across the change and a
 * disconnect replays either.
 *
 * Format 2 keeps the coin ops as entries led by a kind byte:
 *   SPENT       txid ‖ varint vout ‖ varint code ‖ varint value ‖ script
 *   SPENT_SAME  as SPENT without the txid: that of the last SPENT
 *   RUN         txid ‖ varint n: the block created vouts 0 … n−1 of txid
 *   RUN_LISTED  txid ‖ varint n ‖ n × varint gap: the first vout, then each
 *               next vout minus the previous one minus 1
 *   END         the coin ops end
 * then `varint m` rows, each `varint keyLen ‖ key ‖ varint (0 | len + 1) ‖ value`.
 * A script is `varint s`: s < 5 names a template (TEMPLATES) whose hash
 * follows, otherwise s − 5 raw bytes follow.
 */
const MARK = 0xffffffff;
const FORMAT = 2;
const HEAD = 5;
const END = 0;
const SPENT = 1;
const SPENT_SAME = 2;
const RUN = 3;
const RUN_LISTED = 4;

/** The standard scripts a spent coin stores as their hash alone: bytes before the hash, its length, bytes after. */
const TEMPLATES: ReadonlyArray<readonly [readonly number[], number, readonly number[]]> = [
  [[0x76, 0xa9, 0x14], 20, [0x88, 0xac]], // P2PKH
  [[0xa9, 0x14], 20, [0x87]], // P2SH
  [[0x00, 0x14], 20, []], // P2WPKH
  [[0x00, 0x20], 32, []], // P2WSH
  [[0x51, 0x20], 32, []], // P2TR
];
const RAW = TEMPLATES.length;

/** The template `b[s..s+n)` matches, or -1. */
function templateOf(b: Uint8Array, s: number, n: number): number {
  next: for (let t = 0; t < RAW; t++) {
    const [pre, len, post] = TEMPLATES[t]!;
    if (n !== pre.length + len + post.length) continue;
    for (let k = 0; k < pre.length; k++) if (b[s + k] !== pre[k]) continue next;
    for (let k = 0; k < post.length; k++) if (b[s + pre.length + len + k] !== post[k]) continue next;
    return t;
  }
  return -1;
}

/** Writes `v` (a u32) as an unsigned LEB128 varint at `p`; returns the offset after it. */
function putVarint(b: Uint8Array, p: number, v: number): number {
  while (v > 0x7f) {
    b[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[p++] = v;
  return p;
}

const varintLength = (v: number): number => (v < 0x80 ? 1 : v < 0x4000 ? 2 : v < 0x200000 ? 3 : v < 0x10000000 ? 4 : 5);

/** Writes the u64 hi·2³² + lo as a LEB128 varint at `p`; returns the offset after it. */
function putVarint64(b: Uint8Array, p: number, lo: number, hi: number): number {
  while (hi !== 0 || lo > 0x7f) {
    b[p++] = (lo & 0x7f) | 0x80;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  b[p++] = lo;
  return p;
}

/**
 * Builds an undo record in format 2 straight from the connect's words,
 * without a CoinOp or bigint per coin: `start`, then `added` and `spent` in
 * the order the block moves its coins, then `finish` with the registry rows'
 * priors. One writer is reused block after block; `finish` returns a copy of
 * exactly the record's bytes, the bytes `encodeUndo` makes of the same record.
 */
export class UndoWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  private at = HEAD;
  /** Offset of the txid of the last SPENT entry, or -1. */
  private spentTxid = -1;
  /** The open run of created coins: offset of its kind byte (-1 if none), coins, last vout, vouts 0… so far. */
  private run = -1;
  private runN = 0;
  private runLast = 0;
  private runFromZero = true;

  start(): this {
    this.buf.writeUInt32LE(MARK, 0);
    this.buf[4] = FORMAT;
    this.at = HEAD;
    this.spentTxid = -1;
    this.run = -1;
    return this;
  }

  private room(n: number): Buffer {
    if (this.at + n > this.buf.length) {
      const b = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
      this.buf.copy(b, 0, 0, this.at);
      this.buf = b;
    }
    return this.buf;
  }

  /** Ends the open run: as RUN when it holds vouts 0 … n−1 (n bytes of varints shrink to one count), else as RUN_LISTED with its count in front. */
  private closeRun(): void {
    if (this.run < 0) return;
    const body = this.run + 33;
    if (this.runFromZero) {
      this.buf[this.run] = RUN;
      this.at = putVarint(this.buf, body, this.runN);
    } else {
      const n = varintLength(this.runN);
      const b = this.room(n);
      b.copyWithin(body + n, body, this.at);
      putVarint(b, body, this.runN);
      b[this.run] = RUN_LISTED;
      this.at += n;
    }
    this.run = -1;
  }

  /** The block created txid `t[at..at+32)`:vout. */
  added(t: Uint8Array, at: number, vout: number): void {
    if (this.run >= 0 && vout > this.runLast && sameTxid(this.buf, this.run + 1, t, at)) {
      this.at = putVarint(this.room(5), this.at, vout - this.runLast - 1);
      this.runFromZero &&= vout === this.runLast + 1;
    } else {
      this.closeRun();
      const b = this.room(38);
      const p = this.at;
      this.run = p;
      for (let k = 0; k < 32; k++) b[p + 1 + k] = t[at + k]!;
      this.at = putVarint(b, p + 33, vout);
      this.runN = 0;
      this.runFromZero = vout === 0;
    }
    this.runN++;
    this.runLast = vout;
  }

  /** The block spent txid `t[at..at+32)`:vout, a coin of value hi·2³² + lo, stored code (height·2 + coinbase) and script `id` of `scripts`. */
  spent(t: Uint8Array, at: number, vout: number, lo: number, hi: number, code: number, scripts: ScriptBytes, id: number): void {
    this.closeRun();
    const n = scripts.lengthOf(id);
    const b = this.room(1 + 32 + 5 + 5 + 10 + 5 + n);
    let p = this.at;
    if (this.spentTxid >= 0 && sameTxid(b, this.spentTxid, t, at)) {
      b[p++] = SPENT_SAME;
    } else {
      b[p++] = SPENT;
      this.spentTxid = p;
      for (let k = 0; k < 32; k++) b[p + k] = t[at + k]!;
      p += 32;
    }
    p = putVarint(b, p, vout);
    p = putVarint(b, p, code);
    p = putVarint64(b, p, lo, hi);
    const s = putVarint(b, p, n + RAW);
    scripts.copyTo(id, b, s);
    const tpl = templateOf(b, s, n);
    if (tpl < 0) {
      this.at = s + n;
    } else {
      const [pre, len] = TEMPLATES[tpl]!;
      b[p] = tpl;
      b.copyWithin(p + 1, s + pre.length, s + pre.length + len);
      this.at = p + 1 + len;
    }
  }

  finish(kv: UndoRecord['kv']): Buffer {
    this.closeRun();
    let n = 1 + 5;
    for (const { key, prior } of kv) n += 5 + key.length + 5 + (prior ? prior.length : 0);
    const b = this.room(n);
    b[this.at] = END;
    let p = putVarint(b, this.at + 1, kv.length);
    for (const { key, prior } of kv) {
      p = putVarint(b, p, key.length);
      b.set(key, p);
      p += key.length;
      p = putVarint(b, p, prior ? prior.length + 1 : 0);
      if (prior) {
        b.set(prior, p);
        p += prior.length;
      }
    }
    const out = Buffer.allocUnsafe(p);
    b.copy(out, 0, 0, p);
    return out;
  }
}

function sameTxid(b: Uint8Array, p: number, t: Uint8Array, at: number): boolean {
  for (let k = 0; k < 32; k++) if (b[p + k] !== t[at + k]) return false;
  return true;
}

const varint = (v: number): Buffer => {
  const b = Buffer.allocUnsafe(5);
  return b.subarray(0, putVarint(b, 0, v));
};

/** A record in format 2, built op by op from its parts (the writer's reference). */
export function encodeUndo(u: UndoRecord): Buffer {
  const parts: Buffer[] = [Buffer.of(0xff, 0xff, 0xff, 0xff, FORMAT)];
  let lastSpent: Buffer | null = null;
  const ops = u.coinOps;
  for (let i = 0; i < ops.length;) {
    const op = ops[i]!;
    if (!op.added) {
      const txid = op.outpoint.subarray(0, 32);
      if (lastSpent !== null && lastSpent.equals(txid)) {
        parts.push(Buffer.of(SPENT_SAME));
      } else {
        parts.push(Buffer.of(SPENT), txid);
        lastSpent = txid;
      }
      const v = Buffer.allocUnsafe(10);
      const value = v.subarray(0, putVarint64(v, 0, Number(op.coin.value & 0xffffffffn), Number(op.coin.value >> 32n)));
      parts.push(varint(op.outpoint.readUInt32BE(32)), varint(op.coin.height * 2 + (op.coin.coinbase ? 1 : 0)), value);
      const script = op.coin.script;
      const tpl = templateOf(script, 0, script.length);
      if (tpl < 0) parts.push(varint(script.length + RAW), script);
      else parts.push(Buffer.of(tpl), script.subarray(TEMPLATES[tpl]![0].length, TEMPLATES[tpl]![0].length + TEMPLATES[tpl]![1]));
      i++;
      continue;
    }
    // A run: the following created coins of the same txid, vouts rising.
    const txid = op.outpoint.subarray(0, 32);
    const vouts = [op.outpoint.readUInt32BE(32)];
    for (i++; i < ops.length; i++) {
      const next = ops[i]!;
      if (!next.added || !next.outpoint.subarray(0, 32).equals(txid) || next.outpoint.readUInt32BE(32) <= vouts.at(-1)!) break;
      vouts.push(next.outpoint.readUInt32BE(32));
    }
    if (vouts.every((v, k) => v === k)) {
      parts.push(Buffer.of(RUN), txid, varint(vouts.length));
    } else {
      parts.push(Buffer.of(RUN_LISTED), txid, varint(vouts.length), ...vouts.map((v, k) => varint(k === 0 ? v : v - vouts[k - 1]! - 1)));
    }
  }
  parts.push(Buffer.of(END), varint(u.kv.length));
  for (const { key, prior } of u.kv) {
    parts.push(varint(key.length), key, varint(prior ? prior.length + 1 : 0));
    if (prior) parts.push(prior);
  }
  return Buffer.concat(parts);
}

/** Decodes an undo record of either format; it must be consumed exactly, or it is corrupt. */
export function decodeUndo(raw: Uint8Array): UndoRecord {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length >= 4 && b.readUInt32LE(0) === MARK) return decodeFormat2(b);
  return decodeFormat1(b);
}

/** Format 2 (see the top of this file). */
function decodeFormat2(b: Buffer): UndoRecord {
  let o = 4;
  const need = (n: number): void => {
    if (o + n > b.length) throw new CorruptRecordError('undo');
  };
  need(1);
  if (b[o++] !== FORMAT) throw new CorruptRecordError(`undo (format ${b[o - 1]} is not one this nodereg knows)`);
  const int = (): number => {
    let v = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      need(1);
      const x = b[o++]!;
      v += (x & 0x7f) * 2 ** shift;
      if (x < 0x80) {
        if (v > 0xffffffff) break;
        return v;
      }
    }
    throw new CorruptRecordError('undo (bad varint)');
  };
  const int64 = (): bigint => {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      need(1);
      const x = b[o++]!;
      v |= BigInt(x & 0x7f) << shift;
      if (x < 0x80) {
        if (v > 0xffffffffffffffffn) break;
        return v;
      }
    }
    throw new CorruptRecordError('undo (bad varint)');
  };
  const bytes = (n: number): Buffer => {
    need(n);
    const out = Buffer.from(b.subarray(o, o + n));
    o += n;
    return out;
  };
  const outpoint = (txid: Buffer, vout: number): Buffer => {
    const op = Buffer.allocUnsafe(36);
    txid.copy(op, 0);
    op.writeUInt32BE(vout, 32);
    return op;
  };
  const coinOps: CoinOp[] = [];
  let lastSpent: Buffer | null = null;
  for (;;) {
    need(1);
    const kind = b[o++]!;
    if (kind === END) break;
    if (kind === SPENT || kind === SPENT_SAME) {
      if (kind === SPENT) lastSpent = bytes(32);
      else if (lastSpent === null) throw new CorruptRecordError('undo (a spent coin repeats a txid before any)');
      const vout = int();
      const code = int();
      const value = int64();
      const s = int();
      let script: Buffer;
      if (s >= RAW) {
        script = bytes(s - RAW);
      } else {
        const [pre, len, post] = TEMPLATES[s]!;
        script = Buffer.concat([Buffer.from(pre), bytes(len), Buffer.from(post)]);
      }
      coinOps.push({ added: false, outpoint: outpoint(lastSpent!, vout), coin: { value, height: code >>> 1, coinbase: (code & 1) === 1, script } });
    } else if (kind === RUN || kind === RUN_LISTED) {
      const txid = bytes(32);
      const n = int();
      if (n === 0) throw new CorruptRecordError('undo (an empty run of created coins)');
      let vout = -1;
      for (let k = 0; k < n; k++) {
        vout = kind === RUN ? k : vout + 1 + int();
        if (vout > 0xffffffff) throw new CorruptRecordError('undo (vout out of range)');
        coinOps.push({ added: true, outpoint: outpoint(txid, vout) });
      }
    } else {
      throw new CorruptRecordError(`undo (unknown coin entry ${kind})`);
    }
  }
  const nKv = int();
  const kv: UndoRecord['kv'] = [];
  for (let i = 0; i < nKv; i++) {
    const key = bytes(int());
    const len = int();
    kv.push({ key, prior: len === 0 ? null : bytes(len - 1) });
  }
  if (o !== b.length) throw new CorruptRecordError('undo (trailing bytes)');
  return { coinOps, kv };
}

/** Format 1: `u32le n ‖ n × coin op ‖ u32le m ‖ m × row`, written by earlier versions. */
function decodeFormat1(b: Buffer): UndoRecord {
  let o = 0;
  const need = (n: number): void => {
    if (o + n > b.length) throw new CorruptRecordError('undo');
  };
  need(4);
  const nOps = b.readUInt32LE(o); o += 4;
  const coinOps: CoinOp[] = [];
  for (let i = 0; i < nOps; i++) {
    need(37);
    const added = b[o] === 1; o += 1;
    const outpoint = Buffer.from(b.subarray(o, o + 36)); o += 36;
    if (added) {
      coinOps.push({ added, outpoint });
    } else {
      need(4);
      const len = b.readUInt32LE(o); o += 4;
      need(len);
      coinOps.push({ added, outpoint, coin: decodeCoin(Buffer.from(b.subarray(o, o + len))) });
      o += len;
    }
  }
  need(4);
  const nKv = b.readUInt32LE(o); o += 4;
  const kv: UndoRecord['kv'] = [];
  for (let i = 0; i < nKv; i++) {
    need(2);
    const klen = b.readUInt16LE(o); o += 2;
    need(klen + 1);
    const key = Buffer.from(b.subarray(o, o + klen)); o += klen;
    const present = b[o] === 1; o += 1;
    let prior: Buffer | null = null;
    if (present) {
      need(4);
      const len = b.readUInt32LE(o); o += 4;
      need(len);
      prior = Buffer.from(b.subarray(o, o + len)); o += len;
    }
    kv.push({ key, prior });
  }
  if (o !== b.length) throw new CorruptRecordError('undo (trailing bytes)');
  return { coinOps, kv };
}
