/**
 * The registry root (docs/spec.md §2.6): a MuHash3072 over the live registrations,
 * each serialized in one fixed byte layout so that independent recounts of
 * the same chain print the same root.
 */
import { compactSizeLength, writeCompactSize } from './bytes.js';
import { MuHash3072 } from './muhash.js';

/** One live registration, as committed to by the root. */
export interface RootElement {
  stakeScript: Uint8Array;
  firstHeight: number;
  /** 32 bytes, internal (hashing) order, not RPC display order. */
  firstTxid: Uint8Array;
  tipHeight: number;
  /** 32 bytes, internal order. */
  tipTxid: Uint8Array;
  timestamp: number;
  renewals: number;
}

const TXID_BYTES = 32;
/** u32 firstHeight + txid + u32 tipHeight + txid + u64 timestamp + u32 renewals. */
const FIXED_TAIL_BYTES = 4 + TXID_BYTES + 4 + TXID_BYTES + 8 + 4;

function checkU32(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`${name} is not a u32: ${v}`);
}

function checkTxid(name: string, v: Uint8Array): void {
  if (v.length !== TXID_BYTES) throw new RangeError(`${name} must be ${TXID_BYTES} bytes, got ${v.length}`);
}

/**
 * The element's bytes as hashed into the root:
 * compactSize(len) ‖ stakeScript ‖ u32le firstHeight ‖ firstTxid ‖ u32le tipHeight ‖
 * tipTxid ‖ u64le timestamp ‖ u32le renewals.
 * Every field is validated, because a value that silently wrapped would
 * produce a root no other implementation agrees with.
 */
export function serializeRootElement(e: RootElement): Buffer {
  checkU32('firstHeight', e.firstHeight);
  checkU32('tipHeight', e.tipHeight);
  checkU32('renewals', e.renewals);
  checkTxid('firstTxid', e.firstTxid);
  checkTxid('tipTxid', e.tipTxid);
  if (!Number.isSafeInteger(e.timestamp) || e.timestamp < 0) {
    throw new RangeError(`timestamp is not a non-negative safe integer: ${e.timestamp}`);
  }
  const scriptLen = e.stakeScript.length;
  const out = Buffer.allocUnsafe(compactSizeLength(scriptLen) + scriptLen + FIXED_TAIL_BYTES);
  let o = writeCompactSize(out, 0, scriptLen);
  out.set(e.stakeScript, o);
  o += scriptLen;
  o = out.writeUInt32LE(e.firstHeight, o);
  out.set(e.firstTxid, o);
  o += TXID_BYTES;
  o = out.writeUInt32LE(e.tipHeight, o);
  out.set(e.tipTxid, o);
  o += TXID_BYTES;
  o = out.writeBigUInt64LE(BigInt(e.timestamp), o);
  out.writeUInt32LE(e.renewals, o);
  return out;
}

/**
 * The registry root accumulator. The indexer inserts on register, removes
 * the old element and inserts the new one on renew, removes on expiry or
 * lapse, and undoes a block by the inverse operations (or by restoring a
 * serialized snapshot).
 */
export class RegistryRoot {
  private readonly hash: MuHash3072;

  /** The empty registry, or one wrapping an existing accumulator (which it then owns). */
  constructor(hash: MuHash3072 = new MuHash3072()) {
    this.hash = hash;
  }

  insert(e: RootElement): this {
    this.hash.insert(serializeRootElement(e));
    return this;
  }

  remove(e: RootElement): this {
    this.hash.remove(serializeRootElement(e));
    return this;
  }

  /** The printed root: lowercase hex of the 32 finalized bytes, in raw order (not reversed like a txid). */
  finalize(): string {
    return this.hash.finalize().toString('hex');
  }

  /** 768-byte MuHash state, for storing the root alongside each height. */
  serialize(): Buffer {
    return this.hash.serialize();
  }

  /** `serialize` without the copy, the same buffer while the root does not change (MuHash3072 `serialized`): never written into. */
  serialized(): Buffer {
    return this.hash.serialized();
  }

  static deserialize(buf: Uint8Array): RegistryRoot {
    return new RegistryRoot(MuHash3072.deserialize(buf));
  }

  clone(): RegistryRoot {
    return new RegistryRoot(this.hash.clone());
  }
}
