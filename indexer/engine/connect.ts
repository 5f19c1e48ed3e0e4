import { isUnspendable } from '../../script/opcodes.js';
import { detectAnnouncement, isAttempt, type Attempt } from '../../script/carrier.js';
import { hasStake, interpret, judgeAttempts, type InterpretContext } from '../../script/interpreter.js';
import { K } from '../store/layout.js';
import { RegistryWriter, type BlockEvent } from './registry.js';
import { scanHeader, TxWalker, txidPrint, visitBlock, type BlockVisitor, type ScannedHeader } from '../chain/scanner.js';
import type { ChainState } from '../store/state.js';
import type { Coin } from '../types.js';
import { UndoWriter } from '../store/undo.js';
import type { MemoryUtxo } from './coinview.js';
import { utxoElement } from './utxohash.js';

/** The block does not extend the tip, or spends an output the index has never seen. */
export class ChainMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChainMismatchError';
  }
}

export interface BlockSummary {
  readonly height: number;
  readonly hash: Buffer;
  readonly txCount: number;
  readonly events: BlockEvent[];
}

/**
 * A fast recount's shortcut (stakesweep.ts): the sweep's map of a block, and
 * the `txidPrint` of every txid the view has held a coin of. A block then
 * connects by walking only the transactions that can matter in `onlyStakes`
 * mode: the coinbase, those the sweep marked (paying a stake or carrying an
 * attempt), and those with an input whose spent txid's print is held. Any
 * other finds none of its outputs in the script table and none of its
 * inputs' coins in the view: walking it would change nothing. A print that
 * only looks held costs a walk, never a coin.
 */
export interface SparseConnect {
  readonly txs: {
    readonly txCount: number;
    /** Indexes, ascending. */
    readonly marked: readonly number[];
    readonly txAt: Uint32Array;
    readonly inAt: Uint32Array;
    readonly prints: Uint32Array;
  };
  /** Grows with every coin the view adds in a connect given it; it must have seen every block connected before. */
  readonly held: HeldPrints;
}

/**
 * The `txidPrint`s of the txids a fast connect has held coins of, as a set
 * of 2^25 bits (4 MiB): one bit per print modulo 2^25, so a print may look
 * held without being (a few in a hundred with a million held txids), never
 * the other way round. A bit test costs a tenth of a lookup in a Set.
 */
export class HeldPrints {
  private readonly bits = new Uint8Array(1 << 22);

  add(print: number): void {
    const i = print & 0x1ff_ffff;
    this.bits[i >>> 3] |= 1 << (i & 7);
  }

  has(print: number): boolean {
    const i = print & 0x1ff_ffff;
    return (this.bits[i >>> 3]! & (1 << (i & 7))) !== 0;
  }
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;

/** The undo record under construction: connects run one at a time, so one writer serves them all. */
const undoScratch = new UndoWriter();

/**
 * Applies one block to the state and the coin view (docs/spec.md §3): for
 * each transaction, spend its inputs, add its outputs, then judge its
 * announcement attempts; then expire, then lapse, and record the root, the
 * undo record and the new tip. Every mode connects through here: recounts
 * (temporary, kept, --fast, speculative) with the txids of the chain pass,
 * the live follower with those it computes from the node's bytes. The view
 * must have read through the block first (`MemoryUtxo.prefetch`), which keeps
 * this synchronous. Nothing is written to disk: the caller commits
 * (`MemoryUtxo.spill`), and until then readers see the previous tip.
 *
 * A kept index also gets the block's undo record (the coins in the order the
 * block spent and created them, as `disconnectTip` replays it) and, when it
 * keeps one, the UTXO-set hash moves with every coin.
 */
export function connectBlock(
  state: ChainState, mem: MemoryUtxo, bytes: Buffer, txids: Buffer, height: number, scanned?: ScannedHeader, sparse?: SparseConnect,
): BlockSummary {
  // `scanned`: the caller's scanHeader(bytes), which spares hashing the header again.
  const header = scanned ?? scanHeader(bytes);
  checkLinks(state, header, height);
  mem.connecting(txids);
  // Null but in a throwaway recount with a coin file once a first txid has repeated (coinview.ts `connecting`).
  const repeats = mem.repeatWatch;
  const writer = new RegistryWriter(state, height);
  const { coins, scripts } = mem;
  const only = mem.onlyStakes;
  const touched = new Set<number>();
  const stamp = height + 1;
  // Script ids the current transaction's inputs spent: spent[0..nSpent). A
  // counter, because truncating an array for each of a million transactions costs.
  const spent: number[] = [];
  let nSpent = 0;
  let attempts: Array<{ vout: number; attempt: Attempt }> | null = null;
  let tx = 0;
  // The stored coin's height·2 + coinbase of the current transaction's outputs (the first is the coinbase).
  let code = height * 2 + 1;
  // A kept index records every coin moved for the undo record; a temporary one skips it.
  const undo = state.throwaway ? null : undoScratch.start();
  const hash = state.utxoHash;
  const held = sparse?.held ?? null;
  const coinOf = (id: number, lo: number, hi: number, c: number): Coin => ({
    value: (BigInt(hi) << 32n) | BigInt(lo), height: c >>> 1, coinbase: (c & 1) === 1, script: Buffer.from(scripts.bytes(id)),
  });

  const visitor: BlockVisitor = {
    input(b, at, coinbase) {
      if (coinbase) return;
      // Spending an output of a txid that may have repeated: this one may repeat too.
      if (repeats !== null && repeats.has(b, at)) repeats.add(txids, tx * 32);
      const vout = u32(b, at + 32);
      let id: number;
      let lo: number;
      let hi: number;
      let c: number;
      if (coins.spend(b, at, vout)) {
        id = coins.script;
        lo = coins.lo;
        hi = coins.hi;
        c = coins.code;
      } else if (mem.spendLoaded(b, at, vout)) {
        id = mem.script;
        lo = mem.lo;
        hi = mem.hi;
        c = mem.code;
      } else {
        if (only) return;
        throw new ChainMismatchError(`block ${height} (${rpcHex(header.hash)}) spends ${rpcHex(b.subarray(at, at + 32))}:${vout}, an output the index does not have: the chain data is incomplete or corrupt`);
      }
      scripts.add(id, lo, hi, -1);
      if (hash !== null) {
        const el = utxoElement(b.subarray(at, at + 32), vout, coinOf(id, lo, hi, c));
        if (el) hash.remove(el);
      }
      undo?.spent(b, at, vout, lo, hi, c, scripts, id);
      scripts.touchedAt[id] = stamp;
      if (scripts.stake[id] === 1) touched.add(id);
      spent[nSpent++] = id;
    },
    output(b, vout, valueAt, s, e) {
      if (isUnspendable(b, s, e)) {
        const script = b.subarray(s, e);
        if (isAttempt(script)) (attempts ??= []).push({ vout, attempt: detectAnnouncement(script)! });
        return;
      }
      const id = only ? scripts.find(b, s, e) : scripts.intern(b, s, e);
      if (id < 0) return;
      const lo = u32(b, valueAt);
      const hi = u32(b, valueAt + 4);
      coins.add(txids, tx * 32, vout, id, lo, hi, code);
      held?.add(txidPrint(txids, tx * 32));
      scripts.add(id, lo, hi, 1);
      if (hash !== null) {
        const el = utxoElement(txids.subarray(tx * 32, tx * 32 + 32), vout, coinOf(id, lo, hi, code));
        if (el) hash.insert(el);
      }
      undo?.added(txids, tx * 32, vout);
      scripts.touchedAt[id] = stamp;
      if (scripts.stake[id] === 1) touched.add(id);
    },
    txEnd(index, coinbase) {
      code = height * 2;
      if (attempts !== null) {
        const spentIds = spent.slice(0, nSpent);
        judge(state, writer, {
          txid: txids.subarray(index * 32, index * 32 + 32),
          index,
          coinbase,
          spendsScript: (s) => spentIds.includes(scripts.find(s, 0, s.length)),
          balanceAfter: (s) => mem.balanceOf(s),
        }, height, header.time, attempts);
        for (const { attempt } of attempts) if (attempt.ok) mem.markRegistered(state, attempt.announcement.stakeScript, stamp, touched);
      }
      attempts = null;
      nSpent = 0;
      tx = index + 1;
    },
  };
  // Core never puts the genesis coinbase in the UTXO set: it cannot be spent.
  let txCount: number;
  if (height === 0) txCount = visitBlock(bytes, { input() {}, output() {}, txEnd() {} });
  else if (sparse !== undefined && only && repeats === null && !mem.spilled) {
    // Only the coinbase, the marked transactions and those with an input that
    // may spend a held coin: the others would find nothing to do.
    const { marked, txAt, inAt, prints } = sparse.txs;
    const walker = new TxWalker(bytes);
    const h = held!;
    let m = 0;
    txCount = sparse.txs.txCount;
    for (let i = 0; i < txCount; i++) {
      let want = i === 0;
      if (m < marked.length && marked[m] === i) {
        want = true;
        m++;
      }
      for (let k = inAt[i]!, end = inAt[i + 1]!; !want && k < end; k++) want = h.has(prints[k]!);
      if (!want) continue;
      tx = i;
      code = i === 0 ? height * 2 + 1 : height * 2;
      visitor.txEnd(i, walker.visit(txAt[i]!, i, visitor));
    }
  } else {
    txCount = visitBlock(bytes, visitor);
  }
  if (txids.length !== txCount * 32) throw new ChainMismatchError(`block ${height} has ${txCount} transactions but ${txids.length / 32} txids were given`);

  const byKey = new Map([...touched].map((id) => [mem.key(id), id]));
  endOfBlock(state, writer, height, [...byKey.keys()], (sk) => scripts.balance(byKey.get(sk)!));
  writer.blockTime(header.time);
  // A throwaway index is never read at past heights.
  if (!state.throwaway) writer.proofHistory();

  state.putRow(K.blockHash(height), Buffer.from(header.hash));
  state.putRow(K.heightState(height), state.heightState());
  if (undo !== null) {
    const kv = [...writer.priors].map(([k, prior]) => ({ key: Buffer.from(k, 'latin1'), prior }));
    state.putUndo(height, undo.finish(kv));
  }
  state.tip = { height, hash: Buffer.from(header.hash) };
  return { height, hash: Buffer.from(header.hash), txCount, events: writer.events };
}

/** Throws ChainMismatchError unless the block with this header is the next one on the state's tip (or the network's genesis). */
function checkLinks(state: ChainState, block: ScannedHeader, height: number): void {
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

/** The transaction whose announcement attempts are judged, and what it did to the coins. */
interface JudgedTx {
  readonly txid: Buffer;
  readonly index: number;
  readonly coinbase: boolean;
  /** Does one of its inputs spend a coin paying this script. */
  spendsScript(script: Uint8Array): boolean;
  /** The script's balance after the transaction's inputs and outputs. */
  balanceAfter(script: Uint8Array): bigint;
}

/** Runs a transaction's announcement attempts against the registry and records each outcome. */
function judge(
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
function endOfBlock(
  state: ChainState, writer: RegistryWriter, height: number, touched: Iterable<string>, balanceOf: (sk: string) => bigint,
): void {
  const expiring = state.expiring.get(height);
  if (expiring) for (const id of [...expiring].sort()) writer.end(id, 'expired');
  const lapsing: string[] = [];
  for (const sk of touched) {
    const id = state.current.get(sk);
    if (id !== undefined && state.open.has(id) && !hasStake(balanceOf(sk), state.params)) lapsing.push(id);
  }
  for (const id of lapsing.sort()) writer.end(id, 'lapsed');
  for (const sk of touched) {
    if (state.current.has(sk)) writer.stakeBalance(Buffer.from(sk, 'latin1'), balanceOf(sk));
  }
}
