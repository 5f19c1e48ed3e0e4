import { basename } from 'node:path';

/*
 * What can go wrong with the files of an index, said so that the user knows
 * the cause and the next step. LevelDB reports its faults as status strings
 * ("Corruption: …", "IO error: …: No space left on device"); these are read
 * here, in one place, and nowhere else.
 */

/** A database that cannot be used as asked; the message says what to do. */
export class StoreError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreError';
  }
}

/** How to get a sound index back after damage. */
export function rebuildHint(path: string): string {
  return `rebuild it with "nodereg recount --db ${path} --reset --blocks-dir …" (or restore a snapshot of the index)`;
}

export function diskFull(path: string): StoreError {
  return new StoreError(`no space left on the device holding --db (${path}); free space and run the same command to resume`);
}

export function damaged(path: string, why: string): StoreError {
  return new StoreError(`the index at ${path} is damaged: ${why}; ${rebuildHint(path)}`);
}

/** A file-system error (from node:fs) on the index directory itself. */
export function fsFault(path: string, err: unknown, doing: string): StoreError | null {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOSPC': return diskFull(path);
    case 'EACCES': case 'EPERM': return new StoreError(`cannot ${doing} ${path}: permission denied; run as the user who owns it, or choose another --db`);
    case 'EROFS': return new StoreError(`cannot ${doing} ${path}: the file system is read-only; choose another --db`);
    case 'ENOTDIR': return new StoreError(`cannot ${doing} ${path}: a part of the path is a file, not a directory; choose another --db`);
    case 'EIO': return new StoreError(`cannot ${doing} ${path}: the device reported an I/O error; check the disk`);
    default: return typeof code === 'string' ? new StoreError(`cannot ${doing} ${path}: ${(err as Error).message}`) : null;
  }
}

interface LevelishError { code?: string; message?: string; cause?: LevelishError }

/** The innermost LevelDB status behind an error from `level`, if any. */
function levelStatus(err: unknown): { code?: string; message: string } {
  let e = err as LevelishError | undefined;
  let code: string | undefined;
  let message = '';
  while (e) {
    if (e.code && e.code !== 'LEVEL_DATABASE_NOT_OPEN') code = e.code;
    if (e.message) message = e.message;
    e = e.cause;
  }
  return { code, message };
}

/** True when the open failed because another process holds the database's LOCK. */
export function isLocked(err: unknown): boolean {
  return levelStatus(err).code === 'LEVEL_LOCKED';
}

/** Describes a failure to open the database, or returns null if it is not one this module knows. */
export function openFault(path: string, err: unknown, lockedHint: string): StoreError {
  if (isLocked(err)) return new StoreError(`the index at ${path} is in use by another process (its LOCK is held); ${lockedHint}`);
  return runtimeFault(path, err) ?? new StoreError(`cannot open the index at ${path}: ${levelStatus(err).message}`);
}

/**
 * Turns a LevelDB fault met while reading or writing (corruption, a full
 * disk, an I/O error) into a StoreError; null for anything else.
 */
export function runtimeFault(path: string, err: unknown): StoreError | null {
  const { code, message } = levelStatus(err);
  if (/No space left on device|ENOSPC/.test(message)) return diskFull(path);
  let m = /(\d+) missing files?; e\.g\.: (\S+)/.exec(message);
  if (m) return damaged(path, `${m[1] === '1' ? 'its table file' : `${m[1]} table files are missing, e.g.`} ${basename(m[2]!)}${m[1] === '1' ? ' is missing' : ''}`);
  m = /IO error: (\S+): No such file or directory/.exec(message);
  if (m) return damaged(path, `its file ${basename(m[1]!)} is missing`);
  if (/Permission denied/.test(message)) return new StoreError(`cannot use the index at ${path}: permission denied (${message}); run as the user who owns it`);
  if (code === 'LEVEL_CORRUPTION' || /^Corruption: /.test(message)) return damaged(path, `LevelDB reports "${message}"`);
  if (code === 'LEVEL_IO_ERROR') return new StoreError(`I/O error on the index at ${path}: ${message}; check the disk, then run the same command again`);
  return null;
}
