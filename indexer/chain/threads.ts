import { availableParallelism } from 'node:os';

/** Parse-and-hash threads by default: one per core, at most four. */
export const DEFAULT_THREADS = Math.max(1, Math.min(4, availableParallelism()));
