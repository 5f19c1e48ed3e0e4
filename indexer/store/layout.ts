/**
 * Every database key of the index, in one place (docs/schema.md describes
 * each row). Keys are binary; integers are big-endian so that LevelDB's byte
 * order is numeric order, and variable-length scripts are length-prefixed so
 * that one script's range never contains another's.
 */
/** 2: the lifetime ('l') and block-time ('t') rows, and the proof root in the per-height state ('S', docs/spec.md §2.9). */
export const SCHEMA_VERSION = 2;

export const P = {
  meta: 0x4d, // 'M' + name                      -> utf8 value
  tip: 0x54, // 'T'                              -> u32le height | hash(32)
  blockHash: 0x48, // 'H' + u32be h              -> hash(32, internal order)
  heightState: 0x53, // 'S' + u32be h            -> per-height accumulators (see codec)
  undo: 0x55, // 'U' + u32be h                   -> undo record
  coin: 0x75, // 'u' + txid + u32be vout         -> coin
  balance: 0x62, // 'b' + script                 -> u64le balance
  scriptCoin: 0x6f, // 'o' + u16be len + script + txid + u32be vout -> KEY_ONLY_VALUE (codec.ts; empty from older builds)
  current: 0x72, // 'r' + script                 -> regId (current registration)
  registration: 0x67, // 'g' + regId             -> registration record
  expiry: 0x78, // 'x' + u32be expiryHeight + regId -> KEY_ONLY_VALUE (or empty), registrations not yet ended
  event: 0x65, // 'e' + u16be len + script + u32be h + u32be txIndex + u8 kind -> event
  outcome: 0x61, // 'a' + txid + u32be vout      -> announcement outcome
  rejected: 0x6a, // 'j' + u32be h + u32be txIndex + u32be vout -> txid | reason byte
  stakeBalance: 0x42, // 'B' + u16be len + script + u32be h -> u64le balance at end of block h
  firstSeen: 0x66, // 'f' + regId                -> script: every script's current registration, FIRST_SEEN order
  webhook: 0x57, // 'W' + sub-key                -> webhook delivery state (W below); written only by indexer/notify/
  blockTime: 0x74, // 't' + u32be h              -> u32le header time of block h
  lifetime: 0x6c, // 'l' + u32be endedHeight + regId -> script: every registration by the block it ended in (OPEN while live)
  stakeRejected: 0x4a, // 'J' + u16be len + script + u32be h + u32be txIndex + u32be vout -> txid | reason byte: rejected attempts that named the script
  proofLeaf: 0x6b, // 'k' + key(32) + u32be h    -> value(32), or empty: a proof-tree leaf (§2.9) as it became in block h
  proofSubtree: 0x6e, // 'n' + u8 top + u32be ~h -> summary (codec): the proof subtree under the key's first byte `top` as it became in block h (~h = 0xffffffff - h: latest first)
} as const;

/** The proof-tree rows ('k', 'n') cut the tree at this depth: one subtree per value of a key's first byte. */
export const PROOF_SUBTREE_BITS = 8;

/** The `l` rows' end height of a registration that has not ended. */
export const OPEN = 0xffffffff;

/** The second byte of a webhook row ('W' + one of these). */
export const W = {
  cursor: 0x63, // 'c'                           -> next height to derive | hash of the one before | next seq | queue id
  block: 0x62, // 'b' + u32be h                  -> hash(32) of block h as derived | JSON of its forward events
  queue: 0x71, // 'q' + u64be seq                -> event JSON, waiting for delivery
  failed: 0x66, // 'f' + u64be seq               -> event JSON | failure: given up on
} as const;

function webhookKey(sub: number, n: number, width: 4 | 8): Buffer {
  const b = Buffer.allocUnsafe(2 + width);
  b[0] = P.webhook;
  b[1] = sub;
  if (width === 4) b.writeUInt32BE(n, 2);
  else b.writeBigUInt64BE(BigInt(n), 2);
  return b;
}

/** Registrations are identified by where they began: (firstHeight, position in block). */
export type RegId = Buffer; // 8 bytes: u32be firstHeight | u32be txIndex

export function regId(firstHeight: number, txIndex: number): RegId {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(firstHeight, 0);
  b.writeUInt32BE(txIndex, 4);
  return b;
}

/** The two halves of a regId, as `regId` wrote them. */
export function regIdParts(id: RegId): { firstHeight: number; firstIndex: number } {
  return { firstHeight: id.readUInt32BE(0), firstIndex: id.readUInt32BE(4) };
}

function withHeight(prefix: number, h: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = prefix;
  b.writeUInt32BE(h, 1);
  return b;
}

/** `prefix`, a 32-byte hash (a txid or a proof-tree key), then a big-endian u32. */
function hashThenU32(prefix: number, hash: Uint8Array, n: number): Buffer {
  const b = Buffer.allocUnsafe(37);
  b[0] = prefix;
  b.set(hash, 1);
  b.writeUInt32BE(n, 33);
  return b;
}

function scriptPrefixed(prefix: number, script: Uint8Array, extra: number): Buffer {
  const b = Buffer.allocUnsafe(3 + script.length + extra);
  b[0] = prefix;
  b.writeUInt16BE(script.length, 1);
  b.set(script, 3);
  return b;
}

export const K = {
  meta: (name: string): Buffer => Buffer.concat([Buffer.of(P.meta), Buffer.from(name, 'utf8')]),
  tip: (): Buffer => Buffer.of(P.tip),
  blockHash: (h: number): Buffer => withHeight(P.blockHash, h),
  heightState: (h: number): Buffer => withHeight(P.heightState, h),
  undo: (h: number): Buffer => withHeight(P.undo, h),
  /** `outpoint` is txid(32) | u32be vout, the same 36 bytes the caches key on. */
  coin: (outpoint: Uint8Array): Buffer => {
    const b = Buffer.allocUnsafe(37);
    b[0] = P.coin;
    b.set(outpoint, 1);
    return b;
  },
  balance: (script: Uint8Array): Buffer => {
    const b = Buffer.allocUnsafe(1 + script.length);
    b[0] = P.balance;
    b.set(script, 1);
    return b;
  },
  scriptCoin: (script: Uint8Array, outpoint: Uint8Array): Buffer => {
    const b = scriptPrefixed(P.scriptCoin, script, 36);
    b.set(outpoint, 3 + script.length);
    return b;
  },
  /** The range of all 'o' rows of one script. */
  scriptCoinRange: (script: Uint8Array): { gte: Buffer; lt: Buffer } => rangeOf(scriptPrefixed(P.scriptCoin, script, 0)),
  current: (script: Uint8Array): Buffer => {
    const b = Buffer.allocUnsafe(1 + script.length);
    b[0] = P.current;
    b.set(script, 1);
    return b;
  },
  registration: (id: RegId): Buffer => Buffer.concat([Buffer.of(P.registration), id]),
  /** Registration rows of the registrations begun in blocks up to `height`, in regId order. */
  registrationsBegunBy: (height: number): { gte: Buffer; lt: Buffer } =>
    height >= 0xffffffff ? K.all(P.registration) : { gte: Buffer.of(P.registration), lt: K.registration(regId(height + 1, 0)) },
  /** `registrationsBegunBy(height)` from just after registration `id` (every row when null). */
  registrationsBegunByAfter: (height: number, id: RegId | null): { gt?: Buffer; gte?: Buffer; lt: Buffer } => {
    const range = K.registrationsBegunBy(height);
    return id === null ? range : { gt: K.registration(id), lt: range.lt };
  },
  expiry: (expiryHeight: number, id: RegId): Buffer => Buffer.concat([withHeight(P.expiry, expiryHeight), id]),
  expiryAt: (expiryHeight: number): { gte: Buffer; lt: Buffer } => rangeOf(withHeight(P.expiry, expiryHeight)),
  event: (script: Uint8Array, h: number, txIndex: number, kind: number): Buffer => {
    const b = scriptPrefixed(P.event, script, 9);
    const at = 3 + script.length;
    b.writeUInt32BE(h, at);
    b.writeUInt32BE(txIndex, at + 4);
    b[at + 8] = kind;
    return b;
  },
  eventsOf: (script: Uint8Array): { gte: Buffer; lt: Buffer } => rangeOf(scriptPrefixed(P.event, script, 0)),
  outcome: (txid: Uint8Array, vout: number): Buffer => hashThenU32(P.outcome, txid, vout),
  outcomesOf: (txid: Uint8Array): { gte: Buffer; lt: Buffer } => rangeOf(Buffer.concat([Buffer.of(P.outcome), txid])),
  rejected: (h: number, txIndex: number, vout: number): Buffer => {
    const b = Buffer.allocUnsafe(13);
    b[0] = P.rejected;
    b.writeUInt32BE(h, 1);
    b.writeUInt32BE(txIndex, 5);
    b.writeUInt32BE(vout, 9);
    return b;
  },
  stakeBalance: (script: Uint8Array, h: number): Buffer => {
    const b = scriptPrefixed(P.stakeBalance, script, 4);
    b.writeUInt32BE(h, 3 + script.length);
    return b;
  },
  stakeBalancesOf: (script: Uint8Array): { gte: Buffer; lt: Buffer } => rangeOf(scriptPrefixed(P.stakeBalance, script, 0)),
  firstSeen: (id: RegId): Buffer => Buffer.concat([Buffer.of(P.firstSeen), id]),
  blockTime: (h: number): Buffer => withHeight(P.blockTime, h),
  /** Header times of blocks from..to, both included. */
  blockTimes: (from: number, to: number): { gte: Buffer; lte: Buffer } => ({ gte: withHeight(P.blockTime, from), lte: withHeight(P.blockTime, to) }),
  lifetime: (endedHeight: number, id: RegId): Buffer => Buffer.concat([withHeight(P.lifetime, endedHeight), id]),
  /** Lifetime rows of registrations that ended after block `height` or are still open: those live at `height` or later. */
  lifetimesEndingAfter: (height: number): { gte: Buffer; lt: Buffer } =>
    ({ gte: withHeight(P.lifetime, Math.min(height + 1, OPEN)), lt: Buffer.of(P.lifetime + 1) }),
  /**
   * Lifetime rows of the registrations still open, begun in blocks up to
   * `begunBy`, from just after registration `id` (from the first when null):
   * their key is `OPEN ‖ regId`, so this is FIRST_SEEN order.
   */
  openLifetimesAfter: (id: RegId | null, begunBy: number): { gt?: Buffer; gte?: Buffer; lt: Buffer } => {
    const open = withHeight(P.lifetime, OPEN);
    const lt = begunBy >= 0xffffffff ? Buffer.of(P.lifetime + 1) : Buffer.concat([open, regId(begunBy + 1, 0)]);
    return id === null ? { gte: open, lt } : { gt: Buffer.concat([open, id]), lt };
  },
  /** Lifetime rows of the registrations that ended in a block after `height`: none above the tip, so none at the tip. */
  lifetimesEndedAfter: (height: number): { gte: Buffer; lt: Buffer } =>
    ({ gte: withHeight(P.lifetime, Math.min(height + 1, OPEN)), lt: withHeight(P.lifetime, OPEN) }),
  /** FIRST_SEEN rows after registration `id` (every row when null), in order. */
  firstSeenAfter: (id: RegId | null): { gt?: Buffer; gte?: Buffer; lt: Buffer } =>
    id === null ? K.all(P.firstSeen) : { gt: K.firstSeen(id), lt: Buffer.of(P.firstSeen + 1) },
  stakeRejected: (script: Uint8Array, h: number, txIndex: number, vout: number): Buffer => {
    const b = scriptPrefixed(P.stakeRejected, script, 12);
    const at = 3 + script.length;
    b.writeUInt32BE(h, at);
    b.writeUInt32BE(txIndex, at + 4);
    b.writeUInt32BE(vout, at + 8);
    return b;
  },
  /** The 'J' rows of one script, in chain order. */
  stakeRejectedOf: (script: Uint8Array): { gte: Buffer; lt: Buffer } => rangeOf(scriptPrefixed(P.stakeRejected, script, 0)),
  /** Rejected rows of blocks up to `height`, in (height, txIndex, vout) order. */
  rejectedUpTo: (height: number): { gte: Buffer; lt: Buffer } =>
    height >= 0xffffffff ? K.all(P.rejected) : { gte: Buffer.of(P.rejected), lt: withHeight(P.rejected, height + 1) },
  webhookCursor: (): Buffer => Buffer.of(P.webhook, W.cursor),
  webhookBlock: (h: number): Buffer => webhookKey(W.block, h, 4),
  /** Derived blocks from height `from` on. */
  webhookBlocksFrom: (from: number): { gte: Buffer; lt: Buffer } => ({ gte: webhookKey(W.block, from, 4), lt: Buffer.of(P.webhook, W.block + 1) }),
  webhookQueue: (seq: number): Buffer => webhookKey(W.queue, seq, 8),
  webhookQueued: (): { gte: Buffer; lt: Buffer } => rangeOf(Buffer.of(P.webhook, W.queue)),
  webhookFailed: (seq: number): Buffer => webhookKey(W.failed, seq, 8),
  webhookFailures: (): { gte: Buffer; lt: Buffer } => rangeOf(Buffer.of(P.webhook, W.failed)),
  /** `key` is a proof-tree key (SHA256 of a stake script, 32 bytes). */
  proofLeaf: (key: Uint8Array, h: number): Buffer => hashThenU32(P.proofLeaf, key, h),
  /** Every 'k' row of the keys whose first byte is `top`, by key then height. */
  proofLeavesUnder: (top: number): { gte: Buffer; lt: Buffer } => rangeOf(Buffer.of(P.proofLeaf, top)),
  proofSubtree: (top: number, h: number): Buffer => {
    const b = Buffer.allocUnsafe(6);
    b[0] = P.proofSubtree;
    b[1] = top;
    b.writeUInt32BE(0xffffffff - h, 2);
    return b;
  },
  /**
   * The 'n' rows of subtree `top` up to block `h`, latest first: the first
   * is its state at `h`. (Heights are stored inverted because a forward
   * seek is far cheaper in LevelDB than a reverse one past a range's end.)
   */
  proofSubtreeUpTo: (top: number, h: number): { gte: Buffer; lt: Buffer } => ({ gte: K.proofSubtree(top, h), lt: rangeOf(Buffer.of(P.proofSubtree, top)).lt }),
  /** Every key under a one-byte prefix. */
  all: (prefix: number): { gte: Buffer; lt: Buffer } => ({ gte: Buffer.of(prefix), lt: Buffer.of(prefix + 1) }),
};

/** Where a spill's keys take scripts from (the coin view's script table) without a view per script. */
export interface ScriptBytes {
  lengthOf(id: number): number;
  copyTo(id: number, out: Uint8Array, at: number): void;
}

/**
 * Keys of the rows a spill writes by the million, built in reused buffers
 * instead of one allocation each: one buffer per key length, so that a key
 * is a whole buffer, not a view. A key is valid until the next call that
 * builds one of the same length: for a chained batch or a synchronous get,
 * which copy it at once.
 */
export class KeyScratch {
  private readonly byLength: Buffer[] = [];

  /** A reused buffer of exactly `n` bytes (long ones are not kept). */
  private exact(n: number): Buffer {
    let b = this.byLength[n];
    if (b === undefined) {
      b = Buffer.allocUnsafe(n);
      if (n <= 1024) this.byLength[n] = b;
    }
    return b;
  }

  /** As `K.coin`, from txid `t[at..at+32)` and vout. */
  coin(t: Uint8Array, at: number, vout: number): Buffer {
    const b = this.exact(37);
    b[0] = P.coin;
    for (let k = 0; k < 32; k++) b[1 + k] = t[at + k]!;
    b.writeUInt32BE(vout, 33);
    return b;
  }

  /** As `K.coin`, from the outpoint `op[at..at+36)` as a key holds it (txid, u32be vout). */
  coinAt(op: Uint8Array, at: number): Buffer {
    const b = this.exact(37);
    b[0] = P.coin;
    for (let k = 0; k < 36; k++) b[1 + k] = op[at + k]!;
    return b;
  }

  /** As `K.scriptCoin`. */
  scriptCoin(script: Uint8Array, outpoint: Uint8Array): Buffer {
    const b = this.exact(3 + script.length + 36);
    b[0] = P.scriptCoin;
    b.writeUInt16BE(script.length, 1);
    b.set(script, 3);
    b.set(outpoint.subarray(0, 36), 3 + script.length);
    return b;
  }

  /** As `K.scriptCoin`, for script `id` of `scripts` and the outpoint at `op[at..at+36)`. */
  scriptCoinOf(scripts: ScriptBytes, id: number, op: Uint8Array, at: number): Buffer {
    const n = scripts.lengthOf(id);
    const b = this.exact(3 + n + 36);
    b[0] = P.scriptCoin;
    b[1] = n >>> 8;
    b[2] = n & 0xff;
    scripts.copyTo(id, b, 3);
    for (let k = 0; k < 36; k++) b[3 + n + k] = op[at + k]!;
    return b;
  }

  /** As `K.balance`. */
  balance(script: Uint8Array): Buffer {
    const b = this.exact(1 + script.length);
    b[0] = P.balance;
    b.set(script, 1);
    return b;
  }

  /** As `K.balance`, for script `id` of `scripts`. */
  balanceOf(scripts: ScriptBytes, id: number): Buffer {
    const b = this.exact(1 + scripts.lengthOf(id));
    b[0] = P.balance;
    scripts.copyTo(id, b, 1);
    return b;
  }
}

/** The outpoint (txid | u32be vout) a coin key ('u') names: a view into the key. */
export const coinKeyOutpoint = (k: Buffer): Buffer => k.subarray(1, 37);

/** The one-byte prefix (`P`) a stored key begins with, or null for an empty key. */
export const prefixOf = (k: Uint8Array): number | null => (k.length === 0 ? null : k[0]!);

/**
 * The fields of stored keys, read back by byte offset: the only place besides
 * `K` that knows where a key keeps what. Returned buffers are views into the key.
 */
export const parse = {
  meta: (k: Buffer): { name: string } => ({ name: k.subarray(1).toString('utf8') }),
  /** The height of a per-height row ('H', 'S', 'U'). */
  height: (k: Buffer): { height: number } => ({ height: k.readUInt32BE(1) }),
  current: (k: Buffer): { script: Buffer } => ({ script: k.subarray(1) }),
  expiry: (k: Buffer): { expiryHeight: number; id: RegId } => ({ expiryHeight: k.readUInt32BE(1), id: k.subarray(5) }),
  firstSeen: (k: Buffer): { id: RegId } => ({ id: k.subarray(1) }),
  lifetime: (k: Buffer): { endedHeight: number; firstHeight: number; firstIndex: number } =>
    ({ endedHeight: k.readUInt32BE(1), firstHeight: k.readUInt32BE(5), firstIndex: k.readUInt32BE(9) }),
  /** The regId of a lifetime row: a view into the key. */
  lifetimeId: (k: Buffer): RegId => k.subarray(5, 13),
  event: (k: Buffer): { script: Buffer; height: number; txIndex: number; kind: number } => {
    const at = 3 + k.readUInt16BE(1);
    return { script: k.subarray(3, at), height: k.readUInt32BE(at), txIndex: k.readUInt32BE(at + 4), kind: k[at + 8]! };
  },
  stakeBalance: (k: Buffer): { script: Buffer; height: number } => {
    const at = 3 + k.readUInt16BE(1);
    return { script: k.subarray(3, at), height: k.readUInt32BE(at) };
  },
  rejected: (k: Buffer): { height: number; txIndex: number; vout: number } => ({ height: k.readUInt32BE(1), txIndex: k.readUInt32BE(5), vout: k.readUInt32BE(9) }),
  stakeRejected: (k: Buffer): { script: Buffer; height: number; txIndex: number; vout: number } => {
    const at = 3 + k.readUInt16BE(1);
    return { script: k.subarray(3, at), height: k.readUInt32BE(at), txIndex: k.readUInt32BE(at + 4), vout: k.readUInt32BE(at + 8) };
  },
  proofLeaf: (k: Buffer): { key: Buffer; height: number } => ({ key: k.subarray(1, 33), height: k.readUInt32BE(33) }),
  proofSubtree: (k: Buffer): { top: number; height: number } => ({ top: k[1]!, height: 0xffffffff - k.readUInt32BE(2) }),
  webhookBlock: (k: Buffer): { height: number } => ({ height: k.readUInt32BE(2) }),
  webhookSeq: (k: Buffer): { seq: number } => ({ seq: Number(k.readBigUInt64BE(2)) }),
  coin: (k: Buffer): { txid: Buffer; vout: number } => ({ txid: k.subarray(1, 33), vout: k.readUInt32BE(33) }),
  /** An outpoint as keys embed it (`outpoint`: txid | u32be vout), not a key itself. */
  outpoint: (op: Buffer): { txid: Buffer; vout: number } => ({ txid: op.subarray(0, 32), vout: op.readUInt32BE(32) }),
  /** A registration row ('g'): its regId (a view into the key) and the two halves of it. */
  registration: (k: Buffer): { id: RegId; firstHeight: number; firstIndex: number } =>
    ({ id: k.subarray(1, 9), firstHeight: k.readUInt32BE(1), firstIndex: k.readUInt32BE(5) }),
  outcome: (k: Buffer): { txid: Buffer; vout: number } => ({ txid: k.subarray(1, 33), vout: k.readUInt32BE(33) }),
  scriptCoin: (k: Buffer): { script: Buffer; outpoint: Buffer } => {
    const at = 3 + k.readUInt16BE(1);
    return { script: k.subarray(3, at), outpoint: k.subarray(at, at + 36) };
  },
};

/** [prefix, prefix+1) in byte order: every key that starts with `prefix`. */
export function rangeOf(prefix: Buffer): { gte: Buffer; lt: Buffer } {
  const lt = Buffer.from(prefix);
  let i = lt.length - 1;
  while (i >= 0 && lt[i] === 0xff) i--;
  if (i < 0) return { gte: prefix, lt: Buffer.of(0xff, 0xff, 0xff, 0xff) };
  lt[i]! += 1;
  return { gte: prefix, lt: lt.subarray(0, i + 1) };
}

/** The 36-byte outpoint form used in keys and caches: txid | u32be vout. */
export function outpoint(txid: Uint8Array, vout: number): Buffer {
  const b = Buffer.allocUnsafe(36);
  b.set(txid, 0);
  b.writeUInt32BE(vout, 32);
  return b;
}
