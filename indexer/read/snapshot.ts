import type { DB } from '../store/store.js';

type Range = { gte?: Buffer; gt?: Buffer; lt?: Buffer; lte?: Buffer; reverse?: boolean; limit?: number };

/**
 * The read side of the database that queries need. A live index is written
 * while it is read, so the HTTP API answers each request from one LevelDB
 * snapshot: a multi-key answer (an export, a page of nodes) then never mixes
 * rows from before and after a flush.
 */
export interface ReadDB {
  get(key: Buffer): Promise<Buffer | undefined>;
  getMany(keys: Buffer[]): Promise<Array<Buffer | undefined>>;
  iterator(range?: Range): AsyncIterable<[Buffer, Buffer]>;
  keys(range?: Range): AsyncIterable<Buffer>;
}

/** Runs `fn` against a snapshot of `db` taken now, and releases it afterwards. */
export async function withSnapshot<T>(db: DB, fn: (r: ReadDB) => Promise<T>): Promise<T> {
  const snapshot = db.snapshot();
  const view: ReadDB = {
    get: (key) => db.get(key, { snapshot }),
    getMany: (keys) => db.getMany(keys, { snapshot }),
    iterator: (range = {}) => db.iterator({ ...range, snapshot }),
    keys: (range = {}) => db.keys({ ...range, snapshot }),
  };
  try {
    return await fn(view);
  } finally {
    await snapshot.close();
  }
}
