import { reasonFromByte, reasonToByte, type ReasonCode } from '../../script/reasons.js';
import type { Hash32, Subtree } from '../../script/prooftree.js';
import type { RootElement } from '../../script/root.js';
import type { Coin, EventKind, Outcome, RegStatus, Registration, RegistryEvent, Tip } from '../types.js';

/*
 * Value encodings of the stored rows. Every decoder checks that it consumed
 * exactly the bytes it was given: a short or long value is corruption, and is
 * reported rather than guessed around.
 */

export class CorruptRecordError extends Error {
  constructor(what: string) {
    super(`corrupt ${what} record in the database; run the recount again into a fresh --db`);
    this.name = 'CorruptRecordError';
  }
}

const NONE = 0xffffffff;

/**
 * The value of a row whose key says everything: a script-index row ('o')
 * and an expiry row ('x'). It is one byte, not none, because classic-level 3
 * copies an empty value into a zero-length native allocation that it never
 * frees: 32 bytes of heap lost per row written, some 440 MiB over a
 * 10M-transaction `recount --db`. Readers look only at these rows' keys, so
 * rows that older builds wrote empty read the same. Never written into.
 */
export const KEY_ONLY_VALUE: Buffer = Buffer.from([0]);

export function encodeCoin(c: Coin): Buffer {
  const b = Buffer.allocUnsafe(12 + c.script.length);
  b.writeBigUInt64LE(c.value, 0);
  b.writeUInt32LE(c.height * 2 + (c.coinbase ? 1 : 0), 8);
  b.set(c.script, 12);
  return b;
}

export function decodeCoin(b: Uint8Array): Coin {
  if (b.length < 12) throw new CorruptRecordError('coin');
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const code = buf.readUInt32LE(8);
  return { value: buf.readBigUInt64LE(0), height: code >>> 1, coinbase: (code & 1) === 1, script: buf.subarray(12) };
}

/**
 * A coin row written into `out` from offset 0 (it must hold 12 + script
 * bytes), from the value's 32-bit words and the stored code (height·2 +
 * coinbase): the spill's form, without a bigint or an allocation per coin.
 */
export function encodeCoinInto(out: Buffer, lo: number, hi: number, code: number, script: Uint8Array): Buffer {
  out.writeUInt32LE(lo, 0);
  out.writeUInt32LE(hi, 4);
  out.writeUInt32LE(code, 8);
  out.set(script, 12);
  return out.subarray(0, 12 + script.length);
}

/** Writes a coin's value words and code, the part of its row before the script (which goes at `COIN_SCRIPT_AT`). */
export function encodeCoinHead(out: Buffer, lo: number, hi: number, code: number, at = 0): void {
  out.writeUInt32LE(lo, at);
  out.writeUInt32LE(hi, at + 4);
  out.writeUInt32LE(code, at + 8);
}

/** The words `encodeCoinInto` takes, read back from a stored coin; its script is a view from offset `COIN_SCRIPT_AT`. */
export function coinWords(b: Buffer): { lo: number; hi: number; code: number } {
  if (b.length < 12) throw new CorruptRecordError('coin');
  return { lo: b.readUInt32LE(0), hi: b.readUInt32LE(4), code: b.readUInt32LE(8) };
}
export const COIN_SCRIPT_AT = 12;

export function encodeAmount(v: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64LE(v, 0);
  return b;
}

export function decodeAmount(b: Uint8Array): bigint {
  if (b.length !== 8) throw new CorruptRecordError('balance');
  return Buffer.from(b.buffer, b.byteOffset, 8).readBigUInt64LE(0);
}

export function encodeTip(t: Tip): Buffer {
  const b = Buffer.allocUnsafe(36);
  b.writeUInt32LE(t.height, 0);
  b.set(t.hash, 4);
  return b;
}

export function decodeTip(b: Uint8Array): Tip {
  if (b.length !== 36) throw new CorruptRecordError('tip');
  const buf = Buffer.from(b);
  return { height: buf.readUInt32LE(0), hash: buf.subarray(4) };
}

const STATUS: RegStatus[] = ['active', 'expired', 'lapsed'];

export function encodeRegistration(r: Registration): Buffer {
  const n = r.stakeScript.length;
  const b = Buffer.allocUnsafe(2 + n + 4 + 4 + 32 + 4 + 32 + 8 + 4 + 4 + 1 + 4);
  let o = b.writeUInt16LE(n, 0);
  b.set(r.stakeScript, o); o += n;
  o = b.writeUInt32LE(r.firstHeight, o);
  o = b.writeUInt32LE(r.firstIndex, o);
  b.set(r.firstTxid, o); o += 32;
  o = b.writeUInt32LE(r.tipHeight, o);
  b.set(r.tipTxid, o); o += 32;
  o = b.writeBigUInt64LE(BigInt(r.timestamp), o);
  o = b.writeUInt32LE(r.renewals, o);
  o = b.writeUInt32LE(r.expiryHeight, o);
  o = b.writeUInt8(STATUS.indexOf(r.status), o);
  b.writeUInt32LE(r.endedHeight ?? NONE, o);
  return b;
}

/** The stake script of a registration record, without decoding the rest. */
export function registrationScript(raw: Uint8Array): Buffer {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length < 2 || b.length !== 2 + b.readUInt16LE(0) + 97) throw new CorruptRecordError('registration');
  return Buffer.from(b.subarray(2, 2 + b.readUInt16LE(0)));
}

export function decodeRegistration(raw: Uint8Array): Registration {
  const b = Buffer.from(raw);
  if (b.length < 2) throw new CorruptRecordError('registration');
  const n = b.readUInt16LE(0);
  if (b.length !== 2 + n + 97) throw new CorruptRecordError('registration');
  let o = 2 + n;
  const stakeScript = b.subarray(2, o);
  const firstHeight = b.readUInt32LE(o); o += 4;
  const firstIndex = b.readUInt32LE(o); o += 4;
  const firstTxid = b.subarray(o, o + 32); o += 32;
  const tipHeight = b.readUInt32LE(o); o += 4;
  const tipTxid = b.subarray(o, o + 32); o += 32;
  const timestamp = Number(b.readBigUInt64LE(o)); o += 8;
  const renewals = b.readUInt32LE(o); o += 4;
  const expiryHeight = b.readUInt32LE(o); o += 4;
  const status = STATUS[b[o]!]; o += 1;
  const ended = b.readUInt32LE(o);
  if (status === undefined) throw new CorruptRecordError('registration');
  return {
    stakeScript, firstHeight, firstIndex, firstTxid, tipHeight, tipTxid, timestamp, renewals, expiryHeight,
    status, endedHeight: ended === NONE ? null : ended,
  };
}

/** Event kinds in the order they sort within one block. */
export const EVENT_KINDS: EventKind[] = ['registered', 'renewed', 'expired', 'lapsed'];
export const END_OF_BLOCK = NONE;

export function encodeEvent(e: RegistryEvent): Buffer {
  const b = Buffer.alloc(4 + 4 + 32 + 8 + 4);
  b.writeUInt32LE(e.firstHeight, 0);
  b.writeUInt32LE(e.firstIndex, 4);
  if (e.txid) b.set(e.txid, 8);
  b.writeBigUInt64LE(BigInt(e.timestamp), 40);
  b.writeUInt32LE(e.expiryHeight, 48);
  return b;
}

/** Events are split between key (height, txIndex, kind) and value. */
export function decodeEvent(height: number, txIndex: number, kindByte: number, raw: Uint8Array): RegistryEvent {
  const b = Buffer.from(raw);
  const kind = EVENT_KINDS[kindByte];
  if (b.length !== 52 || kind === undefined) throw new CorruptRecordError('event');
  const txid = b.subarray(8, 40);
  return {
    kind, height, txIndex,
    firstHeight: b.readUInt32LE(0), firstIndex: b.readUInt32LE(4),
    txid: txIndex === END_OF_BLOCK ? null : txid,
    timestamp: Number(b.readBigUInt64LE(40)), expiryHeight: b.readUInt32LE(48),
  };
}

const KINDS = [null, 'newnode', 'renewal'] as const;
const ACCEPTED = 0xff;

export function encodeOutcome(o: Outcome): Buffer {
  const b = Buffer.allocUnsafe(10);
  b.writeUInt32LE(o.height, 0);
  b.writeUInt32LE(o.txIndex, 4);
  b[8] = KINDS.indexOf(o.kind);
  b[9] = o.reason === null ? ACCEPTED : reasonToByte(o.reason as ReasonCode);
  return b;
}

export function decodeOutcome(vout: number, raw: Uint8Array): Outcome {
  const b = Buffer.from(raw);
  if (b.length !== 10 || b[8]! > 2) throw new CorruptRecordError('outcome');
  return {
    height: b.readUInt32LE(0), txIndex: b.readUInt32LE(4), vout, kind: KINDS[b[8]!]!,
    reason: b[9] === ACCEPTED ? null : reasonFromByte(b[9]!),
  };
}

export function encodeRejected(txid: Uint8Array, reason: ReasonCode): Buffer {
  const b = Buffer.allocUnsafe(33);
  b.set(txid, 0);
  b[32] = reasonToByte(reason);
  return b;
}

export function decodeRejected(raw: Uint8Array): { txid: Buffer; reason: ReasonCode } {
  const b = Buffer.from(raw);
  if (b.length !== 33) throw new CorruptRecordError('rejected');
  return { txid: b.subarray(0, 32), reason: reasonFromByte(b[32]!) };
}

/** The root element (docs/spec.md §2.6) of a registration: what both the registry root and the proof tree commit to. */
export function rootElement(r: Registration): RootElement {
  return {
    stakeScript: r.stakeScript, firstHeight: r.firstHeight, firstTxid: r.firstTxid,
    tipHeight: r.tipHeight, tipTxid: r.tipTxid, timestamp: r.timestamp, renewals: r.renewals,
  };
}

/** What is stored per height under 'S'. */
export interface HeightState {
  /** The registry root's MuHash state (768 bytes). */
  readonly registry: Buffer;
  /** The proof tree's root (32 bytes, docs/spec.md §2.9). */
  readonly proofRoot: Buffer;
  /** The UTXO-set MuHash state (768 bytes), when the index keeps one. */
  readonly utxo: Buffer | null;
}

const MUHASH_STATE = 768;
const PROOF_ROOT = 32;

/** `registry(768) ‖ proofRoot(32) ‖ [utxo(768)]`. */
export function encodeHeightState(s: HeightState): Buffer {
  return Buffer.concat(s.utxo ? [s.registry, s.proofRoot, s.utxo] : [s.registry, s.proofRoot]);
}

export function decodeHeightState(raw: Uint8Array): HeightState {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const base = MUHASH_STATE + PROOF_ROOT;
  if (b.length !== base && b.length !== base + MUHASH_STATE) throw new CorruptRecordError('per-height state');
  return {
    registry: b.subarray(0, MUHASH_STATE),
    proofRoot: b.subarray(MUHASH_STATE, base),
    utxo: b.length > base ? b.subarray(base) : null,
  };
}

/** A proof-tree leaf row ('k'): its value, or empty once the key has no leaf. */
export function encodeProofLeaf(value: Hash32 | null): Buffer {
  return value === null ? Buffer.alloc(0) : Buffer.from(value, 'latin1');
}

export function decodeProofLeaf(raw: Uint8Array): Hash32 | null {
  if (raw.length !== 0 && raw.length !== 32) throw new CorruptRecordError('proof leaf');
  return raw.length === 0 ? null : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('latin1');
}

/** A proof subtree row ('n'): 0 (empty) | 1 ‖ key(32) ‖ value(32) (a lone leaf) | 2 ‖ hash(32) (a branch). */
export function encodeSubtree(s: Subtree): Buffer {
  if (s.kind === 'empty') return Buffer.of(0);
  if (s.kind === 'leaf') return Buffer.concat([Buffer.of(1), Buffer.from(s.key, 'latin1'), Buffer.from(s.value, 'latin1')]);
  return Buffer.concat([Buffer.of(2), Buffer.from(s.hash, 'latin1')]);
}

export function decodeSubtree(raw: Uint8Array): Subtree {
  const b = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  if (b.length === 1 && b[0] === 0) return { kind: 'empty' };
  if (b.length === 65 && b[0] === 1) return { kind: 'leaf', key: b.toString('latin1', 1, 33), value: b.toString('latin1', 33, 65) };
  if (b.length === 33 && b[0] === 2) return { kind: 'branch', hash: b.toString('latin1', 1, 33) };
  throw new CorruptRecordError('proof subtree');
}
