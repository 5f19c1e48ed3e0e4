import { AddressError, parseStake, scriptToAddress } from '../../script/address.js';
import { toAsm } from '../../script/asm.js';
import { decodeBody, detectAnnouncement, encodeBody, encodeCarrier, type Announcement, type Attempt } from '../../script/carrier.js';
import { REASON_TEXT } from '../../script/reasons.js';
import { MAX_TIMESTAMP } from '../../script/scriptnum.js';
import { OP_RETURN } from '../../script/opcodes.js';
import { hexArg, networkFrom, printJson, UsageError, type NetworkArgs } from '../common.js';

/*
 * What `nodereg script encode` and `script decode` do, loaded only when one of
 * them runs: they need the address code (bitcoinjs-lib).
 */

const rpcHex = (internal: Uint8Array): string => Buffer.from(internal).reverse().toString('hex');

export interface EncodeArgs extends NetworkArgs { stake: string; timestamp: number; prev?: string; json: boolean }
export interface DecodeArgs extends NetworkArgs { hex: string; json: boolean }

export function encode(args: EncodeArgs): void {
  const params = networkFrom(args);
  let stakeScript: Buffer;
  try {
    stakeScript = parseStake(args.stake, params);
  } catch (err) {
    if (err instanceof AddressError) throw new UsageError(`--stake: ${err.message}`);
    throw err;
  }
  if (!Number.isSafeInteger(args.timestamp) || args.timestamp < 1 || args.timestamp > MAX_TIMESTAMP) {
    throw new UsageError(`--timestamp must be a whole number of seconds from 1 to ${MAX_TIMESTAMP}, got ${args.timestamp}`);
  }
  let a: Announcement;
  if (args.prev !== undefined) {
    const prev = hexArg(args.prev, '--prev');
    if (prev.length !== 32) throw new UsageError(`--prev must be a 32-byte txid (64 hex digits), got ${prev.length} bytes`);
    a = { kind: 'renewal', stakeScript, timestamp: args.timestamp, prevTxid: prev.reverse() };
  } else {
    a = { kind: 'newnode', stakeScript, timestamp: args.timestamp };
  }
  const carrier = encodeCarrier(a);
  if (args.json) {
    printJson({ carrier: carrier.toString('hex'), body: encodeBody(a).toString('hex'), asm: toAsm(carrier) });
  } else {
    process.stdout.write(carrier.toString('hex') + '\n');
  }
}

/** Carriers start with OP_RETURN; anything else is taken as a bare BODY. */
function decodeInput(bytes: Buffer): Attempt {
  if (bytes[0] === OP_RETURN) {
    const attempt = detectAnnouncement(bytes);
    if (attempt !== null) return attempt;
  }
  return decodeBody(bytes);
}

export function decode(args: DecodeArgs): void {
  const params = networkFrom(args);
  const attempt = decodeInput(hexArg(args.hex, 'the script'));
  if (!attempt.ok) {
    if (args.json) printJson({ ok: false, reason: attempt.reason });
    else process.stdout.write(`flawed announcement: ${attempt.reason} (${REASON_TEXT[attempt.reason]})\n`);
    return;
  }
  const a = attempt.announcement;
  const stakeHex = Buffer.from(a.stakeScript).toString('hex');
  const address = scriptToAddress(a.stakeScript, params);
  const prevTxid = a.kind === 'renewal' ? rpcHex(a.prevTxid) : null;
  if (args.json) {
    printJson({ ok: true, kind: a.kind, stakeScript: stakeHex, address, timestamp: a.timestamp, prevTxid });
    return;
  }
  const when = a.timestamp * 1000 <= 8.64e15 ? new Date(a.timestamp * 1000).toISOString() : 'out of date range';
  const lines = [
    `kind       ${a.kind === 'newnode' ? 'OP_NEWNODE' : 'OP_RENEWAL'}`,
    `stake      ${stakeHex}`,
    `address    ${address ?? `(no ${params.name} address)`}`,
    `timestamp  ${a.timestamp} (${when})`,
  ];
  if (prevTxid !== null) lines.push(`previous   ${prevTxid}`);
  process.stdout.write(lines.join('\n') + '\n');
}

