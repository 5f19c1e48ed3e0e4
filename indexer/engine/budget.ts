/**
 * The one memory budget every mode shares: `nodereg recount --memory-mib`,
 * `nodereg index --memory-mib` and `openIndexer({ memoryMiB })`.
 */
export const DEFAULT_MEMORY_MIB = 256;

const MIB = 1024 * 1024;

/**
 * LevelDB's memtable size (store.ts opens every index with it). LevelDB
 * holds up to two: the one being filled and the one being compacted to disk.
 */
export const LEVEL_WRITE_BUFFER_BYTES = 16 * MIB;

/** LevelDB's block cache (its default, which store.ts keeps). */
export const LEVEL_BLOCK_CACHE_BYTES = 8 * MIB;

/** What LevelDB itself holds at most besides the batch being written (see `BATCH_BYTES_PER_ROW`). */
export const LEVEL_BYTES = 2 * LEVEL_WRITE_BUFFER_BYTES + LEVEL_BLOCK_CACHE_BYTES;

/**
 * What a spill briefly adds to the memory it empties: the native write
 * batch grows by doubling (so holds up to twice its content), then LevelDB
 * copies the whole batch into its memtable, with a skiplist node per row,
 * before any of it reaches a table file. The previous spill's memtable is
 * no longer there: the state has LevelDB switch memtables right after each
 * spill (state.ts `releaseMemtable`), so it is written out while the next
 * blocks connect. Measured: a batch of 500 000 coins with their script-index
 * rows (about 135 bytes of keys and values per coin, two rows) raised RSS by
 * 170 bytes per coin when built and by another 190 when written. Counted:
 * three times the content plus 30 bytes a row. On the 1M bench chain with
 * --db, dropping the old memtable at once lowered peak RSS from 473 to
 * 414 MiB; counting three copies instead of four then spills 15 times
 * instead of 19 at about the old peak RSS (439–481 MiB over four runs).
 */
export const BATCH_COPIES = 3;
export const BATCH_BYTES_PER_ROW = 30;

/**
 * The same for a temporary index's chunks (below), which leave LevelDB's
 * memtable to fill and switch as it will: four copies, as every spill was
 * counted before.
 */
export const CHUNK_COPIES = 4;

/**
 * A temporary index is never resumed, so its spills need not be atomic: they
 * go in batches of about this many bytes, which bounds what they add.
 */
export const CHUNK_BYTES = 4 * MIB;

/**
 * The coin view keeps every script's balance across a spill while its script
 * table is at most this big (a few hundred thousand scripts), so that a
 * script paid again after a spill is not read back from the database; past
 * it only the stakes' balances stay. The budget counts the table either way.
 */
export const KEEP_SCRIPT_BYTES = 24 * MIB;

export interface MemoryPlan {
  /**
   * The coin view: its tables, the rows it holds for the next flush (undo,
   * registry), and the batch that flush builds. It spills before the sum
   * passes this (coinview.ts `footprint`).
   */
  readonly tableBytes: number;
  /** The database engine's write-back cache (the live follower): flushed when it estimates this much. */
  readonly cacheBytes: number;
  /** Txids the chain pass keeps for the connect pass; past this, blocks are hashed again. */
  readonly txidBytes: number;
}

/**
 * How a budget of `mib` MiB is spent. LevelDB's memtables and block cache
 * come first (their size is fixed by store.ts), a quarter goes to the txids
 * the chain pass keeps, and the coin view gets the rest, counting everything
 * it holds between spills and the batch a spill writes. At the default that
 * keeps every recount under 512 MiB of RSS, whatever the chain's size: the
 * rest is Node itself, the chain's block index and the pages of the table
 * files LevelDB holds mapped, which the budget does not count: store.ts caps
 * the open tables at 64 of 4 MiB, and those pages took at most about 190 MiB
 * on the 10M bench chain with --db (530 MiB with LevelDB's defaults). A
 * budget below LevelDB's share leaves the view nothing: it spills after
 * every block.
 *
 * The database engine's write-back cache holds a JS object per coin and row
 * whose real heap cost is several times its estimate: it gets a tenth.
 */
export function memoryPlan(mib: number = DEFAULT_MEMORY_MIB): MemoryPlan {
  const total = Math.floor(mib * MIB);
  const txidBytes = Math.floor(total / 4);
  return {
    tableBytes: Math.max(0, total - LEVEL_BYTES - txidBytes),
    cacheBytes: Math.max(1, Math.floor(total / 10)),
    txidBytes,
  };
}
