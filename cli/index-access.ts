import { existsSync } from 'node:fs';
import type { NetworkParams } from '../script/params.js';
import { CorruptRecordError } from '../indexer/store/codec.js';
import { runtimeFault, StoreError } from '../indexer/store/faults.js';
import type { DB } from '../indexer/store/store.js';
import { QueryError } from '../indexer/read/errors.js';
import { networkFrom, UserError, type NetworkArgs } from './common.js';

/**
 * The params a command on index `path` should use: the flags when given
 * (the index refuses them if they differ from its own), else null, meaning
 * the index's own; for an index not yet created, the flags' default.
 */
export function paramsFor(path: string, args: NetworkArgs): { params: NetworkParams | null; fallback: NetworkParams } {
  if (args.network || args.params) {
    const p = networkFrom(args);
    return { params: p, fallback: p };
  }
  return { params: existsSync(path) ? null : networkFrom(args), fallback: networkFrom(args) };
}

/**
 * The params of index `path` when it exists (read from it, and checked
 * against the flags if given), else those of the flags: for commands that
 * hand params on rather than open the index here.
 */
export async function indexParams(path: string, args: NetworkArgs): Promise<NetworkParams> {
  const { params, fallback } = paramsFor(path, args);
  if (params !== null) return params;
  let opened: { db: DB; params: NetworkParams };
  try {
    const { openIndexStore } = await import('../indexer/store/store.js');
    opened = await openIndexStore(path, null, { create: true, fallback });
  } catch (err) {
    throw asUserError(err, path);
  }
  await opened.db.close();
  return opened.params;
}

/**
 * Opens an existing index for reading. The network is the one the index was
 * built for (it keeps its params); --network/--params, if given, must match.
 */
export async function openIndexForRead(path: string, args: NetworkArgs, checkAllTables = false): Promise<{ db: DB; params: NetworkParams }> {
  try {
    const params = args.network || args.params ? networkFrom(args) : null;
    // Loaded here rather than at the top: LevelDB's binding stays off the start-up of commands that never open an index.
    const { openIndexStore } = await import('../indexer/store/store.js');
    return await openIndexStore(path, params, { create: false, checkAllTables, lockedHint: 'stop that process, or ask it over its HTTP API (--api)' });
  } catch (err) {
    throw asUserError(err, path);
  }
}

/** Turns the library's expected failures into one-line CLI errors; `dbPath` names the index in storage faults. */
export function asUserError(err: unknown, dbPath?: string): unknown {
  if (err instanceof StoreError || err instanceof QueryError) return new UserError(err.message);
  if (err instanceof CorruptRecordError) {
    return new UserError(dbPath ? `the index at ${dbPath} is damaged (${err.message.replace(/;.*$/, '')}); rebuild it with "nodereg recount --db ${dbPath} --reset --blocks-dir …" (or restore a snapshot of the index)` : err.message);
  }
  const fault = runtimeFault(dbPath ?? 'the --db directory', err);
  if (fault) return new UserError(fault.message);
  return err;
}
