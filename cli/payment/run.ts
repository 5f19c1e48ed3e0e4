import { existsSync, writeFileSync } from 'node:fs';
import type { Transaction } from 'bitcoinjs-lib';
import { payoutTable, type PayoutRequest, type PayoutTable } from '../../indexer/read/payouts.js';
import type { RpcClient } from '../../indexer/node/rpc.js';
import { RpcError } from '../../indexer/node/rpc.js';
import { AddressError, parseStake } from '../../script/address.js';
import type { NetworkParams } from '../../script/params.js';
import { printJson, UsageError, UserError, type NetworkArgs } from '../common.js';
import { coins as showCoins } from '../format.js';
import { ApiSource } from '../operator/api-source.js';
import { unsignedTx } from '../operator/build.js';
import { loadKey, toNetwork } from '../operator/keys.js';
import { checkChain, feeFloor, fetchPrevTxs, rpcFrom, sendTransaction, type FeeFloor, type RpcArgs } from '../operator/node.js';
import { asOperatorError, DbSource, type IndexSource } from '../operator/sources.js';
import { looksLikeWif } from '../operator/wif.js';
import { apiPayouts } from '../query-source.js';
import { planPayment, type PayerCoin, type TxPlan } from './plan.js';
import { buildPaymentPsbt, needsPrevTx, payerSpend, psbtFiles, signPayment, wantsPrevTx, type PayerSpend } from './psbt.js';
import { readUtxosFile } from './utxos.js';

/*
 * `nodereg payouts … --pay-from`: the payout table turned into PSBTs that
 * pay it, optionally signed with the payer's key file and sent to the node.
 * Loaded only then, so the plain table needs no signing stack.
 */

export interface PayArgs extends NetworkArgs, RpcArgs {
  db?: string;
  api?: string;
  json: boolean;
  payFrom: string;
  feeRate: number;
  psbt: string;
  maxOutputs: number;
  utxos?: string;
  keyFile?: string;
  broadcast: boolean;
}

/** One written transaction of the payment, as --json prints it. */
interface Written {
  file: string;
  psbt: string;
  txid: string;
  rows: number;
  firstRow: number;
  lastRow: number;
  inputs: number;
  paid: string;
  fee: string;
  vsize: number;
  change: string;
  signed: boolean;
  hex?: string;
  sent: boolean;
}

function payerArg(value: string, params: NetworkParams): Buffer {
  if (looksLikeWif(value)) throw new UsageError('--pay-from looks like a private key, not an address: keys are never accepted on the command line; use --key-file <file> (mode 600)');
  try {
    return parseStake(value, params);
  } catch (err) {
    if (err instanceof AddressError) throw new UsageError(`--pay-from: ${err.message}`);
    throw err;
  }
}

/** The node is asked when a flag names it, and always for --broadcast. */
const wantsNode = (a: PayArgs): boolean => a.broadcast || a.rpc !== undefined || a.datadir !== undefined || a.rpcCookie !== undefined;

async function tableOf(source: IndexSource, req: PayoutRequest): Promise<PayoutTable> {
  if (source instanceof DbSource) return payoutTable(source.db, source.params, req);
  return apiPayouts(source as ApiSource, req);
}

/** Refuses a rate the node would not relay: its mempool minimum or its relay floor. */
function checkFloor(rate: number, floor: FeeFloor | null, url: string): void {
  if (floor === null || rate >= floor.rate) return;
  const setting = floor.source === 'mempoolminfee' ? 'mempoolminfee (getmempoolinfo)' : 'relayfee (getnetworkinfo, -minrelaytxfee)';
  throw new UserError(`--fee-rate ${rate} sat/vB is below the node's floor of ${floor.rate} sat/vB (${setting} at ${url}): it would refuse the payment; pass --fee-rate ${floor.rate} or more`);
}

/** The payer's coins as --utxos lists them, or as the index holds them. */
async function payerCoins(a: PayArgs, source: IndexSource, script: Buffer): Promise<PayerCoin[]> {
  if (a.utxos !== undefined) return readUtxosFile(a.utxos, script);
  return (await source.stake(script)).coins;
}

/** A transaction by txid alone: from the mempool, or any block when the node keeps -txindex. */
async function rawTransaction(rpc: RpcClient, txid: string): Promise<Buffer> {
  try {
    const hex = await rpc.call<unknown>('getrawtransaction', [txid, false]);
    if (typeof hex === 'string' && /^([0-9a-f]{2})+$/i.test(hex)) return Buffer.from(hex, 'hex');
  } catch (err) {
    if (!(err instanceof RpcError && err.kind === 'rpc')) throw err;
  }
  throw new UserError(`the node cannot find transaction ${txid} (without -txindex it finds only mempool transactions): add its "height" or "prevTx" to --utxos`);
}

/**
 * Adds the previous transactions the inputs carry: required for P2PKH,
 * added for segwit v0 when the node can give them. Without a node, a P2PKH
 * payer's coins must bring them in --utxos ("prevTx").
 */
async function withPrevTxs(plans: TxPlan[], spend: PayerSpend, rpc: RpcClient | null, label: string): Promise<TxPlan[]> {
  if (!wantsPrevTx(spend.kind)) return plans;
  const missing = plans.flatMap((p) => p.inputs).filter((c) => c.prevTx === undefined);
  if (missing.length === 0) return plans;
  if (rpc === null) {
    if (!needsPrevTx(spend.kind)) return plans;
    throw new UserError(`${label} is a P2PKH address: each of its inputs needs the whole previous transaction (nonWitnessUtxo) and ${missing.length} are missing; `
      + 'give --rpc <node> so they are read from its blocks, or add "prevTx" (hex) to each entry of --utxos');
  }
  const found = await fetchPrevTxs(rpc, missing.filter((c) => c.height >= 0));
  for (const c of missing) {
    if (c.height >= 0 || found.has(c.txid)) continue;
    try {
      found.set(c.txid, await rawTransaction(rpc, c.txid));
    } catch (err) {
      // Only legacy inputs cannot do without it; a segwit v0 input still has its witnessUtxo.
      if (needsPrevTx(spend.kind) || !(err instanceof UserError)) throw err;
    }
  }
  return plans.map((p) => ({ ...p, inputs: p.inputs.map((c) => (c.prevTx ? c : { ...c, ...(found.has(c.txid) ? { prevTx: found.get(c.txid)! } : {}) })) }));
}

function writePsbt(file: string, base64: string): void {
  try {
    writeFileSync(file, base64 + '\n', { flag: 'wx' });
  } catch (err) {
    throw new UserError(`cannot write ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** Sends each transaction in turn; a refusal names what was already sent, so nobody pays twice. */
async function broadcastAll(rpc: RpcClient, written: Written[], txs: Transaction[]): Promise<void> {
  for (let i = 0; i < txs.length; i++) {
    try {
      await sendTransaction(rpc, txs[i]!.toHex(), written[i]!.txid);
    } catch (err) {
      const sent = written.slice(0, i).map((w) => w.txid);
      const already = sent.length === 0 ? 'nothing was sent' : `already sent: ${sent.join(', ')}; do not run the whole payment again`;
      throw new UserError(`${(err as Error).message} (transaction ${i + 1} of ${txs.length}, ${written[i]!.file}; ${already})`);
    }
    written[i]!.sent = true;
  }
}

function readable(p: { payer: string; feeRate: number; floor: FeeFloor | null; node: boolean; written: Written[] }): string {
  const lines = ['', `payment    from ${p.payer} at ${p.feeRate} sat/vB`
    + (p.floor ? ` (the node's floor: ${p.floor.rate} sat/vB, ${p.floor.source})` : p.node ? '' : ' (not checked against a node\'s relay floor: give --rpc)')];
  for (const w of p.written) {
    const state = w.sent ? 'signed and sent' : w.signed ? 'signed' : 'unsigned';
    lines.push(`${w.file}  rows ${w.firstRow}..${w.lastRow}, ${w.inputs} input(s), pays ${showCoins(w.paid)}, fee ${w.fee} (${w.vsize} vB), change ${showCoins(w.change)}, ${state}, txid ${w.txid}`);
  }
  const fee = p.written.reduce((s, w) => s + BigInt(w.fee), 0n);
  lines.push(`total      ${p.written.length} transaction(s), fee ${fee} base units`);
  if (!p.written.some((w) => w.signed)) lines.push(`next       sign ${p.written.length === 1 ? 'it' : 'each'} with the payer's wallet, then: nodereg broadcast <signed.psbt> --rpc …`);
  return lines.join('\n') + '\n';
}

/** Builds (and with a key signs, with --broadcast sends) the transactions that pay the table of `req`. */
export async function runPayment(a: PayArgs, req: PayoutRequest, printTable: (t: PayoutTable) => void): Promise<void> {
  let source: IndexSource;
  try {
    source = a.db !== undefined ? await DbSource.open(a.db, a) : await ApiSource.open(a.api!, a);
  } catch (err) {
    throw asOperatorError(err);
  }
  try {
    const params = source.params;
    const payer = payerArg(a.payFrom, params);
    const key = loadKey(a.keyFile, params);
    if (a.broadcast && key === null) throw new UsageError('--broadcast sends signed transactions: give the payer\'s --key-file <file> (mode 600), or sign the PSBTs elsewhere and use nodereg broadcast');
    const spend = payerSpend(payer, key, a.payFrom);
    let rpc: RpcClient | null = null;
    let floor: FeeFloor | null = null;
    if (wantsNode(a)) {
      rpc = rpcFrom(a, params);
      await checkChain(rpc, params);
      floor = await feeFloor(rpc);
      checkFloor(a.feeRate, floor, rpc.url);
      await source.catchUp(rpc);
    }
    const table = await tableOf(source, req);
    const tip = await source.tip();
    const coins = await payerCoins(a, source, payer);
    const rows = table.payouts.map((r, index) => ({ index, stakeScript: Buffer.from(r.stakeScript, 'hex'), amount: BigInt(r.amount) }));
    const planned = planPayment({ rows, coins, payerScript: payer, input: spend.input, feeRate: a.feeRate, maxOutputs: a.maxOutputs, nextHeight: tip.height + 1, label: a.payFrom });
    const plans = await withPrevTxs(planned, spend, rpc, a.payFrom);
    const files = psbtFiles(a.psbt, plans.length);
    const taken = files.filter((f) => existsSync(f));
    if (taken.length > 0) throw new UserError(`${taken.join(', ')} already exist(s): remove them or choose another --psbt (payment files are never overwritten, so an old one is not signed by mistake)`);
    const network = toNetwork(params);
    const txs: Transaction[] = [];
    const written: Written[] = plans.map((plan, i) => {
      const psbt = buildPaymentPsbt(plan, spend, tip.height, network);
      let txid = unsignedTx(psbt).getId();
      let hex: string | undefined;
      if (spend.key) {
        const tx = signPayment(psbt, spend.key);
        txs.push(tx);
        txid = tx.getId();
        hex = tx.toHex();
      }
      return {
        file: files[i]!, psbt: psbt.toBase64(), txid, rows: plan.rows.length, firstRow: plan.rows[0]!.index + 1, lastRow: plan.rows[plan.rows.length - 1]!.index + 1,
        inputs: plan.inputs.length, paid: plan.paid.toString(), fee: plan.fee.toString(), vsize: txs[i]?.virtualSize() ?? plan.vsize, change: plan.change.toString(),
        signed: spend.key !== null, ...(hex ? { hex } : {}), sent: false,
      };
    });
    for (const w of written) writePsbt(w.file, w.psbt);
    if (a.broadcast) await broadcastAll(rpc!, written, txs);
    const sumOf = (f: (w: Written) => bigint): string => written.reduce((s, w) => s + f(w), 0n).toString();
    if (a.json) {
      printJson({
        ...table,
        payment: {
          payFrom: a.payFrom, feeRate: a.feeRate, feeFloor: floor, signed: spend.key !== null, broadcast: a.broadcast, transactions: written,
          totals: { rows: rows.length, paid: sumOf((w) => BigInt(w.paid)), fee: sumOf((w) => BigInt(w.fee)), change: sumOf((w) => BigInt(w.change)), vsize: written.reduce((s, w) => s + w.vsize, 0) },
        },
      });
    } else {
      printTable(table);
      process.stdout.write(readable({ payer: a.payFrom, feeRate: a.feeRate, floor, node: rpc !== null, written }));
    }
  } catch (err) {
    throw asOperatorError(err);
  } finally {
    await source.close();
  }
}
