import { detectAnnouncement, isAttempt, type Attempt } from '../../script/carrier.js';
import { checkLinks, ChainMismatchError, endOfBlock, judge, type BlockSummary } from './connect.js';
import { K } from '../store/layout.js';
import { CoinTable, ScriptTable } from './memtables.js';
import { RegistryWriter } from './registry.js';
import { scanHeader, visitBlock, type BlockVisitor } from '../chain/scanner.js';
import type { ChainState } from '../store/state.js';

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const u32 = (b: Uint8Array, p: number): number => (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;

/**
 * The UTXO set and balances of a recount into a temporary index, kept in
 * memory instead of the database: nothing is ever disconnected or queried
 * from such an index except the registry, so coins need never be written.
 * Full mode holds every coin and every script's balance; `onlyStakes` mode
 * (the fast recount's second pass) holds only coins paying announced stakes.
 * The registry itself still lives in `ChainState` and reaches the database
 * through its flushes, exactly as with the database engine.
 */
export class MemoryUtxo {
  readonly coins: CoinTable;
  readonly scripts = new ScriptTable();

  /** `stakes`: every stake script (latin1) the chain's announcements name. */
  constructor(readonly onlyStakes: boolean, stakes: Iterable<string>, expectedCoins = 1024) {
    this.coins = new CoinTable(Math.min(expectedCoins, 1 << 22));
    for (const s of stakes) {
      const b = Buffer.from(s, 'latin1');
      // Interning may grow the id arrays, so take `stake` only afterwards.
      const id = this.scripts.intern(b, 0, b.length);
      this.scripts.stake[id] = 1;
    }
  }

  get byteSize(): number {
    return this.coins.byteSize + this.scripts.byteSize;
  }

  /** Latin1 key of a script id, as the registry indexes scripts. */
  key(id: number): string {
    return this.scripts.bytes(id).toString('latin1');
  }

  balanceOf(script: Uint8Array): bigint {
    const id = this.scripts.find(script, 0, script.length);
    return id < 0 ? 0n : this.scripts.balance(id);
  }

  /**
   * Flags `script` as a stake once the registry holds a registration for it,
   * so a recount that did not know the chain's stakes up front (full mode)
   * still tracks every registered script from then on. A script registered
   * by this block whose balance the block changed joins `touched`, as it
   * would have had it been flagged from the start.
   */
  markRegistered(state: ChainState, script: Uint8Array, stamp: number, touched: Set<number>): void {
    const key = Buffer.from(script).toString('latin1');
    if (!state.current.has(key)) return;
    const id = this.scripts.intern(script, 0, script.length);
    if (this.scripts.stake[id] === 1) return;
    this.scripts.stake[id] = 1;
    if (this.scripts.touchedAt[id] === stamp) touched.add(id);
  }

  /** Hands the balances of every stake script to the state, for the 'b' rows the export reads. */
  storeStakeBalances(state: ChainState): void {
    for (let id = 0; id < this.scripts.count; id++) {
      if (this.scripts.stake[id] !== 1) continue;
      const value = this.scripts.balance(id);
      if (value !== 0n) state.balances.set(this.key(id), { value, dirty: true });
    }
  }
}

/**
 * Applies one block (its bytes and its txids from the chain pass) to an
 * in-memory recount: the same steps and registry writes as `connectBlock`,
 * minus the undo record.
 */
export function connectInMemory(state: ChainState, mem: MemoryUtxo, bytes: Buffer, txids: Buffer, height: number): BlockSummary {
  const header = scanHeader(bytes);
  checkLinks(state, { ...header, txs: [] }, height);
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

  const visitor: BlockVisitor = {
    input(b, at, coinbase) {
      if (coinbase) return;
      const vout = u32(b, at + 32);
      if (!coins.spend(b, at, vout)) {
        if (only) return;
        throw new ChainMismatchError(`block ${height} (${rpcHex(header.hash)}) spends ${rpcHex(b.subarray(at, at + 32))}:${vout}, an output the index does not have: the chain data is incomplete or corrupt`);
      }
      const id = coins.script;
      scripts.add(id, coins.lo, coins.hi, -1);
      scripts.touchedAt[id] = stamp;
      if (scripts.stake[id] === 1) touched.add(id);
      spent[nSpent++] = id;
    },
    output(b, vout, valueAt, s, e) {
      if (e > s && b[s] === 0x6a) {
        const script = b.subarray(s, e);
        if (isAttempt(script)) (attempts ??= []).push({ vout, attempt: detectAnnouncement(script)! });
        return;
      }
      const id = only ? scripts.find(b, s, e) : scripts.intern(b, s, e);
      if (id < 0) return;
      const lo = u32(b, valueAt);
      const hi = u32(b, valueAt + 4);
      coins.add(txids, tx * 32, vout, id, lo, hi);
      scripts.add(id, lo, hi, 1);
      scripts.touchedAt[id] = stamp;
      if (scripts.stake[id] === 1) touched.add(id);
    },
    txEnd(index, coinbase) {
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
  const txCount = height === 0 ? visitBlock(bytes, { input() {}, output() {}, txEnd() {} }) : visitBlock(bytes, visitor);
  if (txids.length !== txCount * 32) throw new ChainMismatchError(`block ${height} has ${txCount} transactions but the chain pass saw ${txids.length / 32}`);

  const byKey = new Map([...touched].map((id) => [mem.key(id), id]));
  endOfBlock(state, writer, height, [...byKey.keys()], (sk) => scripts.balance(byKey.get(sk)!));

  state.putRow(K.blockHash(height), Buffer.from(header.hash));
  state.putRow(K.heightState(height), state.heightState());
  state.tip = { height, hash: Buffer.from(header.hash) };
  return { height, hash: Buffer.from(header.hash), txCount, events: writer.events };
}
