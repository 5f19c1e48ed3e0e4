import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { redact } from '../../indexer/redact.js';
import { withJson, withNetwork } from '../common.js';
import { withDatadir } from '../datadir.js';
import type { CreateArgs, LoadArgs } from './snapshot-run.js';

/* `nodereg snapshot create|load`: flags and their checks; the work is in snapshot-run.ts. */

const run = (): Promise<typeof import('./snapshot-run.js')> => import('./snapshot-run.js');

/** Undo records carried by default: enough for the reorgs a live chain has. */
export const DEFAULT_UNDO_BLOCKS = 12;

const create: CommandModule = {
  command: 'create',
  describe: 'write the index at its tip to a verifiable snapshot file',
  builder: (y: Argv) =>
    withJson(withNetwork(y))
      .option('db', { type: 'string', demandOption: true, describe: 'index directory (not held by a running daemon)' })
      .option('out', { type: 'string', demandOption: true, describe: 'snapshot file to write (must not exist)' })
      .option('undo-blocks', { type: 'number', default: DEFAULT_UNDO_BLOCKS, describe: 'undo records of this many blocks up to the tip go along, so a loaded index can undo a reorg that deep' })
      .check((a) => {
        if (!Number.isInteger(a['undo-blocks']) || (a['undo-blocks'] as number) < 0) throw new Error('--undo-blocks must be a whole number ≥ 0');
        return true;
      })
      .example('$0 snapshot create --db ./index --out registry-880000.snap', 'snapshot a stopped index'),
  handler: async (argv) => (await run()).runCreate(argv as unknown as CreateArgs),
};

const load: CommandModule = {
  command: 'load <file>',
  describe: 'load a snapshot into a new index, recomputing every root it claims (and checking it against a node if given)',
  builder: (y: Argv) =>
    withDatadir(withJson(y))
      .positional('file', { type: 'string', demandOption: true, describe: 'snapshot file' })
      .option('db', { type: 'string', demandOption: true, describe: 'new index directory (must not exist, or be empty)' })
      .option('rpc', { type: 'string', describe: 'node RPC URL: check that the snapshot\'s tip is in its main chain and its UTXO-set MuHash is the node\'s' })
      .option('rpc-user', { type: 'string' })
      .option('rpc-password', { type: 'string', describe: 'prefer NODEREG_RPC_PASSWORD or --rpc-cookie' })
      .option('rpc-cookie', { type: 'string' })
      .option('rpc-timeout', { type: 'number', default: 30, describe: 'seconds before an RPC call is abandoned (gettxoutsetinfo gets at least 10 min)' })
      .conflicts('rpc-cookie', 'rpc-password')
      .check((a) => {
        if (a.rpc !== undefined && !/^https?:\/\/[^\s]+$/.test(String(a.rpc))) throw new Error(`--rpc must be an http(s) URL such as http://127.0.0.1:8332, got "${redact(String(a.rpc))}"`);
        if (!(Number.isFinite(a['rpc-timeout']) && (a['rpc-timeout'] as number) > 0)) throw new Error('--rpc-timeout must be a positive number of seconds');
        return true;
      })
      .example('$0 snapshot load registry-880000.snap --db ./index --datadir ~/.bitcoin', 'load and check against the local bitcoind, then: nodereg index --db ./index')
      .example('$0 snapshot load registry.snap --db ./index --rpc http://127.0.0.1:18443 --rpc-user u', 'check against a node given by URL'),
  handler: async (argv) => (await run()).runLoad(argv as unknown as LoadArgs),
};

export const snapshotCommand: CommandModule = {
  ...LISTED.snapshot,
  builder: (y: Argv) => y.command(create).command(load).demandCommand(1, 'choose create or load'),
  handler: () => undefined,
};
