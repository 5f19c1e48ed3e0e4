/**
 * Reading a killed index's tip, for the SIGKILL suites: through the CLI, whose
 * answer and message on an empty or missing index are part of what is tested,
 * and in this process, which spares a CLI start per kill.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { openStore, readTip } from '../../indexer/store/store.js';
import type { NetworkParams } from '../../script/params.js';
import { nodereg } from './cli.js';

/** The index tip as `nodereg root --json` reports it, or null while the index is empty or not created. */
export function cliTip(db: string, extraArgs: readonly string[] = []): number | null {
  const res = nodereg(['root', '--db', db, ...extraArgs, '--json']);
  if (res.status === 0) return (JSON.parse(res.stdout) as { height: number }).height;
  expect(res.status).toBe(1);
  expect(res.stderr).toMatch(/^nodereg: (the index is empty|no index at|the index at .* is empty)/);
  expect(res.stderr).not.toMatch(/\n\s+at /);
  return null;
}

/**
 * The flushed tip read in this process, as `root` reads it. An index that
 * cannot be opened or has no tip yet goes to the CLI (`cliTip`), which must
 * say so in its own words.
 */
export async function flushedTip(db: string, params: NetworkParams, extraArgs: readonly string[] = []): Promise<number | null> {
  if (existsSync(join(db, 'CURRENT'))) {
    const store = await openStore(db, params, { create: false }).catch(() => null);
    if (store !== null) {
      try {
        const tip = await readTip(store);
        if (tip !== null) return tip.height;
      } finally {
        await store.close();
      }
    }
  }
  return cliTip(db, extraArgs);
}
