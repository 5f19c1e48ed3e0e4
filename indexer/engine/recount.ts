import type { NetworkParams } from '../../script/params.js';
import { BlockReader, readXorKey } from '../chain/blkfiles.js';
import { ChainLoadStopped, loadBestChain, type BestChain } from '../chain/chain.js';
import { connectBlock, type BlockSummary } from './connect.js';
import { disconnectTip } from './disconnect.js';
import { K } from '../store/layout.js';
import { coinTableBytes } from './memtables.js';
import { connectInMemory, MemoryUtxo } from './memconnect.js';
import { blockTxCount, scanBlock, scanHeader, walkTxidsInto } from '../chain/scanner.js';
import { Speculator } from './speculate.js';
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
   * A throwaway recount keeps the UTXO set and balances in memory while they
   * fit in this many bytes (default DEFAULT_MEMORY_BYTES; 0 never does). If
   * they outgrow it, the recount starts over on the database engine.
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
  /** Txids the chain pass keeps for the connect pass, in bytes (default TXID_KEEP_BYTES); past it blocks are hashed again. */
  readonly keepTxidBytes?: number;
}

export interface RecountResult {
  readonly height: number;
  readonly txs: number;
  readonly blocks: number;
  readonly resumedFrom: number | null;
  readonly stopped: boolean;
  /** Null when stopped before the chain was loaded. */
  readonly chain: BestChain | null;
}

export class RecountError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecountError';
  }
}

/** Flush threshold of the database engine (--db, --utxo-hash, or past --utxo-memory-mib); more is faster but uses more memory. */
export const DEFAULT_CACHE_BYTES = 24 * 1024 * 1024;

/** In-memory UTXO set limit of a throwaway recount: about four million coins. */
export const DEFAULT_MEMORY_BYTES = 256 * 1024 * 1024;

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
  const memoryLimit = opts.memoryBytes ?? DEFAULT_MEMORY_BYTES;
  const inMemory = opts.throwaway === true && state.tip === null && state.utxoHash === null && memoryLimit > 0;
  // A full in-memory recount of the whole chain starts connecting while the
  // chain pass still reads (speculate.ts); --fast must first know every stake.
  let spec: Speculator | null = null;
  if (inMemory && !opts.fast && opts.height === undefined) {
    const genesisKey = Buffer.from(opts.params.genesisHash, 'hex').reverse().toString('latin1');
    spec = new Speculator(state, genesisKey, await readXorKey(opts.blocksDir).catch(() => null), memoryLimit);
  }
  let chain: BestChain;
  try {
    chain = await loadBestChain(opts.blocksDir, opts.params, {
      onProgress: opts.onChainProgress, onWarning: opts.onWarning, shouldStop: opts.shouldStop, threads: opts.threads, keepTxidBytes: opts.keepTxidBytes,
      onBlockSeen: spec === null ? undefined : (b) => spec.seen(b),
    });
  } catch (err) {
    spec?.close();
    if (!(err instanceof ChainLoadStopped)) throw err;
    state = new ChainState(opts.db, opts.params);
    await state.load();
    return { height: state.tip?.height ?? -1, txs: 0, blocks: 0, resumedFrom: state.tip?.height ?? null, stopped: true, chain: null };
  }
  spec?.close();
  const best = chain.blocks.length - 1;
  const target = opts.height ?? best;
  if (!Number.isInteger(target) || target < 0) throw new RecountError(`--height must be a whole number ≥ 0, got ${target}`);
  if (target > best) throw new RecountError(`--height ${target} is above the best chain's tip at ${best}`);

  let tryMemory = inMemory;
  if (spec?.stopped === 'the memory limit') {
    opts.onWarning?.(outgrew(memoryLimit, spec.height));
    tryMemory = false;
  }
  if (spec !== null && spec.matches(chain, target)) {
    opts.onChainLoaded?.(chain, spec.height + 1, target);
    const done = await recountInMemory(opts, state, chain, target, memoryLimit, spec);
    if (done !== null) return { ...done, resumedFrom: null, chain };
    tryMemory = false;
  }
  if (spec !== null && spec.height >= 0) {
    // The bet did not hold, or the tables outgrew the limit: start again from an empty state.
    state = new ChainState(opts.db, opts.params, opts.throwaway);
    await state.load();
  }
  const resumedFrom = state.tip?.height ?? null;
  if (opts.beforeRewind && state.tip !== null) {
    let fork = Math.min(state.tip.height, best);
    while (fork >= 0 && !(await opts.db.get(K.blockHash(fork)))?.equals(chain.blocks[fork]!.hash)) fork--;
    if (fork < Math.min(state.tip.height, target)) opts.beforeRewind(state.tip.height, fork);
  }
  while (state.tip !== null) {
    const h = state.tip.height;
    const stored = await opts.db.get(K.blockHash(h));
    if (h <= target && stored !== undefined && stored.equals(chain.blocks[h]!.hash)) break;
    await disconnectTip(state);
  }
  const start = state.tip === null ? 0 : state.tip.height + 1;
  opts.onChainLoaded?.(chain, start, target);

  if (tryMemory) {
    const done = await recountInMemory(opts, state, chain, target, memoryLimit, null);
    if (done !== null) return { ...done, resumedFrom, chain };
    state = new ChainState(opts.db, opts.params, opts.throwaway);
    await state.load();
  }

  const reader = new BlockReader(chain.xorKey);
  const onlyScripts = opts.fast ? stakeScriptsOf(chain, Math.max(1, start), target) : undefined;
  const budget = opts.cacheBytes ?? DEFAULT_CACHE_BYTES;
  let txs = 0;
  let stopped = false;
  try {
    for (let h = start; h <= target; h++) {
      if (opts.shouldStop?.()) {
        stopped = true;
        break;
      }
      const entry = chain.blocks[h]!;
      const block = scanBlock(reader.read(entry), entry.txids ?? undefined);
      if (!block.hash.equals(entry.hash)) throw new RecountError(`${entry.file} changed while the recount was reading it (block at offset ${entry.offset}); run it again`);
      const summary = await connectBlock(state, block, h, { onlyScripts });
      txs += summary.txCount;
      opts.onBlock?.(summary);
      if (state.cacheBytes > budget) await state.flush();
    }
    await state.flush();
  } finally {
    reader.close();
  }
  return { height: state.tip?.height ?? -1, txs, blocks: Math.max(0, (state.tip?.height ?? -1) - start + 1), resumedFrom, stopped, chain };
}

/** Pass 1 of a fast recount: the stake scripts the chain pass found in blocks `from..to` (latin1). */
function stakeScriptsOf(chain: BestChain, from: number, to: number): Set<string> {
  const scripts = new Set<string>();
  for (let h = from; h <= to; h++) for (const s of chain.blocks[h]!.stakes) scripts.add(s);
  return scripts;
}

/**
 * A throwaway recount with the UTXO set in memory (memconnect.ts). Returns
 * null, having written nothing, when the chain turns out too big for
 * `limit`: the caller then recounts on the database engine instead.
 */
async function recountInMemory(
  opts: RecountOptions, state: ChainState, chain: BestChain, target: number, limit: number, spec: Speculator | null,
): Promise<Omit<RecountResult, 'resumedFrom' | 'chain'> | null> {
  let spendable = 0;
  for (let h = 0; h <= target; h++) spendable += chain.blocks[h]!.spendable;
  const stakes = stakeScriptsOf(chain, 0, target);
  // Even if most outputs are spent again soon, a chain this much bigger will not fit.
  if (spec === null && !opts.fast && coinTableBytes(spendable) > 4 * limit) return null;
  const mem = spec?.mem ?? new MemoryUtxo(opts.fast === true, stakes, opts.fast ? 1024 : Math.min(spendable, 1 << 20));
  const reader = new BlockReader(chain.xorKey);
  let txs = spec?.txs ?? 0;
  let stopped = false;
  try {
    for (let h = spec === null ? 0 : spec.height + 1; h <= target; h++) {
      if (opts.shouldStop?.()) {
        stopped = true;
        break;
      }
      const entry = chain.blocks[h]!;
      const bytes = reader.read(entry);
      if (!scanHeader(bytes).hash.equals(entry.hash)) throw new RecountError(`${entry.file} changed while the recount was reading it (block at offset ${entry.offset}); run it again`);
      const summary = connectInMemory(state, mem, bytes, entry.txids ?? txidsOf(bytes), h);
      txs += summary.txCount;
      opts.onBlock?.(summary);
      if (mem.byteSize + state.cacheBytes > limit) {
        opts.onWarning?.(outgrew(limit, h));
        return null;
      }
    }
  } finally {
    reader.close();
  }
  mem.storeStakeBalances(state);
  await state.flush();
  return { height: state.tip?.height ?? -1, txs, blocks: (state.tip?.height ?? -1) + 1, stopped };
}

function outgrew(limit: number, height: number): string {
  return `the UTXO set outgrew the in-memory limit (${Number((limit / 1048576).toFixed(1))} MiB) at height ${height}; recounting on the database instead (raise --utxo-memory-mib to avoid this)`;
}

function txidsOf(bytes: Buffer): Buffer {
  const out = Buffer.allocUnsafe(blockTxCount(bytes) * 32);
  walkTxidsInto(bytes, out, 0, null);
  return out;
}
