/** The few opcode values the protocol names. */
export const OP_0 = 0x00;
export const OP_PUSHDATA1 = 0x4c;
export const OP_PUSHDATA2 = 0x4d;
export const OP_PUSHDATA4 = 0x4e;
export const OP_1NEGATE = 0x4f;
export const OP_1 = 0x51;
export const OP_16 = 0x60;
export const OP_RETURN = 0x6a;
export const OP_DUP = 0x76;
export const OP_EQUAL = 0x87;
export const OP_EQUALVERIFY = 0x88;
export const OP_HASH160 = 0xa9;
export const OP_CHECKSIG = 0xac;
export const OP_NEWNODE = 0xc0;
export const OP_RENEWAL = 0xc1;

/**
 * Whether the output script `b[s..e)` stays out of the UTXO set: it starts
 * with OP_RETURN, so it can never be spent and its value is burned
 * (docs/spec.md §2.8). Every engine and the chain pass ask this one function.
 */
export function isUnspendable(b: Uint8Array, s: number, e: number): boolean {
  return e > s && b[s] === OP_RETURN;
}

/** A parsed script op. `data` is set for every op that pushes (OP_0..OP_16 too). */
export interface ScriptOp {
  readonly opcode: number;
  readonly data: Uint8Array | null;
}

/** True for opcodes that only push data: OP_0..OP_PUSHDATA4, OP_1NEGATE, OP_1..OP_16. */
export function isPushOpcode(op: number): boolean {
  return op <= OP_PUSHDATA4 || op === OP_1NEGATE || (op >= OP_1 && op <= OP_16);
}

/**
 * Splits a script into ops. Returns null when a push runs past the end, like
 * bitcoinjs-lib's `decompile`, so malformed bytes are a value, not an exception.
 */
export function parseScript(script: Uint8Array): ScriptOp[] | null {
  const ops: ScriptOp[] = [];
  let i = 0;
  while (i < script.length) {
    const op = script[i++]!;
    let len = -1;
    if (op > OP_0 && op < OP_PUSHDATA1) len = op;
    else if (op === OP_PUSHDATA1) {
      if (i + 1 > script.length) return null;
      len = script[i]!;
      i += 1;
    } else if (op === OP_PUSHDATA2) {
      if (i + 2 > script.length) return null;
      len = script[i]! | (script[i + 1]! << 8);
      i += 2;
    } else if (op === OP_PUSHDATA4) {
      if (i + 4 > script.length) return null;
      len = (script[i]! | (script[i + 1]! << 8) | (script[i + 2]! << 16)) + script[i + 3]! * 0x1000000;
      i += 4;
    }
    if (len >= 0) {
      if (i + len > script.length) return null;
      ops.push({ opcode: op, data: script.subarray(i, i + len) });
      i += len;
    } else if (op === OP_0) {
      ops.push({ opcode: op, data: new Uint8Array(0) });
    } else if (op === OP_1NEGATE) {
      ops.push({ opcode: op, data: Uint8Array.of(0x81) });
    } else if (op >= OP_1 && op <= OP_16) {
      ops.push({ opcode: op, data: Uint8Array.of(op - OP_1 + 1) });
    } else {
      ops.push({ opcode: op, data: null });
    }
  }
  return ops;
}

/** The opcode BIP62 requires for pushing `data`. */
export function minimalPushOpcode(data: Uint8Array): number {
  const n = data.length;
  if (n === 0) return OP_0;
  if (n === 1 && data[0]! >= 1 && data[0]! <= 16) return OP_1 + data[0]! - 1;
  if (n === 1 && data[0] === 0x81) return OP_1NEGATE;
  if (n <= 75) return n;
  if (n <= 0xff) return OP_PUSHDATA1;
  if (n <= 0xffff) return OP_PUSHDATA2;
  return OP_PUSHDATA4;
}

/** Whether a parsed push op used the minimal encoding for its data. */
export function isMinimalPush(op: ScriptOp): boolean {
  return op.data !== null && minimalPushOpcode(op.data) === op.opcode;
}

/** Serializes `data` as one minimal push. */
export function encodePush(data: Uint8Array): Buffer {
  const op = minimalPushOpcode(data);
  const n = data.length;
  if (op === OP_0 || op === OP_1NEGATE || (op >= OP_1 && op <= OP_16)) return Buffer.of(op);
  if (op === OP_PUSHDATA1) return Buffer.concat([Buffer.of(op, n), data]);
  if (op === OP_PUSHDATA2) return Buffer.concat([Buffer.of(op, n & 0xff, n >> 8), data]);
  if (op === OP_PUSHDATA4) {
    const head = Buffer.alloc(5);
    head[0] = op;
    head.writeUInt32LE(n, 1);
    return Buffer.concat([head, data]);
  }
  return Buffer.concat([Buffer.of(n), data]);
}
