import { payments } from 'bitcoinjs-lib';

/*
 * Transaction sizes before signing, so the fee is known before anything is
 * signed. Signatures are counted at their largest (72 bytes with the sighash
 * byte, plus a length byte), so the signed transaction is never bigger than
 * the estimate and the fee rate is never below the one asked for.
 */

/** One input's share of the transaction, in bytes outside and inside the witness. */
export interface InputSize {
  readonly base: number;
  readonly witness: number;
}

const OUTPOINT_AND_SEQUENCE = 36 + 4;
/** A signature with its sighash byte and its push or length byte. */
const SIG_ITEM = 73;

export const varIntSize = (n: number): number => (n < 0xfd ? 1 : n <= 0xffff ? 3 : n <= 0xffffffff ? 5 : 9);
const pushSize = (n: number): number => (n < 0x4c ? 1 : n <= 0xff ? 2 : n <= 0xffff ? 3 : 5);
const withScriptSig = (len: number): number => OUTPOINT_AND_SEQUENCE + varIntSize(len) + len;

export const P2PKH_INPUT = (compressed = true): InputSize => ({ base: withScriptSig(SIG_ITEM + 1 + (compressed ? 33 : 65)), witness: 0 });
export const P2WPKH_INPUT: InputSize = { base: withScriptSig(0), witness: 1 + SIG_ITEM + 1 + 33 };
export const P2SH_P2WPKH_INPUT: InputSize = { base: withScriptSig(23), witness: 1 + SIG_ITEM + 1 + 33 };
/** BIP86 key path: one 64-byte Schnorr signature (default sighash, no sighash byte). */
export const P2TR_KEY_INPUT: InputSize = { base: withScriptSig(0), witness: 1 + 1 + 64 };

/** m of a bare multisig script, or null when the script is not one. */
export function multisigM(script: Uint8Array): number | null {
  try {
    return payments.p2ms({ output: script }).m ?? null;
  } catch {
    return null;
  }
}

/** A P2WSH spend of a multisig witness script: the empty dummy item, m signatures, the script. */
export function p2wshMultisigInput(witnessScript: Uint8Array, m: number, nested: boolean): InputSize {
  const items = m + 2;
  const witness = varIntSize(items) + 1 + m * SIG_ITEM + varIntSize(witnessScript.length) + witnessScript.length;
  return { base: withScriptSig(nested ? 35 : 0), witness };
}

/** A P2SH spend of a bare multisig redeem script: OP_0, m signatures, the pushed script. */
export function p2shMultisigInput(redeemScript: Uint8Array, m: number): InputSize {
  return { base: withScriptSig(1 + m * SIG_ITEM + pushSize(redeemScript.length) + redeemScript.length), witness: 0 };
}

/** An input of unknown shape, sized by the caller's allowance in vbytes. */
export const allowanceInput = (vbytes: number, segwit: boolean): InputSize =>
  segwit ? { base: withScriptSig(0), witness: Math.max(0, vbytes - withScriptSig(0)) * 4 } : { base: vbytes, witness: 0 };

/** Virtual size of a transaction with these inputs and output scripts. */
export function estimateVsize(inputs: readonly InputSize[], outputScripts: readonly Uint8Array[]): number {
  const segwit = inputs.some((i) => i.witness > 0);
  let base = 4 + varIntSize(inputs.length) + varIntSize(outputScripts.length) + 4;
  for (const i of inputs) base += i.base;
  for (const s of outputScripts) base += 8 + varIntSize(s.length) + s.length;
  // In a segwit transaction every input has a witness; an empty one is a single 0 byte.
  const witness = segwit ? 2 + inputs.reduce((n, i) => n + (i.witness > 0 ? i.witness : 1), 0) : 0;
  return Math.ceil((base * 4 + witness) / 4);
}
