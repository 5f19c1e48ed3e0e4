import { stakeTemplate } from '../../script/templates.js';
import { UserError } from '../common.js';
import { coins as showCoins } from '../format.js';
import { isSpendable, type StakeCoin } from '../operator/build.js';
import { estimateVsize, P2PKH_INPUT, P2SH_P2WPKH_INPUT, P2TR_KEY_INPUT, P2WPKH_INPUT, type InputSize } from '../operator/size.js';

/*
 * How a payout table becomes transactions, before any of them is built:
 * rows cut into groups of at most --max-outputs, and for each group the
 * payer's coins that pay it, its fee and its change. Pure: no node, no
 * index, no keys, so every rule here is tested without a chain.
 */

/** The payer's address kinds a single key spends, as a wallet signs them. */
export type PayerKind = 'p2wpkh' | 'p2pkh' | 'p2tr' | 'p2sh-p2wpkh';

/** One row of the payout table to pay: where it stands in the table, its script and its amount. */
export interface PayRow {
  readonly index: number;
  readonly stakeScript: Buffer;
  readonly amount: bigint;
}

/** A coin of the payer; `prevTx` is the whole transaction that made it, when at hand. */
export interface PayerCoin extends StakeCoin {
  readonly prevTx?: Buffer;
}

/** One transaction of the payment: the rows it pays, the coins it spends, its fee and change. */
export interface TxPlan {
  readonly rows: PayRow[];
  readonly inputs: PayerCoin[];
  readonly paid: bigint;
  readonly fee: bigint;
  /** Estimated with signatures at their largest: the signed transaction is never bigger. */
  readonly vsize: number;
  /** 0 when the leftover was below dust and went to the fee: then there is no change output. */
  readonly change: bigint;
}

/** Bitcoin Core's standard limit, 400 000 weight units. */
export const MAX_STANDARD_VSIZE = 100_000;
/** Core's -dustrelayfee default (sat/vB), which sets the dust threshold of each output type. */
const DUST_RELAY_RATE = 3n;

/** The payer's kind from its output script; a P2SH payer is taken to be P2SH-P2WPKH, the one single-key P2SH wallets use. */
export function payerKind(script: Uint8Array): PayerKind | null {
  switch (stakeTemplate(script)) {
    case 'p2wpkh': return 'p2wpkh';
    case 'p2pkh': return 'p2pkh';
    case 'p2tr': return 'p2tr';
    case 'p2sh': return 'p2sh-p2wpkh';
    default: return null;
  }
}

/** The signed size of one payer input; a P2PKH key may be uncompressed (65 bytes). */
export function payerInput(kind: PayerKind, compressed = true): InputSize {
  switch (kind) {
    case 'p2wpkh': return P2WPKH_INPUT;
    case 'p2pkh': return P2PKH_INPUT(compressed);
    case 'p2tr': return P2TR_KEY_INPUT;
    case 'p2sh-p2wpkh': return P2SH_P2WPKH_INPUT;
  }
}

/**
 * The smallest output a Core-family node relays for this script: what
 * spending it would cost at the dust relay rate, counting the output and a
 * typical input that spends it (67 vB for a witness program, 148 otherwise).
 */
export function dustThreshold(script: Uint8Array): bigint {
  const output = 8 + 1 + script.length;
  const witnessProgram = script.length >= 4 && script.length <= 42 && (script[0] === 0 || (script[0]! >= 0x51 && script[0]! <= 0x60)) && script[1] === script.length - 2;
  return BigInt(output + (witnessProgram ? 67 : 148)) * DUST_RELAY_RATE;
}

/** The rows in table order, cut into groups of at most `maxOutputs`. */
export function groupRows(rows: readonly PayRow[], maxOutputs: number): PayRow[][] {
  const groups: PayRow[][] = [];
  for (let i = 0; i < rows.length; i += maxOutputs) groups.push(rows.slice(i, i + maxOutputs));
  return groups;
}

const feeAt = (rate: number, vsize: number): bigint => BigInt(Math.ceil(rate * vsize));
const sum = (xs: Iterable<bigint>): bigint => {
  let s = 0n;
  for (const x of xs) s += x;
  return s;
};

export interface PlanRequest {
  readonly rows: readonly PayRow[];
  readonly coins: readonly PayerCoin[];
  readonly payerScript: Buffer;
  readonly input: InputSize;
  /** sat/vB. */
  readonly feeRate: number;
  readonly maxOutputs: number;
  /** The height of the next block, for coinbase maturity. */
  readonly nextHeight: number;
  /** The payer's address, for messages. */
  readonly label: string;
}

/**
 * Plans the payment: every row paid exactly once, in table order, by one
 * transaction per group of rows. Each group takes the largest coins left
 * until they pay its rows and its fee at `feeRate` with change above dust
 * (or, without change, a leftover below dust that goes to the fee).
 */
export function planPayment(r: PlanRequest): TxPlan[] {
  for (const row of r.rows) {
    const dust = dustThreshold(row.stakeScript);
    if (row.amount < dust) {
      throw new UserError(`row ${row.index + 1} pays ${row.amount} base units to ${row.stakeScript.toString('hex')}, below the ${dust} a node relays for that output: raise --min-payout to at least ${dust}`);
    }
  }
  if (r.rows.length === 0) throw new UserError('the payout table has no rows: nothing to pay');
  const pool = r.coins.filter((c) => isSpendable(c, r.nextHeight)).sort((a, b) => (b.value > a.value ? 1 : b.value < a.value ? -1 : 0));
  const immature = r.coins.length - pool.length;
  const changeDust = dustThreshold(r.payerScript);
  const plans: TxPlan[] = [];
  const groups = groupRows(r.rows, r.maxOutputs);
  groups.forEach((rows, g) => {
    const paid = sum(rows.map((x) => x.amount));
    const scripts = rows.map((x) => x.stakeScript);
    const inputs: PayerCoin[] = [];
    let have = 0n;
    let plan: TxPlan | null = null;
    while (plan === null) {
      const next = pool.shift();
      if (next === undefined) throw shortOfFunds(r, groups, g, have, immature);
      inputs.push(next);
      have += next.value;
      const sizes = inputs.map(() => r.input);
      const vsize = estimateVsize(sizes, [...scripts, r.payerScript]);
      const fee = feeAt(r.feeRate, vsize);
      if (have - paid - fee >= changeDust) {
        plan = { rows, inputs, paid, fee, vsize, change: have - paid - fee };
        break;
      }
      const bare = estimateVsize(sizes, scripts);
      const leftover = have - paid - feeAt(r.feeRate, bare);
      if (leftover >= 0n) plan = { rows, inputs, paid, fee: have - paid, vsize: bare, change: 0n };
    }
    if (plan.vsize > MAX_STANDARD_VSIZE) {
      throw new UserError(`transaction ${g + 1} would be about ${plan.vsize} vB (${plan.inputs.length} inputs, ${rows.length} outputs), above the ${MAX_STANDARD_VSIZE} vB a node relays: lower --max-outputs, or consolidate the payer's coins first`);
    }
    plans.push(plan);
  });
  return plans;
}

/**
 * The refusal when the coins run out at group `g`. When even the least the
 * whole payment can cost (each transaction one input, no change) is above
 * the spendable total, it says how much more to send; otherwise the coins
 * are there but locked in earlier transactions' change, which only confirms
 * later, so it says to add a coin or to need fewer transactions.
 */
function shortOfFunds(r: PlanRequest, groups: PayRow[][], g: number, have: bigint, immature: number): UserError {
  const spendable = r.coins.filter((c) => isSpendable(c, r.nextHeight));
  const available = sum(spendable.map((c) => c.value));
  const toPay = sum(r.rows.map((x) => x.amount));
  const leastFees = sum(groups.map((rows) => feeAt(r.feeRate, estimateVsize([r.input], rows.map((x) => x.stakeScript)))));
  const immatureNote = immature > 0 ? ` (${immature} immature coinbase coin(s) not counted)` : '';
  if (available < toPay + leastFees) {
    return new UserError(`insufficient funds: ${r.label} has ${showCoins(available)} spendable in ${spendable.length} coin(s)${immatureNote}, `
      + `but the ${r.rows.length} payout(s) need ${showCoins(toPay)} plus at least ${showCoins(leastFees)} in fees at ${r.feeRate} sat/vB: `
      + `send at least ${showCoins(toPay + leastFees - available)} more to ${r.label} (or lower --amount) and retry`);
  }
  const rows = groups[g]!;
  return new UserError(`insufficient funds for transaction ${g + 1} of ${groups.length} (rows ${rows[0]!.index + 1}..${rows[rows.length - 1]!.index + 1}): `
    + `the coins left to it hold ${showCoins(have)}, below its ${showCoins(sum(rows.map((x) => x.amount)))} plus fee, because the earlier transactions took the other `
    + `${spendable.length} coin(s)${immatureNote} and their change is spendable only once they confirm: send another coin to ${r.label}, `
    + 'or raise --max-outputs so that fewer transactions are needed');
}
