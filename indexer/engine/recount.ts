import type { NetworkParams } from '../../script/params.js';
import { BlockReader, readXorKey } from '../chain/blkfiles.js';
import { ChainLoadStopped, loadBestChain, type BestChain } from '../chain/chain.js';
import { connectBlock, HeldPrints, type BlockSummary, type SparseConnect } from './connect.js';
import { disconnectTip } from './disconnect.js';
import { K, P, parse } from '../store/layout.js';
import { decodeCoin } from '../store/codec.js';
import { SetHasher } from './sethash.js';
import { memoryPlan } from './budget.js';
import { coinsWithin, MemoryUtxo } from './coinview.js';
import { blockTxCount, scanHeader, walkTxidsInto, type ScannedHeader } from '../chain/scanner.js';
import { Speculator } from './speculate.js';
import { OutputSweeps } from '../chain/stakesweep.js';
import { DEFAULT_THREADS } from '../chain/threads.js';
import { CoinFile, type SpillRecord } from '../store/coinfile.js';
import { ChainState } from '../store/state.js';
import type { DB } from '../store/store.js';

export interface RecountOptions {
  readonly blocksDir: string;
  readonly params: NetworkParams;
  readonly db: DB;
  /** Stop at this height instead of the best chain's tip. */
  readonly height?: number;
  /** Flush the write-back cache when it holds about this many bytes. */
  readonly cacheBytes?: number;
  readonly onChainProgress?: (bytesDone: number, bytesTotal: number) => void;
  readonly onChainLoaded?: (chain: BestChain, startHeight: number, targetHeight: number) => void;
  readonly onBlock?: (summary: BlockSummary) => void;
  readonly onWarning?: (message: string) => void;
  /** Checked between blocks; when it returns true the recount flushes and stops early. */
  readonly shouldStop?: () => boolean;
  /**
   * Two passes: first collect every stake script named by a well-formed
   * announcement, then track only coins paying those scripts. The registry,
   * root and export are identical to a full recount; the UTXO set in the
   * database is partial, so such an index must not be followed afterwards.
   */
  readonly fast?: boolean;
  /** The database is deleted after the run: skip what only a kept index needs (undo, script index). */
  readonly throwaway?: boolean;
  /**
   * A throwaway recount keeps the UTXO set and balances in typed-array tables
   * of about this many bytes (default DEFAULT_MEMORY_BYTES); when they fill,
   * they spill into the temporary database and the recount goes on (0: after
   * every block).
   */
  readonly memoryBytes?: number;
  /** Threads for the chain pass (default: one per core, at most four). */
  readonly threads?: number;
  /**
   * Called before blocks of the index that are not on the directory's chain
   * are disconnected, with the index's tip and the last height both agree
   * on (-1: none); it may throw to refuse (an index of another chain).
   */
  readonly beforeRewind?: (tipHeight: number, forkHeight: number) => void;
  /**
   * @deprecated Ignored: every recount, kept or temporary, now connects
   * through the coin view (connect.ts over coinview.ts), the only engine.
   */
  readonly keptEngine?: 'view' | 'database';
  /**
   * Where a throwaway full recount keeps the coins it spills (a hidden file,
   * store/coinfile.ts; default: the system's temporary directory).
   */
  readonly spillDir?: string;
  /** Txids the chain pass keeps for the connect pass, in bytes (default: the default budget's share, budget.ts); past it blocks are hashed again. */
  readonly keepTxidBytes?: number;
  /**
   * `memoryBytes` and `keepTxidBytes` are the two shares of one budget
   * (budget.ts `memoryPlan`), so a kept index's coin view may also use the
   * part of the txid share that the chain pass left unfilled.
   */
  readonly txidShareToView?: boolean;
}

export interface RecountResult {
  readonly height: number;
  readonly txs: number;
  readonly blocks: number;
  readonly resumedFrom: number | null;
  readonly stopped: boolean;
  /** Null when stopped before the chain was loaded. */
  readonly chain: BestChain | null;
  /** The spills into a throwaway full recount's coin file, in order (none without one). */
  readonly spills?: readonly SpillRecord[];
}

export class RecountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecountError';
  }
}

/** The undo records a kept recount lets LevelDB fall behind on (state.ts `undoRoom`): a few blocks' worth. */
const UNDO_WRITING_BYTES = 4 * 1024 * 1024;

/** Coin table budget of a throwaway recount: about four million coins between spills. */
export const DEFAULT_MEMORY_BYTES = memoryPlan().tableBytes;

/**
 * Recounts the registry from a bitcoind blocks directory into `db`: chooses
 * the most-work valid chain, then connects it block by block. An index left
 * by an interrupted or killed recount resumes from its last flushed tip; if
 * the directory's best chain has moved away from it, the index is first
 * disconnected back to the fork.
 */
export async function recount(opts: RecountOptions): Promise<RecountResult> {
  let state = new ChainState(opts.db, opts.params, opts.throwaway);
  await state.load();
  if (opts.fast && (!opts.throwaway || state.utxoHash !== null)) {
    throw new RecountError('--fast keeps only the coins of announced stakes, so it needs a temporary index without a UTXO hash');
  }
  // A temporary index is read at its tip only: rather than moving the UTXO
  // hash with every coin created and spent, it hashes the set at the tip once
  // (hashSetAtTip), and the heights below keep none.
  const setHash = opts.throwaway === true && state.tip === null && state.utxoHash !== null;
  const fresh = async (): Promise<ChainState> => {
    const s = new ChainState(opts.db, opts.params, opts.throwaway);
    await s.load();
    if (setHash) s.utxoHash = null;
    return s;
  };
  if (setHash) state.utxoHash = null;
  const memoryLimit = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const inMemory = opts.throwaway === true && state.tip === null && state.utxoHash === null;
  // A full in-memory recount of the whole chain starts connecting while the
  // chain pass still reads (speculate.ts); --fast must first know every stake.
  let spec: Speculator | null = null;
  if (inMemory && !opts.fast && opts.height === undefined) {
    const genesisKey = Buffer.from(opts.params.genesisHash, 'hex').reverse().toString('latin1');
    spec = new Speculator(state, genesisKey, await readXorKey(opts.blocksDir).catch(() => null), memoryLimit, opts.spillDir);
    await spec.start();
  }
  let chain: BestChain;
  try {
    chain = await loadBestChain(opts.blocksDir, opts.params, {
      onProgress: opts.onChainProgress,
      onWarning: opts.onWarning, shouldStop: opts.shouldStop, threads: opts.threads,
      // A fast recount gets the few txids it needs from the sweep (below): it keeps none.
      keepTxidBytes: opts.fast ? 0 : opts.keepTxidBytes ?? memoryPlan().txidBytes,
      onBlockSeen: spec === null ? undefined : (b) => spec.seen(b),
    });
  } catch (err) {
    if (!(err instanceof ChainLoadStopped)) {
      spec?.close();
      spec?.dropFile();
      throw err;
    }
    // Stopped while reading: the database holds nothing of the speculation's spills.
    await spec?.discard();
    state = new ChainState(opts.db, opts.params);
    await state.load();
    return { height: state.tip?.height ?? -1, txs: 0, blocks: 0, resumedFrom: state.tip?.height ?? null, stopped: true, chain: null };
  }
  spec?.close();
  await spec?.finish();
  const best = chain.blocks.length - 1;
  const target = opts.height ?? best;
  if (!Number.isInteger(target) || target < 0 || target > best) {
    spec?.dropFile();
    throw new RecountError(target > best ? `--height ${target} is above the best chain's tip at ${best}` : `--height must be a whole number ≥ 0, got ${target}`);
  }

  if (spec !== null && spec.matches(chain, target)) {
    // The blocks connected while reading need their txids no more.
    for (let h = 0; h <= spec.height; h++) chain.blocks[h]!.txids = null;
    opts.onChainLoaded?.(chain, spec.height + 1, target);
    const done = await recountInMemory(opts, state, chain, target, memoryLimit, spec, 0, setHash);
    return { ...done, resumedFrom: null, chain };
  }
  if (spec !== null && spec.height >= 0) {
    // The bet did not hold: start again from an empty state, undoing any spill.
    await spec.discard();
    state = await fresh();
  }
  const resumedFrom = state.tip?.height ?? null;
  if (opts.beforeRewind && state.tip !== null) {
    let fork = Math.min(state.tip.height, best);
    while (fork >= 0 && !(await opts.db.get(K.blockHash(fork)))?.equals(chain.blocks[fork]!.hash)) fork--;
    if (fork < Math.min(state.tip.height, target)) opts.beforeRewind(state.tip.height, fork);
  }
  if (state.tip !== null) {
    const view = new MemoryUtxo(false, []);
    await view.resume(state);
    while (state.tip !== null) {
      const h = state.tip.height;
      const stored = await opts.db.get(K.blockHash(h));
      if (h <= target && stored !== undefined && stored.equals(chain.blocks[h]!.hash)) break;
      await disconnectTip(state, view);
    }
  }
  const start = state.tip === null ? 0 : state.tip.height + 1;
  opts.onChainLoaded?.(chain, start, target);

  const limit = opts.memoryBytes ?? opts.cacheBytes ?? DEFAULT_MEMORY_BYTES;
  const done = await recountInMemory(opts, state, chain, target, limit, null, start, setHash);
  return { ...done, resumedFrom, chain };
}

/** Pass 1 of a fast recount: the stake scripts the chain pass found in blocks `from..to` (latin1). */
function stakeScriptsOf(chain: BestChain, from: number, to: number): Set<string> {
  const scripts = new Set<string>();
  for (let h = from; h <= to; h++) for (const s of chain.blocks[h]!.stakes) scripts.add(s);
  return scripts;
}

/**
 * A recount over the coin view (coinview.ts) from height `start`: the tables
 * spill into the database whenever they and the registry cache outgrow
 * `limit`. An index that already holds blocks is continued from the database.
 */
async function recountInMemory(
  opts: RecountOptions, state: ChainState, chain: BestChain, target: number, limit: number, spec: Speculator | null, start = 0, setHash = false,
): Promise<Omit<RecountResult, 'resumedFrom' | 'chain'>> {
  let spendable = 0;
  for (let h = start; h <= target; h++) spendable += chain.blocks[h]!.spendable;
  const stakes = stakeScriptsOf(chain, 0, target);
  const mem = spec?.mem ?? new MemoryUtxo(opts.fast === true, stakes, opts.fast ? 1024 : Math.min(spendable, coinsWithin(limit, !state.throwaway)));
  if (state.tip !== null && spec === null) await mem.resume(state);
  // A throwaway full recount from an empty index spills its coins into a file of its own, not the database.
  // The speculator's file comes with its state, spilled coins and all.
  mem.coinFile ??= state.throwaway && !mem.onlyStakes && !mem.spilled && state.committedTip === null ? CoinFile.create(opts.spillDir) : null;
  try {
    const done = await connectRange(opts, state, chain, target, limit, spec, mem, stakes, start, setHash);
    return mem.coinFile === null ? done : { ...done, spills: mem.coinFile.spills };
  } finally {
    mem.coinFile?.close();
    mem.coinFile = null;
  }
}

/** The connect pass of `recountInMemory` over `mem`: blocks `start..target` (after the speculator's), then the last flush. */
async function connectRange(
  opts: RecountOptions, state: ChainState, chain: BestChain, target: number, limit: number, spec: Speculator | null,
  mem: MemoryUtxo, stakes: Set<string>, start: number, setHash: boolean,
): Promise<Omit<RecountResult, 'resumedFrom' | 'chain'>> {
  // A fast recount has threads read every block ahead of the connect, hash
  // only the few txids it needs and map where its transactions and inputs
  // are (stakesweep.ts): the connect reads no block itself and walks only the
  // transactions that can matter to it (connect.ts `SparseConnect`).
  const sweeps = opts.fast && start <= target ? new OutputSweeps(chain.blocks.slice(start, target + 1), chain.xorKey, stakes, opts.threads ?? DEFAULT_THREADS) : null;
  const reader = new BlockReader(chain.xorKey);
  let txs = spec?.txs ?? 0;
  let stopped = false;
  // A kept index's undo records leave memory as each block is connected, not with the next spill (state.ts `undoAhead`).
  state.undoAhead = !state.throwaway;
  // The txid share the view may use (`txidShareToView`): what the chain pass left of it (half of it on
  // the 1M bench chain). Not the txids dropped as their blocks connect: those are freed only when the
  // garbage collector gets to them. On the 10M bench chain, whose txids fill the share, one --db run
  // that counted them reached 522 MiB of RSS in its first minutes (load average 7-8), against a peak
  // of 494 MiB over a whole run without.
  let lent = 0;
  if (opts.txidShareToView === true && !state.throwaway) {
    lent = opts.keepTxidBytes ?? memoryPlan().txidBytes;
    for (const entry of chain.blocks) lent -= entry.txids?.length ?? 0;
  }
  const over = (): boolean => mem.footprint(state) > limit + Math.max(0, lent);
  try {
    if (over()) await mem.spill(state);
    const held = sweeps !== null ? new HeldPrints() : null;
    type Loaded = { h: number; bytes: Buffer; txids: Buffer; header: ScannedHeader; sparse?: SparseConnect };
    const load = async (h: number): Promise<Loaded> => {
      const entry = chain.blocks[h]!;
      let bytes: Buffer;
      let txids: Buffer;
      let sparse: SparseConnect | undefined;
      if (sweeps !== null) {
        const swept = await sweeps.block(h);
        ({ bytes, txids } = swept);
        sparse = { txs: swept.sweep, held: held! };
      } else {
        bytes = reader.read(entry);
        txids = entry.txids ?? txidsOf(bytes);
      }
      const header = scanHeader(bytes);
      if (!header.hash.equals(entry.hash)) throw new RecountError(`${entry.file} changed while the recount was reading it (block at offset ${entry.offset}); run it again`);
      // Done with: its memory goes to the view (the budget counted it for the chain pass).
      entry.txids = null;
      return { h, bytes, txids, header, sparse };
    };
    let next: Loaded | null = null;
    for (let h = spec === null ? start : spec.height + 1; h <= target; h++) {
      if (opts.shouldStop?.()) {
        stopped = true;
        break;
      }
      const { bytes, txids, header, sparse } = next?.h === h ? next : await load(h);
      await mem.prefetch(opts.db, bytes, txids);
      // Once the view reads through, the next block's reads overlap this block's connect (coinview.ts `readAhead`).
      next = mem.spilled && h < target ? await load(h + 1) : null;
      if (next !== null) mem.readAhead(opts.db, next.bytes, next.txids);
      const summary = connectBlock(state, mem, bytes, txids, h, header, sparse);
      txs += summary.txCount;
      opts.onBlock?.(summary);
      await state.undoRoom(UNDO_WRITING_BYTES);
      // A kept index goes on connecting while the spill is written (coinview.ts `spillBehind`).
      if (over()) await mem.spillBehind(state);
    }
  } finally {
    reader.close();
    await sweeps?.close();
  }
  await mem.finish(state);
  if (setHash && !stopped && state.tip !== null) await hashSetAtTip(state, mem, opts.threads);
  return { height: state.tip?.height ?? -1, txs, blocks: Math.max(0, (state.tip?.height ?? -1) - start + 1), stopped };
}

/**
 * Computes the UTXO hash of the set at the tip from its coins (sethash.ts),
 * in worker threads, and stores it in the tip's per-height row: after the
 * last flush the coins are in the coin table, or, once it has spilled, all
 * in the database.
 */
async function hashSetAtTip(state: ChainState, mem: MemoryUtxo, threads?: number): Promise<void> {
  const hasher = new SetHasher(threads);
  try {
    if (mem.spilled && mem.coinFile !== null) {
      let n = 0;
      for (const [k, v] of mem.coinFile.entries()) {
        const c = decodeCoin(v);
        hasher.put(k, parse.outpoint(k).vout, c.height * 2 + (c.coinbase ? 1 : 0), Number(c.value & 0xffffffffn), Number(c.value >> 32n), c.script);
        if (++n % 1024 === 0) await hasher.ready();
      }
    } else if (mem.spilled) {
      let n = 0;
      for await (const [k, v] of state.db.iterator(K.all(P.coin))) {
        const { txid, vout } = parse.coin(k);
        const c = decodeCoin(v);
        hasher.put(txid, vout, c.height * 2 + (c.coinbase ? 1 : 0), Number(c.value & 0xffffffffn), Number(c.value >> 32n), c.script);
        if (++n % 1024 === 0) await hasher.ready();
      }
    } else {
      const { coins, scripts } = mem;
      for (let from = 0; from < coins.slots; from += 4096) {
        coins.each((op, script, lo, hi, code) => hasher.put(op, op.readUInt32BE(32), code, lo, hi, scripts.bytes(script)), from, from + 4096);
        await hasher.ready();
      }
    }
  } catch (err) {
    await hasher.close();
    throw err;
  }
  state.utxoHash = await hasher.finish();
  state.putRow(K.heightState(state.tip!.height), state.heightState());
  await state.flush();
}

function txidsOf(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(blockTxCount(bytes) * 32);
  walkTxidsInto(bytes, out, 0, null);
  return out;
}
