import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { Level } from 'level';
import { BUILTIN_NETWORKS, paramsHash, paramsToJson, parseParams, ParamsError, type NetworkParams } from '../../script/params.js';
import { decodeTip } from './codec.js';
import { damaged, fsFault, isLocked, openFault, StoreError } from './faults.js';
import { K, SCHEMA_VERSION } from './layout.js';
import { liveTables, openTables, tableNumber } from './manifest.js';
import { CHECKED_FILE, checkTable, checkTables } from './tablecheck.js';
import type { Tip } from '../types.js';

export { StoreError } from './faults.js';

export type DB = Level<Buffer, Buffer>;

export interface OpenOptions {
  /** Create an empty index if the directory holds none (indexing, recount). */
  readonly create: boolean;
  /** When creating: also keep Core's UTXO-set MuHash per height. */
  readonly utxoHash?: boolean;
  /** What to suggest when another process holds the index. */
  readonly lockedHint?: string;
  /** Read every table file, even those checked before and unchanged since (`nodereg check`). */
  readonly checkAllTables?: boolean;
}

async function readMeta(db: DB, name: string): Promise<string | undefined> {
  const v = await db.get(K.meta(name));
  return v === undefined ? undefined : v.toString('utf8');
}

/** LevelDB's own files (and the record of checked tables); a crash while LevelDB creates a database can leave some without CURRENT. */
const LEVEL_OWN = new RegExp(`^(LOCK|LOG(\\.old)?|MANIFEST-\\d+|\\d+\\.(log|ldb|sst|dbtmp)|${CHECKED_FILE.replace(/\./g, '\\.')}(\\.tmp)?)$`);
/** What LevelDB writes before CURRENT when it creates a database: nothing of value is lost without CURRENT. */
const CREATION_LEFTOVER = /^(LOCK|LOG(\.old)?|MANIFEST-0*1|0*1\.dbtmp)$/;

/**
 * mkdir -p, one level at a time: Node's recursive mkdirSync spins forever
 * under a path it may not create in (such as one below /proc).
 */
function makeDirs(path: string): void {
  const missing: string[] = [];
  let p = resolve(path);
  while (!existsSync(p)) {
    missing.push(p);
    const up = dirname(p);
    if (up === p) break;
    p = up;
  }
  for (const dir of missing.reverse()) mkdirSync(dir);
}

/**
 * Looks at the directory before LevelDB does, so that a file given as --db,
 * an unreadable directory, a missing CURRENT or a foreign directory get
 * their own message. Returns true if an index (or LevelDB's start of one) is there.
 */
function inspectDir(path: string, create: boolean): boolean {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw fsFault(path, err, 'use the index directory') ?? err;
    if (!create) throw new StoreError(`no index at ${path}; build one with "nodereg recount --db ${path} …" or "nodereg index --db ${path} …"`);
    try {
      makeDirs(path);
    } catch (e) {
      throw fsFault(path, e, 'create the index directory') ?? e;
    }
    return false;
  }
  if (!isDir) throw new StoreError(`--db ${path} is a file, not a directory; give the directory that holds (or will hold) the index`);
  let entries: string[];
  try {
    entries = readdirSync(path);
  } catch (err) {
    throw fsFault(path, err, 'read the index directory') ?? err;
  }
  if (entries.includes('CURRENT')) return true;
  if (entries.length > 0 && !entries.every((e) => LEVEL_OWN.test(e))) {
    throw new StoreError(`${path} is not empty and is not a LevelDB database; choose another --db directory`);
  }
  if (!entries.every((e) => CREATION_LEFTOVER.test(e))) {
    throw damaged(path, 'its CURRENT file is missing (it names the MANIFEST that lists the table files)');
  }
  if (!create) throw new StoreError(`no index at ${path}; build one with "nodereg recount --db ${path} …" or "nodereg index --db ${path} …"`);
  return false;
}

/** LevelDB's own list of the open database's tables (classic-level has it; the types of `level` do not). */
const sstables = (db: DB): string => (db as unknown as { getProperty(name: string): string }).getProperty('leveldb.sstables');

/** The table at `file` fails its checks now (a file that cannot be read counts as failing). */
function stillFaulty(file: string): boolean {
  try {
    return checkTable(readFileSync(file)) !== null;
  } catch {
    return existsSync(file);
  }
}

/**
 * Opens LevelDB at `path` after checking every table block's checksum
 * (tablecheck.ts): a flipped bit is an error naming the file, never a
 * different answer.
 */
async function openLevel(path: string, create: boolean, lockedHint: string, allTables: boolean): Promise<DB> {
  const existed = inspectDir(path, create);
  // Checked before LevelDB opens it: a compaction started by the open could
  // otherwise copy a damaged block into a new file with a valid checksum.
  // Only the tables the MANIFEST lists are the index: any other is a table a
  // killed process left half written, which the open deletes.
  const live = existed ? liveTables(path) : null;
  const faults = existed ? checkTables(path, allTables).filter((f) => live === null || live.has(tableNumber(f.file))) : [];
  const db: DB = new Level<Buffer, Buffer>(path, {
    keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: create,
    // Measured on the 1M-tx chain with --db: 16 MiB recounts in 39 s at 545 MiB
    // peak RSS, 64 MiB in 47 s at 633 MiB.
    writeBufferSize: 16 * 1024 * 1024,
    // Most of the index is hashes (txids, script hashes), which Snappy cannot
    // shrink, yet every table block written by a flush or a compaction went
    // through it, and every block read back: on the 1M bench chain with
    // --db, without it the recount takes 9-12% less CPU (25.8-26.9 s against
    // 28.4-30.8 s, side by side) for an index 3% bigger (223 against 216 MiB).
    // LevelDB marks each block with its compression, so an index written
    // with Snappy before still reads, and its tables are rewritten without
    // it as they are compacted.
    compression: false,
    // LevelDB maps each table file it holds open (its default: up to 1000)
    // and reads it through the mapping: every page read stays resident,
    // file-backed, until the table is closed, and a --db recount's coin
    // lookups range over the whole coin set. On the 10M bench chain with
    // --db (one run each, load average 4-7), with 2 MiB tables: at 1000
    // open the mapped tables reached 530 MiB, peak RSS 804 MiB, 430 CPU s;
    // at 200, 355 MiB mapped, 683 MiB, 449 s; at 100, about 190 MiB mapped
    // (highest early in the run, while most tables still fit), 482 MiB,
    // 646 s. The extra CPU is mostly kernel time (system 204 s against 58):
    // tables closed, opened and mapped again. Tables of 4 MiB with 74 open
    // (LevelDB's least: 64 tables, 10 files for itself) hold about as much
    // and open half as often: 482 MiB, 604 s (system 177 s). The 1M chain's
    // index is about 55 such tables, all held open.
    //
    // Not a way out: closing and opening the database again at every spill
    // (which unmaps every table at once) with more tables open. The pages a
    // recount maps come from its coin lookups, a new 4 KiB page for most of
    // them, so they come back within seconds of connecting, not spills. On
    // the 10M bench chain with --db (load average 10-29, runs stopped once
    // over budget), the process's file-backed resident memory fell to about
    // 45 MiB at each reopen and was back to 190-260 MiB within 3 s at mid-run;
    // at most 450 MiB late in the run with LevelDB's default (peak RSS
    // 751 MiB), 381 MiB with 200 open (peak 726 MiB). Nor are 8 MiB tables
    // with 74 open: peak 614 MiB a third of the way in. This cap, side by
    // side (two runs): at most 224-228 MiB, peak RSS 480-514 MiB, 685-689
    // CPU s (user 483-487, system 202).
    maxOpenFiles: 74,
    maxFileSize: 4 * 1024 * 1024,
  });
  try {
    await db.open();
  } catch (err) {
    throw openFault(path, err, lockedHint);
  }
  // Only now, holding the LOCK, is it certain that no other process was
  // writing the files. Without a readable MANIFEST, the open's own list of
  // its tables tells a leftover from the index instead. It is read after
  // the open, whose compaction may already be writing a new table under a
  // leftover's number (the number is free again): such a table is not
  // listed until it is whole, and one listed since is checked once more.
  const fault = live !== null
    ? faults[0]
    : faults.find((f) => openTables(sstables(db)).has(tableNumber(f.file)) && stillFaulty(join(path, f.file)));
  if (fault) {
    await db.close();
    throw damaged(path, `${fault.file}: ${fault.reason}`);
  }
  return db;
}

/**
 * Opens (or creates) an index database and checks that it belongs to this
 * version of nodereg and to these network params. A database of another
 * schema, network or params, a foreign LevelDB, or one held open by another
 * process are refused with a StoreError naming the remedy.
 */
export async function openStore(path: string, params: NetworkParams, opts: OpenOptions): Promise<DB> {
  return (await openIndexStore(path, params, opts)).db;
}

/**
 * Like openStore, but `params` may be null: the index's own (stored when it
 * was created) are used, and `fallback` when a new index is created.
 */
export async function openIndexStore(
  path: string, params: NetworkParams | null, opts: OpenOptions & { fallback?: NetworkParams },
): Promise<{ db: DB; params: NetworkParams }> {
  const db = await openLevel(path, opts.create, opts.lockedHint ?? 'stop that process or use another --db', opts.checkAllTables === true);
  try {
    return { db, params: await checkMeta(db, path, params, opts) };
  } catch (err) {
    await db.close();
    throw err;
  }
}

/** Meta row present in an index that has kept rejected attempts by stake ('J' rows) since its creation. */
export const STAKE_REJECTIONS_META = 'stakeRejections';

/** Meta row present in an index that has kept the proof-tree history ('k' and 'n' rows) of every block since its creation. */
export const PROOF_HISTORY_META = 'proofHistory';

async function checkMeta(db: DB, path: string, given: NetworkParams | null, opts: OpenOptions & { fallback?: NetworkParams }): Promise<NetworkParams> {
  const schema = await readMeta(db, 'schema');
  if (schema === undefined) {
    let empty = true;
    for await (const _ of db.keys({ limit: 1 })) empty = false;
    if (!empty) {
      throw new StoreError(`${path} is a LevelDB database but not a nodereg index; choose another --db directory`);
    }
    if (!opts.create) throw new StoreError(`the index at ${path} is empty; build it with "nodereg recount --db ${path} …" first`);
    const params = given ?? opts.fallback;
    if (!params) throw new StoreError(`no index at ${path} yet, so its network is unknown; pass --network or --params`);
    await db.batch([
      { type: 'put', key: K.meta('schema'), value: Buffer.from(String(SCHEMA_VERSION)) },
      { type: 'put', key: K.meta('network'), value: Buffer.from(params.name) },
      { type: 'put', key: K.meta('paramsHash'), value: Buffer.from(paramsHash(params)) },
      { type: 'put', key: K.meta('params'), value: Buffer.from(JSON.stringify(paramsToJson(params))) },
      { type: 'put', key: K.meta('utxoHash'), value: Buffer.from(opts.utxoHash ? '1' : '0') },
      // Written at creation only: an index made before the 'J' rows existed lacks some of them.
      { type: 'put', key: K.meta(STAKE_REJECTIONS_META), value: Buffer.from('1') },
      { type: 'put', key: K.meta(PROOF_HISTORY_META), value: Buffer.from('1') },
    ], { sync: true });
    return params;
  }
  if (schema !== String(SCHEMA_VERSION)) {
    throw new StoreError(`the index at ${path} has schema version ${schema}, but this nodereg uses ${SCHEMA_VERSION}; delete the directory and rebuild it (recount or index)`);
  }
  const network = await readMeta(db, 'network');
  const hash = await readMeta(db, 'paramsHash');
  const params = given ?? await storedParams(db, path, network, hash);
  if (hash !== paramsHash(params)) {
    throw new StoreError(`the index at ${path} was built for network "${network}" with other params (hash ${hash?.slice(0, 12)}…); pass the same --network/--params as when it was built, or none at all, or use another --db`);
  }
  if (opts.utxoHash && (await readMeta(db, 'utxoHash')) !== '1') {
    throw new StoreError(`the index at ${path} was built without --utxo-hash; rebuild it into a fresh --db to keep the UTXO-set hash`);
  }
  return params;
}

/** The params an index was built with: its stored copy, or (for an index made before it kept one) the built-in network of that name. */
async function storedParams(db: DB, path: string, network: string | undefined, hash: string | undefined): Promise<NetworkParams> {
  const text = await readMeta(db, 'params');
  if (text === undefined) {
    const builtin = network === undefined ? undefined : BUILTIN_NETWORKS[network];
    if (builtin && paramsHash(builtin) === hash) return builtin;
    throw new StoreError(`the index at ${path} was built for "${network}" from a params file before indexes kept their params; pass the same --params <file>`);
  }
  try {
    return parseParams(JSON.parse(text), `the params stored in ${path}`);
  } catch (err) {
    if (err instanceof ParamsError || err instanceof SyntaxError) throw damaged(path, `its stored params do not parse (${err.message})`);
    throw err;
  }
}

export async function readTip(db: DB): Promise<Tip | null> {
  const raw = await db.get(K.tip());
  return raw === undefined ? null : decodeTip(raw);
}

/**
 * Empties an index directory for `recount --reset`: only LevelDB's own files
 * are removed, and only when no other process holds the index. A directory
 * with anything else in it is refused rather than emptied.
 */
export async function resetStore(path: string): Promise<void> {
  let entries: string[];
  try {
    if (!statSync(path).isDirectory()) throw new StoreError(`--db ${path} is a file, not a directory; give the directory that holds (or will hold) the index`);
    entries = readdirSync(path);
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw fsFault(path, err, 'read the index directory') ?? err;
  }
  if (!entries.every((e) => e === 'CURRENT' || LEVEL_OWN.test(e))) {
    throw new StoreError(`${path} holds files that are not LevelDB's; --reset empties only an index directory, so choose another --db`);
  }
  if (entries.includes('CURRENT')) {
    const db: DB = new Level<Buffer, Buffer>(path, { keyEncoding: 'buffer', valueEncoding: 'buffer', createIfMissing: false });
    try {
      await db.open();
      await db.close();
    } catch (err) {
      // A damaged index is what --reset is for; only a held LOCK stops it.
      if (isLocked(err)) throw openFault(path, err, 'stop that process before resetting it');
    }
  }
  try {
    // Read again: the probe's open may have turned the log into new table files.
    for (const e of readdirSync(path)) if (e === 'CURRENT' || LEVEL_OWN.test(e)) rmSync(join(path, e), { force: true });
  } catch (err) {
    throw fsFault(path, err, 'empty the index directory') ?? err;
  }
}
