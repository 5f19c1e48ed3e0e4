import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const SHARED = join(ROOT, '..', 'shared');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

/** Runs the built CLI (npm test builds dist/ first) and returns its output. */
export function nodereg(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, timeout: 120_000 });
}
