import { Psbt, type Network, type Transaction } from 'bitcoinjs-lib';
import { UserError } from '../common.js';
import type { KeySigning, StakeKey } from '../operator/keys.js';
import type { InputSize } from '../operator/size.js';
import { payerInput, payerKind, type PayerKind, type TxPlan } from './plan.js';

/*
 * The payment's PSBTs: inputs carrying what any wallet needs to sign them
 * (the previous output for segwit, the whole previous transaction for
 * legacy inputs and, when at hand, for segwit v0 too, as hardware wallets
 * ask), outputs in table order, then the change.
 */

/** Inputs signal replaceability (BIP125), so a stuck payment can be fee-bumped. */
const SEQUENCE = 0xfffffffd;

/** How the payer's coins are spent. */
export interface PayerSpend {
  readonly script: Buffer;
  readonly kind: PayerKind;
  readonly input: InputSize;
  /** Present with --key-file: the key that signs every input. */
  readonly key: KeySigning | null;
}

/** The payer's spend; with a key, the key must control the payer address. */
export function payerSpend(script: Buffer, key: StakeKey | null, label: string): PayerSpend {
  const kind = payerKind(script);
  if (kind === null) throw new UserError(`--pay-from ${label} is a P2WSH address: a multisig payer is not supported; pay from a single-key address (P2WPKH, P2PKH, P2TR or P2SH-P2WPKH)`);
  if (key === null) return { script, kind, input: payerInput(kind), key: null };
  const signing = key.signingFor(script);
  if (!signing) {
    const owns = key.owned().map((o) => `${o.address} (${o.kind})`).join(', ');
    throw new UserError(`the ${key.origin} does not control the payer ${label}: it controls ${owns}`);
  }
  return { script, kind: signing.kind, input: payerInput(signing.kind, signing.signer.publicKey.length === 33), key: signing };
}

/** Whether an input of this kind must carry its whole previous transaction (BIP174: legacy inputs). */
export const needsPrevTx = (kind: PayerKind): boolean => kind === 'p2pkh';
/** Whether the whole previous transaction is worth adding when at hand: segwit v0, whose signers may insist. */
export const wantsPrevTx = (kind: PayerKind): boolean => kind !== 'p2tr';

/** The unsigned PSBT of one planned transaction. */
export function buildPaymentPsbt(plan: TxPlan, spend: PayerSpend, locktime: number, network: Network): Psbt {
  const psbt = new Psbt({ network });
  psbt.setVersion(2);
  psbt.setLocktime(locktime);
  for (const c of plan.inputs) {
    const input: Parameters<Psbt['addInput']>[0] = { hash: Buffer.from(c.txid, 'hex').reverse(), index: c.vout, sequence: SEQUENCE };
    if (spend.kind !== 'p2pkh') input.witnessUtxo = { script: spend.script, value: c.value };
    if (c.prevTx && wantsPrevTx(spend.kind)) input.nonWitnessUtxo = c.prevTx;
    else if (needsPrevTx(spend.kind)) throw new Error(`the previous transaction of ${c.txid}:${c.vout} is missing`);
    if (spend.key?.redeemScript) input.redeemScript = spend.key.redeemScript;
    if (spend.key?.tapInternalKey) input.tapInternalKey = spend.key.tapInternalKey;
    psbt.addInput(input);
  }
  for (const row of plan.rows) psbt.addOutput({ script: row.stakeScript, value: row.amount });
  if (plan.change > 0n) psbt.addOutput({ script: spend.script, value: plan.change });
  return psbt;
}

/** Signs and finalizes every input with the payer's key; returns the transaction. */
export function signPayment(psbt: Psbt, key: KeySigning): Transaction {
  for (let i = 0; i < psbt.inputCount; i++) psbt.signInput(i, key.signer);
  psbt.finalizeAllInputs();
  return psbt.extractTransaction();
}

/**
 * Where the PSBTs go: `--psbt out.psbt` itself for a single transaction;
 * for several, out-1.psbt, out-2.psbt… (the number before the extension,
 * or at the end of a name without one), in table order.
 */
export function psbtFiles(path: string, count: number): string[] {
  if (count === 1) return [path];
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  const dot = path.lastIndexOf('.');
  const [stem, ext] = dot > slash + 1 ? [path.slice(0, dot), path.slice(dot)] : [path, ''];
  return Array.from({ length: count }, (_, i) => `${stem}-${i + 1}${ext}`);
}
