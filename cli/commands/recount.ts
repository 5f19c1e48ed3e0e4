import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { DEFAULT_THREADS } from '../../indexer/chain/threads.js';
import { DEFAULT_MEMORY_MIB } from '../../indexer/engine/budget.js';
import { withJson, withNetwork } from '../common.js';
import { withDatadir } from '../datadir.js';
import type { RecountArgs } from './recount-run.js';

// Imported when the command runs: keeps the engine off other commands' start-up.
const run = (): Promise<typeof import('./recount-run.js')> => import('./recount-run.js');

/** Nodes the human-readable output lists unless --all is given. */
export const NODES_SHOWN = 20;

/**
 * What an interrupted recount tells the user: where it stopped and how to go
 * on. `height` is the index tip (-1 before the first block was connected).
 */
export function interruptedLine(height: number, target: number, temporary: boolean): string {
  const how = temporary ? 'the temporary index was removed' : height < 0
    ? 'run the same command again to start over'
    : `run the same command again to resume from height ${height}`;
  const where = height < 0 ? 'before the first block was connected' : `at height ${height} of ${target}`;
  return `interrupted ${where}; ${how}`;
}

export const recountCommand: CommandModule = {
  ...LISTED.recount,
  builder: (y: Argv) =>
    withDatadir(withJson(withNetwork(y)))
      .option('blocks-dir', { type: 'string', describe: 'bitcoind blocks/ directory (blk*.dat, optional xor.dat); default: <datadir>/<chain>/blocks' })
      .option('height', { type: 'number', describe: 'stop at this height instead of the best tip' })
      .option('db', { type: 'string', describe: 'keep the index in this directory (resumable); default: a temporary one' })
      .option('utxo-hash', { type: 'boolean', default: false, describe: 'also compute Core\'s UTXO-set MuHash (gettxoutsetinfo muhash); costs time per coin' })
      .option('fast', { type: 'boolean', default: false, describe: 'two passes, tracking only coins of announced stakes: same registry and root, faster (not with --db or --utxo-hash)' })
      .option('reset', { type: 'boolean', default: false, describe: 'with --db: wipe the index first and recount from scratch (needed when it was built from another chain)' })
      .option('stats', { type: 'boolean', default: false, describe: 'print time, peak memory and the spills into the coin file of a throwaway recount as one JSON line on stderr' })
      .option('all', { type: 'boolean', default: false, describe: `without --json, list every node instead of the first ${NODES_SHOWN}` })
      .option('memory-mib', { type: 'number', default: DEFAULT_MEMORY_MIB, alias: 'utxo-memory-mib', describe: 'memory budget, MiB, shared by LevelDB, the kept txids and the coin view, which spills into the index before its share is full (0: after every block). The default aims to keep a recount under 512 MiB RSS' })
      .option('cache-mib', { type: 'number', hidden: true, deprecated: 'use --memory-mib', describe: 'the memory filled before a flush, MiB (overrides --memory-mib)' })
      .option('threads', { type: 'number', describe: `threads that read and hash blocks (default ${DEFAULT_THREADS}: one per core, at most four)` })
      .check((a) => {
        if (a.height !== undefined && (!Number.isInteger(a.height) || (a.height as number) < 0)) throw new Error('--height must be a whole number ≥ 0');
        if (a.reset && a.db === undefined) throw new Error('--reset wipes the index given by --db, so it needs --db');
        if (a.fast && (a.db !== undefined || a['utxo-hash'])) throw new Error('--fast keeps only the coins of announced stakes, so it cannot be combined with --db or --utxo-hash');
        if (a['cache-mib'] !== undefined && (!Number.isFinite(a['cache-mib']) || (a['cache-mib'] as number) < 1)) throw new Error('--cache-mib must be at least 1');
        if (!Number.isFinite(a['memory-mib']) || (a['memory-mib'] as number) < 0) throw new Error('--memory-mib must be 0 or more');
        if (a.threads !== undefined && (!Number.isInteger(a.threads) || (a.threads as number) < 1 || (a.threads as number) > 64)) throw new Error('--threads must be a whole number from 1 to 64');
        return true;
      })
      .example('$0 recount --network regtest --blocks-dir fixtures/chains/demo/blocks', 'recount the bundled demo chain')
      .example('$0 recount --blocks-dir ~/.bitcoin/blocks --json > registry.json', 'the interchange JSON of a mainnet node'),
  handler: async (argv) => (await run()).run(argv as unknown as RecountArgs),
};
