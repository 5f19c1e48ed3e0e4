import { BUILTIN_NETWORKS, type NetworkParams } from '../script/params.js';
import { openStore, peekNetwork, StoreError, type DB } from '../indexer/store/store.js';
import { QueryError } from '../indexer/read/queries.js';
import { networkFrom, UsageError, UserError, type NetworkArgs } from './common.js';

/**
 * Opens an existing index for reading. Built-in networks are recognised from
 * the index itself; an index built with --params needs the same file again.
 */
export async function openIndexForRead(path: string, args: NetworkArgs): Promise<{ db: DB; params: NetworkParams }> {
  try {
    let params: NetworkParams;
    if (args.network || args.params) {
      params = networkFrom(args);
    } else {
      const name = await peekNetwork(path);
      const builtin = name ? BUILTIN_NETWORKS[name] : undefined;
      if (!builtin) throw new UsageError(`the index at ${path} was built for "${name}" from a params file; pass the same --params <file>`);
      params = builtin;
    }
    return { db: await openStore(path, params, { create: false }), params };
  } catch (err) {
    throw asUserError(err);
  }
}

/** Turns the library's expected failures into one-line CLI errors. */
export function asUserError(err: unknown): unknown {
  if (err instanceof StoreError || err instanceof QueryError) return new UserError(err.message);
  return err;
}
