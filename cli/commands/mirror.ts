import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { redact } from '../../indexer/redact.js';
import { withJson, withNetwork } from '../common.js';
import type { MirrorArgs } from './mirror-run.js';

/* `nodereg mirror`: its flags and their checks; the work is in mirror-run.ts. */

// Imported when the command runs: keeps pg off other commands' start-up.
const run = (): Promise<typeof import('./mirror-run.js')> => import('./mirror-run.js');

/** The `--postgres` URL check shared by `mirror` and `index`. */
export function checkPostgresUrl(value: unknown): void {
  if (value !== undefined && !/^postgres(ql)?:\/\/\S*$/.test(String(value))) {
    throw new Error(`--postgres must be a connection URL such as postgresql://user@host/dbname, got "${redact(String(value))}"`);
  }
}

export const mirrorCommand: CommandModule = {
  ...LISTED.mirror,
  builder: (y: Argv) =>
    withJson(withNetwork(y))
      .option('db', { type: 'string', demandOption: true, describe: 'index directory' })
      .option('postgres', { type: 'string', demandOption: true, describe: 'PostgreSQL connection URL, e.g. postgresql://nodereg@db.example/registry' })
      .option('postgres-rebuild', { type: 'boolean', default: false, describe: 'empty a mirror of another network, params or chain and rebuild it, instead of refusing it' })
      .option('batch', { type: 'number', default: 500, describe: 'blocks per transaction during the catch-up' })
      .check((a) => {
        checkPostgresUrl(a.postgres);
        if (!Number.isInteger(a.batch) || (a.batch as number) < 1) throw new Error('--batch must be a whole number of blocks ≥ 1');
        return true;
      })
      .example('$0 mirror --db ./index --postgres postgresql://nodereg@localhost/registry', 'mirror an index that no daemon is running on'),
  handler: async (argv) => (await run()).runMirror(argv as unknown as MirrorArgs),
};
