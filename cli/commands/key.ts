import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { withJson, withNetwork } from '../common.js';
import type { KeyArgs } from './key-run.js';

/*
 * `nodereg key`: create a stake key file, or show which addresses a key file
 * controls. The key itself is never printed. The work is in key-run.ts.
 */

// Imported when a handler runs: keeps the signing libraries off other commands' start-up.
const run = (): Promise<typeof import('./key-run.js')> => import('./key-run.js');

const create: CommandModule = {
  command: 'new',
  describe: 'create a stake key in a new file (mode 600) and print the addresses it controls',
  builder: (y: Argv) => withJson(withNetwork(y))
    .option('out', { type: 'string', demandOption: true, describe: 'file to create (never overwritten)' })
    .example('$0 key new --network regtest --out stake.wif', 'a regtest stake key; fund its p2wpkh address'),
  handler: async (argv) => (await run()).runNew(argv as unknown as KeyArgs),
};

const addresses: CommandModule = {
  command: 'addresses',
  describe: 'the addresses (stakes) a key file controls',
  builder: (y: Argv) => withJson(withNetwork(y))
    .option('key-file', { type: 'string', demandOption: true, describe: 'file holding one WIF key, mode 600' })
    .example('$0 key addresses --network regtest --key-file stake.wif', 'which stake addresses this key can announce'),
  handler: async (argv) => (await run()).runAddresses(argv as unknown as KeyArgs),
};

export const keyCommand: CommandModule = {
  ...LISTED.key,
  builder: (y: Argv) => y.command(create).command(addresses).demandCommand(1),
  handler: () => undefined,
};
