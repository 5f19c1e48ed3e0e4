import { detectAnnouncement, isAttempt, type Attempt } from '../../script/carrier.js';
import { interpret, judgeAttempts, type InterpretContext } from '../../script/interpreter.js';
import { K, outpoint } from '../store/layout.js';
import { RegistryWriter, type BlockEvent } from './registry.js';
import type { ScannedBlock, ScannedTx } from '../chain/scanner.js';
import { bkey, type ChainState } from '../store/state.js';
import type { Coin } from '../types.js';
import { encodeUndo, type CoinOp } from '../store/undo.js';
import { utxoElement } from './utxohash.js';

/** The block does not extend the tip, or spends an output the index has never seen. */
export class ChainMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChainMismatchError';
  }
}

export interface ConnectOptions {
  /**
   * Fast mode: only coins paying these scripts are tracked. Inputs spending
   * anything else are skipped instead of being reported as unknown.
   */
  readonly onlyScripts?: ReadonlySet<string>;
}

export interface BlockSummary {
  readonly height: number;
  readonly hash: Buffer;
  readonly txCount: number;
  readonly events: BlockEvent[];
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const isOpReturn = (s: Uint8Array): boolean => s.length > 0 && s[0] === 0x6a;

/**
 * Applies one block to the state (docs/spec.md §3): for each transaction, spend
 * its inputs, add its outputs, then judge its announcement attempts; then
 * expire, then lapse, and record the root, the undo record and the new tip.
 * Nothing is written to disk here: the caller flushes the state.
 */
export async function connectBlock(state: ChainState, block: ScannedBlock, height: number, opts: ConnectOptions = {}): Promise<BlockSummary> {
  checkLinks(state, block, height);
  const writer = new RegistryWriter(state, height);
  const coinOps: CoinOp[] = [];
  const only = opts.onlyScripts;
  // Core never puts the genesis coinbase in the UTXO set: it cannot be spent.
  const txs = height === 0 ? [] : block.txs;

  await prefetch(state, txs, only);

  const touched = new Set<string>();
  for (const tx of txs) {
    const spentScripts: Buffer[] = [];
    if (!tx.coinbase) {
      for (const input of tx.inputs) {
        const op = outpoint(input.prevTxid, input.prevVout);
        const coin = state.spendCoin(bkey(op));
        if (coin === undefined) {
          if (only) continue;
          throw new ChainMismatchError(`block ${height} (${rpcHex(block.hash)}) spends ${rpcHex(input.prevTxid)}:${input.prevVout}, an output the index does not have: the chain data is incomplete or corrupt`);
        }
        const sk = bkey(coin.script);
        state.addBalance(sk, -coin.value);
        if (state.utxoHash) {
          const el = utxoElement(input.prevTxid, input.prevVout, coin);
          if (el) state.utxoHash.remove(el);
        }
        touched.add(sk);
        spentScripts.push(coin.script);
        coinOps.push({ added: false, outpoint: op, coin });
      }
    }
    const attempts: Array<{ vout: number; attempt: Attempt }> = [];
    tx.outputs.forEach((out, vout) => {
      if (isOpReturn(out.script)) {
        if (isAttempt(out.script)) attempts.push({ vout, attempt: detectAnnouncement(out.script)! });
        return;
      }
      const sk = bkey(out.script);
      if (only && !only.has(sk)) return;
      const op = outpoint(tx.txid, vout);
      const coin: Coin = { value: out.value, height, coinbase: tx.coinbase, script: Buffer.from(out.script) };
      state.addCoin(bkey(op), coin);
      state.addBalance(sk, out.value);
      if (state.utxoHash) {
        const el = utxoElement(tx.txid, vout, coin);
        if (el) state.utxoHash.insert(el);
      }
      touched.add(sk);
      coinOps.push({ added: true, outpoint: op });
    });
    if (attempts.length > 0) {
      judge(state, writer, {
        txid: tx.txid, index: tx.index, coinbase: tx.coinbase,
        spendsScript: (s) => spentScripts.some((x) => x.equals(s)),
        balanceAfter: (s) => state.balance(bkey(s)),
      }, height, block.time, attempts);
    }
  }
  endOfBlock(state, writer, height, touched);
  writer.blockTime(block.time);

  state.putRow(K.blockHash(height), Buffer.from(block.hash));
  state.putRow(K.heightState(height), state.heightState());
  const kv = [...writer.priors].map(([k, prior]) => ({ key: Buffer.from(k, 'latin1'), prior }));
  if (!state.throwaway) state.putRow(K.undo(height), encodeUndo({ coinOps, kv }));
  state.tip = { height, hash: Buffer.from(block.hash) };
  return { height, hash: Buffer.from(block.hash), txCount: block.txs.length, events: writer.events };
}

export function checkLinks(state: ChainState, block: ScannedBlock, height: number): void {
  if (height === 0) {
    if (state.tip !== null) throw new ChainMismatchError('genesis connected onto a non-empty index');
    if (rpcHex(block.hash) !== state.params.genesisHash) {
      throw new ChainMismatchError(`block 0 is ${rpcHex(block.hash)}, not the genesis of ${state.params.name} (${state.params.genesisHash}); check --network/--params`);
    }
    return;
  }
  if (state.tip === null || state.tip.height !== height - 1 || !state.tip.hash.equals(block.prevHash)) {
    throw new ChainMismatchError(`block ${rpcHex(block.hash)} at height ${height} does not extend the index tip ${state.tip ? `${state.tip.height} ${rpcHex(state.tip.hash)}` : '(empty)'}`);
  }
}

/** Two round trips per block: the coins being spent, then the balances they and the new outputs touch. */
async function prefetch(state: ChainState, txs: ScannedTx[], only: ReadonlySet<string> | undefined): Promise<void> {
  const created = new Set<string>();
  for (const tx of txs) created.add(bkey(tx.txid));
  const ops: string[] = [];
  for (const tx of txs) {
    if (tx.coinbase) continue;
    for (const input of tx.inputs) {
      if (!created.has(bkey(input.prevTxid))) ops.push(bkey(outpoint(input.prevTxid, input.prevVout)));
    }
  }
  await state.loadCoins(ops);
  const scripts = new Set<string>();
  for (const op of ops) {
    const e = state.coins.get(op);
    if (e) scripts.add(bkey(e.coin.script));
  }
  for (const tx of txs) {
    for (const out of tx.outputs) {
      if (isOpReturn(out.script)) {
        const a = isAttempt(out.script) ? detectAnnouncement(out.script) : null;
        if (a?.ok) scripts.add(bkey(a.announcement.stakeScript));
        continue;
      }
      const sk = bkey(out.script);
      if (!only || only.has(sk)) scripts.add(sk);
    }
  }
  await state.loadBalances([...scripts]);
}

/** The transaction whose announcement attempts are judged, and what it did to the coins. */
export interface JudgedTx {
  readonly txid: Buffer;
  readonly index: number;
  readonly coinbase: boolean;
  /** Does one of its inputs spend a coin paying this script. */
  spendsScript(script: Uint8Array): boolean;
  /** The script's balance after the transaction's inputs and outputs. */
  balanceAfter(script: Uint8Array): bigint;
}

/** Runs a transaction's announcement attempts against the registry and records each outcome. */
export function judge(
  state: ChainState, writer: RegistryWriter, tx: JudgedTx, height: number, blockTime: number,
  attempts: Array<{ vout: number; attempt: Attempt }>,
): void {
  const ctx: InterpretContext = {
    height,
    blockTime,
    isCoinbase: tx.coinbase,
    spendsScript: (s) => tx.spendsScript(s),
    balanceAfter: (s) => tx.balanceAfter(s),
    registration: (s) => writer.view(Buffer.from(s)),
  };
  for (const j of judgeAttempts(attempts)) {
    if (j.reason !== null) {
      writer.outcome(tx.txid, tx.index, j.vout, j.announcement, j.reason);
      continue;
    }
    const verdict = interpret(j.announcement, ctx, state.params);
    if (!verdict.accepted) {
      writer.outcome(tx.txid, tx.index, j.vout, j.announcement, verdict.reason);
      continue;
    }
    if (j.announcement.kind === 'newnode') writer.register(j.announcement, tx.index, tx.txid);
    else writer.renew(j.announcement, tx.index, tx.txid);
    writer.outcome(tx.txid, tx.index, j.vout, j.announcement, null);
  }
}

/**
 * End-of-block processing: expiries, then lapses among the scripts whose
 * balance the block touched, then the balance history of registered scripts.
 */
export function endOfBlock(
  state: ChainState, writer: RegistryWriter, height: number, touched: Iterable<string>, balanceOf: (sk: string) => bigint = (sk) => state.balance(sk),
): void {
  const expiring = state.expiring.get(height);
  if (expiring) for (const id of [...expiring].sort()) writer.end(id, 'expired');
  const lapsing: string[] = [];
  for (const sk of touched) {
    const id = state.current.get(sk);
    if (id !== undefined && state.open.has(id) && balanceOf(sk) < state.params.minStake) lapsing.push(id);
  }
  for (const id of lapsing.sort()) writer.end(id, 'lapsed');
  for (const sk of touched) {
    if (state.current.has(sk)) writer.stakeBalance(Buffer.from(sk, 'latin1'), balanceOf(sk));
  }
}
