import { CorruptRecordError, decodeCoin, encodeCoin } from './codec.js';
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

/**
 * Builds an undo record in `encodeUndo`'s bytes straight from the connect's
 * words, without a CoinOp or bigint per coin: `start`, then `added` and
 * `spent` in the order the block moves its coins, then `finish` with the
 * registry rows' priors. One writer is reused block after block; `finish`
 * returns a copy of exactly the record's bytes.
 */
export class UndoWriter {
  private buf = Buffer.allocUnsafe(1 << 16);
  private at = 4;
  private ops = 0;

  start(): this {
    this.at = 4;
    this.ops = 0;
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

  /** The block created txid `t[at..at+32)`:vout. */
  added(t: Uint8Array, at: number, vout: number): void {
    const b = this.room(37);
    const p = this.at;
    b[p] = 1;
    for (let k = 0; k < 32; k++) b[p + 1 + k] = t[at + k]!;
    b.writeUInt32BE(vout, p + 33);
    this.at = p + 37;
    this.ops++;
  }

  /** The block spent txid `t[at..at+32)`:vout, a coin of value hi·2³² + lo, stored code (height·2 + coinbase) and script `id` of `scripts`. */
  spent(t: Uint8Array, at: number, vout: number, lo: number, hi: number, code: number, scripts: ScriptBytes, id: number): void {
    const n = scripts.lengthOf(id);
    const b = this.room(53 + n);
    const p = this.at;
    b[p] = 0;
    for (let k = 0; k < 32; k++) b[p + 1 + k] = t[at + k]!;
    b.writeUInt32BE(vout, p + 33);
    b.writeUInt32LE(12 + n, p + 37);
    b.writeUInt32LE(lo, p + 41);
    b.writeUInt32LE(hi, p + 45);
    b.writeUInt32LE(code, p + 49);
    scripts.copyTo(id, b, p + 53);
    this.at = p + 53 + n;
    this.ops++;
  }

  finish(kv: UndoRecord['kv']): Buffer {
    this.buf.writeUInt32LE(this.ops, 0);
    let n = 4;
    for (const { key, prior } of kv) n += 2 + key.length + 1 + (prior ? 4 + prior.length : 0);
    const b = this.room(n);
    let p = b.writeUInt32LE(kv.length, this.at);
    for (const { key, prior } of kv) {
      p = b.writeUInt16LE(key.length, p);
      b.set(key, p);
      p += key.length;
      b[p++] = prior ? 1 : 0;
      if (prior) {
        p = b.writeUInt32LE(prior.length, p);
        b.set(prior, p);
        p += prior.length;
      }
    }
    const out = Buffer.allocUnsafe(p);
    b.copy(out, 0, 0, p);
    return out;
  }
}

export function encodeUndo(u: UndoRecord): Buffer {
  const parts: Buffer[] = [];
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(u.coinOps.length, 0);
  parts.push(head);
  for (const op of u.coinOps) {
    if (op.added) {
      parts.push(Buffer.of(1), op.outpoint);
    } else {
      const coin = encodeCoin(op.coin);
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32LE(coin.length, 0);
      parts.push(Buffer.of(0), op.outpoint, len, coin);
    }
  }
  const kvHead = Buffer.allocUnsafe(4);
  kvHead.writeUInt32LE(u.kv.length, 0);
  parts.push(kvHead);
  for (const { key, prior } of u.kv) {
    const h = Buffer.allocUnsafe(2 + key.length + 1 + (prior ? 4 : 0));
    h.writeUInt16LE(key.length, 0);
    h.set(key, 2);
    h[2 + key.length] = prior ? 1 : 0;
    if (prior) h.writeUInt32LE(prior.length, 3 + key.length);
    parts.push(h);
    if (prior) parts.push(prior);
  }
  return Buffer.concat(parts);
}

/** Decodes an undo record; it must be consumed exactly, or it is corrupt. */
export function decodeUndo(raw: Uint8Array): UndoRecord {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
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
