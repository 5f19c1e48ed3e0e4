import { readFileSync } from 'node:fs';
import { Transaction } from 'bitcoinjs-lib';
import { UserError } from '../common.js';
import type { PayerCoin } from './plan.js';

/*
 * The --utxos file: the payer's coins when the index should not be asked
 * (coins held elsewhere, or a payer the index has not seen yet). A JSON
 * array, or an object with a "utxos" array, of entries like
 *
 *   {"txid": "<64 hex, as RPC shows it>", "vout": 0, "value": "150000000"}
 *
 * with the value in base units (a decimal string or a whole number), or
 * "amount" in coins as `bitcoin-cli listunspent` prints it. Optional:
 * "scriptPubKey" (must be the payer's), "height" (the block it was mined
 * in, so its transaction is read from that block) and "prevTx" (the whole
 * previous transaction in hex, which P2PKH inputs need when no node is given).
 * So `bitcoin-cli listunspent 1 9999999 '["<payer>"]' > utxos.json` works as is.
 */

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const COIN = 100_000_000;

/** Coins as `amount` (a number of coins with at most 8 decimals) or `value` (base units). */
function valueOf(e: Json, where: string): bigint | null {
  if (e.value !== undefined) {
    if (typeof e.value === 'string' && /^\d{1,20}$/.test(e.value)) return BigInt(e.value);
    if (typeof e.value === 'number' && Number.isSafeInteger(e.value) && e.value >= 0) return BigInt(e.value);
    throw new UserError(`${where}: "value" must be a whole number of base units (e.g. "150000000"), got ${JSON.stringify(e.value)}`);
  }
  if (e.amount !== undefined) {
    const units = typeof e.amount === 'number' ? Math.round(e.amount * COIN) : NaN;
    if (!Number.isSafeInteger(units) || units < 0 || Math.abs(units - (e.amount as number) * COIN) > 1e-3) {
      throw new UserError(`${where}: "amount" must be a number of coins with at most 8 decimals (e.g. 1.5), got ${JSON.stringify(e.amount)}`);
    }
    return BigInt(units);
  }
  return null;
}

function hexField(e: Json, field: string, where: string): Buffer | undefined {
  const v = e[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !/^([0-9a-fA-F]{2})+$/.test(v)) throw new UserError(`${where}: "${field}" must be hex, got ${JSON.stringify(v).slice(0, 80)}`);
  return Buffer.from(v, 'hex');
}

function entry(e: unknown, i: number, payerScript: Buffer, file: string): PayerCoin {
  const where = `--utxos ${file}: entry ${i + 1}`;
  if (!isObject(e)) throw new UserError(`${where} is not an object like {"txid": "…", "vout": 0, "value": "…"}`);
  if (typeof e.txid !== 'string' || !/^[0-9a-fA-F]{64}$/.test(e.txid)) throw new UserError(`${where}: "txid" must be 64 hex digits`);
  if (!Number.isSafeInteger(e.vout) || (e.vout as number) < 0 || (e.vout as number) > 0xffffffff) throw new UserError(`${where}: "vout" must be a whole number ≥ 0`);
  if (e.height !== undefined && (!Number.isSafeInteger(e.height) || (e.height as number) < 0)) throw new UserError(`${where}: "height" must be a whole block height ≥ 0`);
  const txid = e.txid.toLowerCase();
  const vout = e.vout as number;
  const script = hexField(e, 'scriptPubKey', where);
  if (script && !script.equals(payerScript)) throw new UserError(`${where}: its scriptPubKey is not the --pay-from address's; list only the payer's coins`);
  let value = valueOf(e, where);
  const raw = hexField(e, 'prevTx', where);
  if (raw) {
    let tx: Transaction;
    try {
      tx = Transaction.fromBuffer(raw);
    } catch {
      throw new UserError(`${where}: "prevTx" is not a transaction`);
    }
    if (tx.getId() !== txid) throw new UserError(`${where}: "prevTx" is transaction ${tx.getId()}, not ${txid}`);
    const out = tx.outs[vout];
    if (!out) throw new UserError(`${where}: "prevTx" has no output ${vout}`);
    if (!Buffer.from(out.script).equals(payerScript)) throw new UserError(`${where}: output ${vout} of "prevTx" does not pay the --pay-from address`);
    if (value !== null && value !== out.value) throw new UserError(`${where}: "value" ${value} differs from the ${out.value} that "prevTx" says`);
    value = out.value;
  }
  if (value === null) throw new UserError(`${where}: give its "value" in base units (or "amount" in coins)`);
  if (value === 0n) throw new UserError(`${where}: a coin of 0 base units pays nothing`);
  // Heights unknown: the coin is taken to be spendable, as listunspent lists it.
  return { txid, vout, value, height: (e.height as number | undefined) ?? -1, coinbase: false, ...(raw ? { prevTx: raw } : {}) };
}

/** Reads and checks a --utxos file; every mistake names the entry and the field. */
export function readUtxosFile(file: string, payerScript: Buffer): PayerCoin[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read --utxos ${file} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UserError(`--utxos ${file} is not JSON (${(err as Error).message}); see "Paying the nodes" in docs/operators.md for the format`);
  }
  const list = Array.isArray(doc) ? doc : isObject(doc) && Array.isArray(doc.utxos) ? doc.utxos : null;
  if (list === null) throw new UserError(`--utxos ${file} must hold a JSON array of coins, or {"utxos": [...]}`);
  const coins = list.map((e, i) => entry(e, i, payerScript, file));
  const seen = new Set<string>();
  for (const c of coins) {
    const op = `${c.txid}:${c.vout}`;
    if (seen.has(op)) throw new UserError(`--utxos ${file} lists ${op} twice`);
    seen.add(op);
  }
  return coins;
}
