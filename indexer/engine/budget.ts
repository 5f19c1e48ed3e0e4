/**
 * The one memory budget every mode shares: `nodereg recount --memory-mib`,
 * `nodereg index --memory-mib` and `openIndexer({ memoryMiB })`.
 */
export const DEFAULT_MEMORY_MIB = 256;

const MIB = 1024 * 1024;

export interface MemoryPlan {
  /** The coin tables of a temporary recount: they spill into the index when full. */
  readonly tableBytes: number;
  /** The database engine's write-back cache (a kept index, the live follower): flushed when it estimates this much. */
  readonly cacheBytes: number;
}

/**
 * How a budget of `mib` MiB is spent. The coin tables are typed arrays whose
 * size is exact, so they get all of it. The write-back cache holds a JS
 * object per coin and row whose real heap cost (with the garbage a flush
 * leaves and LevelDB's own buffers while it writes the batch) is several
 * times its estimate: it gets a tenth. At the default that is the 24 MiB the
 * database engine was tuned with, which keeps a 1M-transaction recount and a
 * catching-up daemon under 512 MiB of RSS.
 */
export function memoryPlan(mib: number = DEFAULT_MEMORY_MIB): MemoryPlan {
  return { tableBytes: Math.floor(mib * MIB), cacheBytes: Math.max(1, Math.floor((mib * MIB) / 10)) };
}
