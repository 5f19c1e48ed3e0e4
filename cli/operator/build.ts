import { createHash } from 'node:crypto';
import { Psbt, Transaction, type Network } from 'bitcoinjs-lib';
import { stakeTemplate, type StakeTemplate } from '../../script/templates.js';
import { UsageError, UserError } from '../common.js';
import { coins as showCoins } from '../format.js';
import type { KeySigning, StakeKey } from './keys.js';
import {
  allowanceInput, estimateVsize, multisigM, P2PKH_INPUT, P2SH_P2WPKH_INPUT, P2TR_KEY_INPUT, P2WPKH_INPUT,
  p2shMultisigInput, p2wshMultisigInput, type InputSize,
} from './size.js';

/** Bitcoin's coinbase maturity: a coinbase output can be spent 100 blocks after it was mined. */
export const COINBASE_MATURITY = 100;
/** Change below this is unrelayable dust; the builder adds coins rather than burn stake. */
export const DUST = 546n;
/** Default input sizes (vbytes) for P2SH and P2WSH stakes whose scripts are not given: a 2-of-3 multisig. */
export const DEFAULT_P2SH_INPUT_VSIZE = 297;
export const DEFAULT_P2WSH_INPUT_VSIZE = 105;
/** Inputs signal replaceability (BIP125), so another tool can bump a stuck fee. */
const SEQUENCE = 0xfffffffd;

/** An unspent output of the stake, as the index reports it. */
export interface StakeCoin {
  /** RPC (display) hex. */
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
  readonly height: number;
  readonly coinbase: boolean;
}

/** How the stake's coins are spent: what a PSBT input needs, and how big the signed input will be. */
export interface StakeSpend {
  readonly stakeScript: Buffer;
  readonly template: StakeTemplate;
  /** Present when a key given to the CLI controls the stake, so it signs directly. */
  readonly key: KeySigning | null;
  readonly redeemScript?: Buffer;
  readonly witnessScript?: Buffer;
  readonly tapInternalKey?: Buffer;
  /** Legacy spends sign over the whole previous transaction (PSBT nonWitnessUtxo). */
  readonly needsPrevTx: boolean;
  readonly inputSize: InputSize;
  /** Where the input size comes from, shown with the fee. */
  readonly sizeNote: string;
}

export interface SpendOptions {
  readonly key: StakeKey | null;
  readonly redeemScript?: Buffer;
  readonly witnessScript?: Buffer;
  /** Input size allowance (vbytes) for P2SH/P2WSH stakes whose scripts are unknown. */
  readonly inputVsize?: number;
  /** The label of the stake for messages (its address). */
  readonly label: string;
}

const sha256 = (b: Uint8Array): Buffer => createHash('sha256').update(b).digest();
const hash160 = (b: Uint8Array): Buffer => createHash('ripemd160').update(sha256(b)).digest();
const isP2wshProgram = (s: Uint8Array): boolean => s.length === 34 && s[0] === 0 && s[1] === 32;
const isP2wpkhProgram = (s: Uint8Array): boolean => s.length === 22 && s[0] === 0 && s[1] === 20;

function keyMismatch(key: StakeKey, label: string, template: StakeTemplate): UserError {
  const owns = key.owned().map((o) => `${o.address} (${o.kind})`).join(', ');
  const hint = template === 'p2sh' || template === 'p2wsh'
    ? '; a P2SH or P2WSH stake is signed by its own signers: write a PSBT with --psbt-out'
    : '';
  return new UserError(`the ${key.origin} does not control ${label}: it controls ${owns}${hint}`);
}

/**
 * Works out how the stake's inputs will be spent and sized. A key must
 * control the stake exactly; P2SH and P2WSH stakes take their scripts from
 * --redeem-script/--witness-script (checked against the stake) or an
 * allowance, and are signed elsewhere.
 */
export function planSpend(stakeScript: Buffer, opts: SpendOptions): StakeSpend {
  const template = stakeTemplate(stakeScript);
  if (template === null) throw new UserError(`${opts.label} is not a standard stake script`);
  if (opts.key) {
    const signing = opts.key.signingFor(stakeScript);
    if (!signing) throw keyMismatch(opts.key, opts.label, template);
    const base = { stakeScript, template, key: signing };
    switch (signing.kind) {
      case 'p2pkh': return { ...base, needsPrevTx: true, inputSize: P2PKH_INPUT(signing.signer.publicKey.length === 33), sizeNote: 'P2PKH' };
      case 'p2wpkh': return { ...base, needsPrevTx: false, inputSize: P2WPKH_INPUT, sizeNote: 'P2WPKH' };
      case 'p2tr': return { ...base, needsPrevTx: false, tapInternalKey: signing.tapInternalKey!, inputSize: P2TR_KEY_INPUT, sizeNote: 'P2TR key path' };
      case 'p2sh-p2wpkh': return { ...base, needsPrevTx: false, redeemScript: signing.redeemScript!, inputSize: P2SH_P2WPKH_INPUT, sizeNote: 'P2SH-P2WPKH' };
    }
  }
  return planExternal(stakeScript, template, opts);
}

function planExternal(stakeScript: Buffer, template: StakeTemplate, opts: SpendOptions): StakeSpend {
  const { redeemScript, witnessScript } = opts;
  const base = { stakeScript, template, key: null };
  if (redeemScript && template !== 'p2sh') throw new UsageError('--redeem-script applies to P2SH stakes only');
  if (witnessScript && template !== 'p2wsh' && !(template === 'p2sh' && redeemScript && isP2wshProgram(redeemScript))) {
    throw new UsageError('--witness-script applies to P2WSH stakes (or P2SH stakes whose --redeem-script is a P2WSH program)');
  }
  const allowance = (def: number, segwit: boolean): InputSize => allowanceInput(opts.inputVsize ?? def, segwit);
  const assumed = (def: number): string => `${opts.inputVsize ?? def} vB per input assumed`;
  switch (template) {
    case 'p2pkh':
      return { ...base, needsPrevTx: true, inputSize: P2PKH_INPUT(), sizeNote: 'P2PKH' };
    case 'p2wpkh':
      return { ...base, needsPrevTx: false, inputSize: P2WPKH_INPUT, sizeNote: 'P2WPKH' };
    case 'p2tr':
      return { ...base, needsPrevTx: false, inputSize: P2TR_KEY_INPUT, sizeNote: 'P2TR key path (assumed)' };
    case 'p2wsh': {
      if (!witnessScript) {
        return { ...base, needsPrevTx: false, inputSize: allowance(DEFAULT_P2WSH_INPUT_VSIZE, true), sizeNote: `P2WSH, ${assumed(DEFAULT_P2WSH_INPUT_VSIZE)} (give --witness-script for an exact size)` };
      }
      if (!sha256(witnessScript).equals(stakeScript.subarray(2))) throw new UserError('--witness-script does not hash to the stake\'s P2WSH program');
      const m = multisigM(witnessScript);
      if (m === null) return { ...base, witnessScript, needsPrevTx: false, inputSize: allowance(DEFAULT_P2WSH_INPUT_VSIZE, true), sizeNote: `P2WSH, ${assumed(DEFAULT_P2WSH_INPUT_VSIZE)}` };
      return { ...base, witnessScript, needsPrevTx: false, inputSize: p2wshMultisigInput(witnessScript, m, false), sizeNote: `P2WSH ${m}-of-n multisig` };
    }
    case 'p2sh': {
      if (!redeemScript) {
        return { ...base, needsPrevTx: true, inputSize: allowance(DEFAULT_P2SH_INPUT_VSIZE, false), sizeNote: `P2SH, ${assumed(DEFAULT_P2SH_INPUT_VSIZE)} (give --redeem-script for an exact size)` };
      }
      if (!hash160(redeemScript).equals(stakeScript.subarray(2, 22))) throw new UserError('--redeem-script does not hash to the stake\'s P2SH hash');
      if (isP2wpkhProgram(redeemScript)) return { ...base, redeemScript, needsPrevTx: false, inputSize: P2SH_P2WPKH_INPUT, sizeNote: 'P2SH-P2WPKH' };
      if (isP2wshProgram(redeemScript)) {
        if (!witnessScript) throw new UsageError('this P2SH stake wraps a P2WSH program: give its --witness-script too');
        if (!sha256(witnessScript).equals(redeemScript.subarray(2))) throw new UserError('--witness-script does not hash to the P2WSH program in --redeem-script');
        const m = multisigM(witnessScript);
        const size = m === null ? allowance(DEFAULT_P2WSH_INPUT_VSIZE + 35, true) : p2wshMultisigInput(witnessScript, m, true);
        return { ...base, redeemScript, witnessScript, needsPrevTx: false, inputSize: size, sizeNote: m === null ? `P2SH-P2WSH, ${assumed(DEFAULT_P2WSH_INPUT_VSIZE + 35)}` : `P2SH-P2WSH ${m}-of-n multisig` };
      }
      const m = multisigM(redeemScript);
      const size = m === null ? allowance(DEFAULT_P2SH_INPUT_VSIZE, false) : p2shMultisigInput(redeemScript, m);
      return { ...base, redeemScript, needsPrevTx: true, inputSize: size, sizeNote: m === null ? `P2SH, ${assumed(DEFAULT_P2SH_INPUT_VSIZE)}` : `P2SH ${m}-of-n multisig` };
    }
  }
}

/** The coins to spend, the fee they pay, and the change returned to the stake. */
export interface Selection {
  readonly inputs: StakeCoin[];
  readonly vsize: number;
  readonly fee: bigint;
  readonly change: bigint;
}

/** A coin of the stake that a transaction entering the mempool now may spend. */
export const isSpendable = (c: StakeCoin, nextHeight: number): boolean =>
  !c.coinbase || nextHeight - c.height >= COINBASE_MATURITY;

/**
 * Picks the fewest, largest spendable coins that pay the fee and leave change
 * above dust. Every input is the stake's own, which is what proves ownership;
 * every base unit not paid as fee goes back to the stake.
 */
export function selectCoins(all: readonly StakeCoin[], spend: StakeSpend, carrier: Buffer, feeRate: number, nextHeight: number, label: string): Selection {
  if (all.length === 0) {
    throw new UserError(`${label} has no unspent outputs in the index: fund it, wait for a confirmation, and try again`);
  }
  const usable = all.filter((c) => isSpendable(c, nextHeight)).sort((a, b) => (b.value > a.value ? 1 : b.value < a.value ? -1 : 0));
  if (usable.length === 0) {
    const first = Math.min(...all.map((c) => c.height)) + COINBASE_MATURITY;
    throw new UserError(`${label} has only immature coinbase outputs; the first can be spent in a block at height ${first}`);
  }
  let sum = 0n;
  for (let n = 1; n <= usable.length; n++) {
    sum += usable[n - 1]!.value;
    const vsize = estimateVsize(Array(n).fill(spend.inputSize), [carrier, spend.stakeScript]);
    const fee = BigInt(Math.ceil(feeRate * vsize));
    if (sum - fee >= DUST) return { inputs: usable.slice(0, n), vsize, fee, change: sum - fee };
  }
  throw new UserError(`${label}'s spendable coins (${showCoins(sum)}) cannot pay the fee at ${feeRate} sat/vB`);
}

/** Previous transactions of legacy inputs, by txid (RPC hex). */
export type PrevTxs = ReadonlyMap<string, Buffer>;

/** The unsigned PSBT: the stake's coins in, the carrier and the change (back to the stake) out. */
export function buildPsbt(spend: StakeSpend, sel: Selection, carrier: Buffer, prevTxs: PrevTxs, locktime: number, network: Network): Psbt {
  const psbt = new Psbt({ network });
  psbt.setVersion(2);
  psbt.setLocktime(locktime);
  for (const c of sel.inputs) {
    const input: Parameters<Psbt['addInput']>[0] = { hash: Buffer.from(c.txid, 'hex').reverse(), index: c.vout, sequence: SEQUENCE };
    if (spend.needsPrevTx) {
      const prev = prevTxs.get(c.txid);
      if (!prev) throw new Error(`previous transaction ${c.txid} was not fetched`);
      input.nonWitnessUtxo = prev;
    } else {
      input.witnessUtxo = { script: spend.stakeScript, value: c.value };
    }
    if (spend.redeemScript) input.redeemScript = spend.redeemScript;
    if (spend.witnessScript) input.witnessScript = spend.witnessScript;
    if (spend.tapInternalKey) input.tapInternalKey = spend.tapInternalKey;
    psbt.addInput(input);
  }
  psbt.addOutput({ script: carrier, value: 0n });
  psbt.addOutput({ script: spend.stakeScript, value: sel.change });
  return psbt;
}

/** Signs every input with the stake's key and returns the final transaction. */
export function signPsbt(psbt: Psbt, key: KeySigning): Transaction {
  for (let i = 0; i < psbt.inputCount; i++) psbt.signInput(i, key.signer);
  psbt.finalizeAllInputs();
  return psbt.extractTransaction();
}

/** The transaction a PSBT describes, before signatures: same outputs, same inputs, no scripts. */
export function unsignedTx(psbt: Psbt): Transaction {
  const tx = new Transaction();
  tx.version = psbt.version;
  tx.locktime = psbt.locktime;
  for (const i of psbt.txInputs) tx.addInput(i.hash, i.index, i.sequence);
  for (const o of psbt.txOutputs) tx.addOutput(o.script, o.value);
  return tx;
}
