import {
  OP_NEWNODE, OP_RENEWAL, OP_RETURN, OP_PUSHDATA1, OP_PUSHDATA2, OP_PUSHDATA4,
  encodePush, isMinimalPush, isPushOpcode, parseScript,
} from './opcodes.js';
import type { DecodeReason } from './reasons.js';
import { decodePositiveScriptNum, encodePositiveScriptNum } from './scriptnum.js';
import { stakeTemplate } from './templates.js';

/** The 4-byte protocol tag, "NREG". */
export const TAG = Buffer.from('NREG', 'ascii');
export const MAX_BODY = 100;

export interface NewNode {
  readonly kind: 'newnode';
  readonly stakeScript: Uint8Array;
  readonly timestamp: number;
}

export interface Renewal {
  readonly kind: 'renewal';
  readonly stakeScript: Uint8Array;
  readonly timestamp: number;
  /** The registration's previous tip txid, 32 bytes in internal (outpoint) order. */
  readonly prevTxid: Uint8Array;
}

export type Announcement = NewNode | Renewal;

/**
 * What an output script says about the protocol: nothing (null from
 * `detectAnnouncement`), a flawed attempt with its reason, or an announcement.
 * Flaws are values, not exceptions, because their effect is defined: they are
 * recorded as rejected.
 */
export type Attempt =
  | { readonly ok: true; readonly announcement: Announcement }
  | { readonly ok: false; readonly reason: DecodeReason };

const flawed = (reason: DecodeReason): Attempt => ({ ok: false, reason });

/**
 * Whether an output script is an announcement attempt: OP_RETURN followed by
 * a push, with any push opcode, of exactly "NREG". Cheap enough to run on
 * every output of every block.
 */
export function isAttempt(script: Uint8Array): boolean {
  if (script.length < 6 || script[0] !== OP_RETURN) return false;
  const op = script[1]!;
  let at: number;
  if (op === 4) at = 2;
  else if (op === OP_PUSHDATA1) at = script[2] === 4 ? 3 : -1;
  else if (op === OP_PUSHDATA2) at = script[2] === 4 && script[3] === 0 ? 4 : -1;
  else if (op === OP_PUSHDATA4) at = script[2] === 4 && script[3] === 0 && script[4] === 0 && script[5] === 0 ? 6 : -1;
  else return false;
  return at > 0 && at + 4 <= script.length
    && script[at] === 0x4e && script[at + 1] === 0x52 && script[at + 2] === 0x45 && script[at + 3] === 0x47;
}

/**
 * Decodes an output script (docs/spec.md §2.8, steps 1–6). Returns null when the
 * output is not an announcement attempt at all. Never throws.
 */
export function detectAnnouncement(script: Uint8Array): Attempt | null {
  if (!isAttempt(script)) return null;
  if (script[1] !== 4) return flawed('MALFORMED_CARRIER');
  const ops = parseScript(script.subarray(6));
  if (ops === null || ops.length !== 1 || ops[0]!.data === null || !isMinimalPush(ops[0]!)) {
    return flawed('MALFORMED_CARRIER');
  }
  return decodeBody(ops[0]!.data);
}

/** Decodes a BODY (the registry script) on its own, steps 2.2–6. Never throws. */
export function decodeBody(body: Uint8Array): Attempt {
  if (body.length > MAX_BODY) return flawed('BODY_TOO_LARGE');
  const ops = parseScript(body);
  if (ops === null) return flawed('MALFORMED_CARRIER');
  let announcementOps = 0;
  for (const op of ops) {
    if (isPushOpcode(op.opcode)) {
      if (!isMinimalPush(op)) return flawed('NON_MINIMAL_PUSH');
    } else if (op.opcode === OP_NEWNODE || op.opcode === OP_RENEWAL) {
      announcementOps++;
    } else {
      return flawed('UNKNOWN_OPCODE');
    }
  }
  const last = ops[ops.length - 1];
  if (announcementOps !== 1 || last === undefined || last.data !== null) return flawed('STACK_MISMATCH');
  const kind = last.opcode === OP_NEWNODE ? 'newnode' : 'renewal';
  if (ops.length !== (kind === 'newnode' ? 3 : 4)) return flawed('STACK_MISMATCH');

  const stakeScript = ops[0]!.data!;
  if (stakeTemplate(stakeScript) === null) return flawed('BAD_STAKE_SCRIPT');
  const timestamp = decodePositiveScriptNum(ops[1]!.data!);
  if (timestamp === null) return flawed('BAD_TIMESTAMP');
  if (kind === 'newnode') return { ok: true, announcement: { kind, stakeScript, timestamp } };
  const prevTxid = ops[2]!.data!;
  if (prevTxid.length !== 32) return flawed('BAD_PREVIOUS');
  return { ok: true, announcement: { kind, stakeScript, timestamp, prevTxid } };
}

/** An announcement the encoder refuses, because no valid carrier could hold it. */
export class EncodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EncodeError';
  }
}

/** The canonical BODY for an announcement. Throws EncodeError on invalid fields. */
export function encodeBody(a: Announcement): Buffer {
  if (stakeTemplate(a.stakeScript) === null) {
    throw new EncodeError('stake script must be a standard P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script');
  }
  let ts: Buffer;
  try {
    ts = encodePositiveScriptNum(a.timestamp);
  } catch (err) {
    throw new EncodeError((err as Error).message);
  }
  const parts = [encodePush(a.stakeScript), encodePush(ts)];
  if (a.kind === 'renewal') {
    if (a.prevTxid.length !== 32) throw new EncodeError('previous txid must be exactly 32 bytes');
    parts.push(encodePush(a.prevTxid));
  }
  parts.push(Buffer.of(a.kind === 'newnode' ? OP_NEWNODE : OP_RENEWAL));
  return Buffer.concat(parts);
}

/** The canonical carrier output script: OP_RETURN <"NREG"> <BODY>. */
export function encodeCarrier(a: Announcement): Buffer {
  return Buffer.concat([Buffer.of(OP_RETURN), encodePush(TAG), encodePush(encodeBody(a))]);
}
