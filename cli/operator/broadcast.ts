import { existsSync, readFileSync } from 'node:fs';
import * as ecc from '@bitcoinerlab/secp256k1';
import { Psbt, Transaction } from 'bitcoinjs-lib';
import { UsageError, UserError } from '../common.js';
import { decodeRefusal, findAnnouncement, preflight, type Verdict } from './preflight.js';
import { stakeState, type IndexSource } from './sources.js';

/*
 * `nodereg broadcast`: a signed PSBT (from --psbt-out and an external signer)
 * or a raw transaction in hex. PSBTs are checked and finalized here; an
 * announcement is judged against the index before it is sent.
 */

const PSBT_MAGIC = Buffer.from('70736274ff', 'hex');
const isHex = (s: string): boolean => s.length % 2 === 0 && /^[0-9a-fA-F]+$/.test(s);

function fromPsbt(psbt: Psbt, what: string): Transaction {
  for (let i = 0; i < psbt.inputCount; i++) {
    const input = psbt.data.inputs[i]!;
    if (input.finalScriptSig || input.finalScriptWitness) continue;
    const hasSig = (input.partialSig?.length ?? 0) > 0 || input.tapKeySig !== undefined || (input.tapScriptSig?.length ?? 0) > 0;
    if (!hasSig) throw new UserError(`${what} is not signed: input ${i} has no signature; sign it first`);
    try {
      if (!psbt.validateSignaturesOfInput(i, (pubkey, hash, sig) => (pubkey.length === 32 ? ecc.verifySchnorr(hash, pubkey, sig) : ecc.verify(hash, pubkey, sig)))) {
        throw new UserError(`${what}: input ${i} has a signature that does not verify`);
      }
      psbt.finalizeInput(i);
    } catch (err) {
      if (err instanceof UserError) throw err;
      throw new UserError(`${what}: input ${i} cannot be finalized (${(err as Error).message}); is it fully signed?`);
    }
  }
  try {
    return psbt.extractTransaction();
  } catch (err) {
    throw new UserError(`${what} cannot be extracted: ${(err as Error).message}`);
  }
}

function parsePsbt(load: () => Psbt, what: string): Transaction {
  let psbt: Psbt;
  try {
    psbt = load();
  } catch (err) {
    throw new UserError(`${what} is not a valid PSBT: ${(err as Error).message}`);
  }
  return fromPsbt(psbt, what);
}

function parseRawHex(hex: string, what: string): Transaction {
  try {
    return Transaction.fromHex(hex);
  } catch (err) {
    throw new UserError(`${what} is not a valid transaction: ${(err as Error).message}`);
  }
}

/**
 * The transaction to send, from a PSBT file (base64, hex or binary), a file
 * holding a raw transaction in hex, or raw hex on the command line.
 */
export function readTransactionArg(arg: string): Transaction {
  if (existsSync(arg)) {
    const what = `the file ${arg}`;
    let bytes: Buffer;
    try {
      bytes = readFileSync(arg);
    } catch (err) {
      throw new UserError(`cannot read ${arg} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (bytes.subarray(0, 5).equals(PSBT_MAGIC)) return parsePsbt(() => Psbt.fromBuffer(bytes), what);
    const text = bytes.toString('utf8').trim();
    if (isHex(text)) {
      return text.toLowerCase().startsWith('70736274ff') ? parsePsbt(() => Psbt.fromHex(text), what) : parseRawHex(text, what);
    }
    return parsePsbt(() => Psbt.fromBase64(text), what);
  }
  if (isHex(arg)) {
    return arg.toLowerCase().startsWith('70736274ff') ? parsePsbt(() => Psbt.fromHex(arg), 'the PSBT') : parseRawHex(arg, 'the transaction');
  }
  throw new UsageError('the argument is neither a file nor a transaction in hex');
}

/** What the preflight says about a transaction to broadcast; null when it announces nothing. */
export async function judgeForBroadcast(tx: Transaction, source: IndexSource | null, now: number): Promise<{ verdict: Verdict; stake: Buffer } | null> {
  const found = findAnnouncement(tx);
  if (found.kind === 'none') return null;
  if (found.kind === 'refused') {
    return { verdict: { ok: false, code: found.code, message: decodeRefusal(found.code, found.vout) }, stake: Buffer.alloc(0) };
  }
  const stake = Buffer.from(found.announcement.stakeScript);
  if (source === null) {
    throw new UserError('this transaction carries an announcement, which is checked against the index before sending: pass --db <dir> or --api <url> (or --force to send it unchecked)');
  }
  const snap = await source.stake(stake);
  return { verdict: preflight(tx, found.announcement, stakeState(snap), source.params, now), stake };
}
