/**
 * Why an announcement attempt was rejected. The codes are part of the protocol
 * (docs/spec.md §2): every recount must record the same code for the same output,
 * so they are a closed string union rather than free-form messages.
 */
export type DecodeReason =
  | 'MALFORMED_CARRIER'
  | 'BODY_TOO_LARGE'
  | 'NON_MINIMAL_PUSH'
  | 'UNKNOWN_OPCODE'
  | 'STACK_MISMATCH'
  | 'BAD_STAKE_SCRIPT'
  | 'BAD_TIMESTAMP'
  | 'BAD_PREVIOUS';

/** Reasons that need the transaction, the block or the registry to decide. */
export type ContextReason =
  | 'MULTIPLE_ANNOUNCEMENTS'
  | 'COINBASE'
  | 'TIMESTAMP_IN_FUTURE'
  | 'TIMESTAMP_STALE'
  | 'NOT_OWNER'
  | 'INSUFFICIENT_STAKE'
  | 'ALREADY_REGISTERED'
  | 'UNKNOWN_NODE'
  | 'NOT_LIVE'
  | 'NOT_TIP'
  | 'TIMESTAMP_NOT_INCREASING';

export type ReasonCode = DecodeReason | ContextReason;

/** One line of plain language per code, for `explain` and the operator CLI. */
export const REASON_TEXT: Readonly<Record<ReasonCode, string>> = {
  MALFORMED_CARRIER: 'the output starts like an announcement but is not exactly OP_RETURN <"NREG"> <BODY> with minimal pushes',
  BODY_TOO_LARGE: 'the announcement body is longer than 100 bytes',
  NON_MINIMAL_PUSH: 'the body pushes data with a longer opcode than needed',
  UNKNOWN_OPCODE: 'the body contains an opcode other than a push, OP_NEWNODE or OP_RENEWAL',
  STACK_MISMATCH: 'the body does not end in exactly one OP_NEWNODE (2 items) or OP_RENEWAL (3 items)',
  BAD_STAKE_SCRIPT: 'the stake is not a standard P2PKH, P2SH, P2WPKH, P2WSH or P2TR output script',
  BAD_TIMESTAMP: 'the timestamp is not a minimally encoded positive number of 1 to 5 bytes',
  BAD_PREVIOUS: 'the previous txid is not exactly 32 bytes',
  MULTIPLE_ANNOUNCEMENTS: 'the transaction carries more than one announcement attempt',
  COINBASE: 'announcements in a coinbase transaction do not count',
  TIMESTAMP_IN_FUTURE: 'the timestamp is more than the allowed tolerance after the block time',
  TIMESTAMP_STALE: 'the timestamp is more than the allowed window before the block time',
  NOT_OWNER: 'no input of the transaction spends an output paying the stake script',
  INSUFFICIENT_STAKE: 'the stake balance after this transaction is below the minimum stake',
  ALREADY_REGISTERED: 'the stake already has a live registration (send OP_RENEWAL instead)',
  UNKNOWN_NODE: 'the stake has never been registered (send OP_NEWNODE first)',
  NOT_LIVE: 'the registration has expired or lapsed (send OP_NEWNODE to start again)',
  NOT_TIP: 'the previous txid is not the registration\'s latest announcement',
  TIMESTAMP_NOT_INCREASING: 'the timestamp is not greater than the previous announcement\'s',
};

export const REASON_CODES = Object.keys(REASON_TEXT) as ReasonCode[];

/** Compact storage form: the code's position in REASON_CODES. Append only. */
export function reasonToByte(code: ReasonCode): number {
  return REASON_CODES.indexOf(code);
}

export function reasonFromByte(b: number): ReasonCode {
  const code = REASON_CODES[b];
  if (code === undefined) throw new Error(`unknown stored reason byte ${b}`);
  return code;
}
