import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { withJson, withNetwork } from '../common.js';
import type { DecodeArgs, EncodeArgs } from './script-run.js';

// Imported when a handler runs: keeps the address code off other commands' start-up.
const run = (): Promise<typeof import('./script-run.js')> => import('./script-run.js');

export const scriptCommand: CommandModule = {
  ...LISTED.script,
  builder: (y: Argv) =>
    y
      .command({
        command: 'encode',
        describe: 'print the OP_RETURN carrier for an OP_NEWNODE, or an OP_RENEWAL with --prev',
        builder: (b: Argv) =>
          withJson(withNetwork(b))
            .option('stake', { type: 'string', demandOption: true, describe: 'staking address or output script hex' })
            .option('timestamp', { type: 'number', demandOption: true, describe: 'announcement time, unix seconds' })
            .option('prev', { type: 'string', describe: 'previous announcement txid (RPC hex) for a renewal' })
            .example('$0 script encode --network regtest --stake bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080 --timestamp 1700000000', 'an OP_NEWNODE carrier'),
        handler: async (argv) => (await run()).encode(argv as unknown as EncodeArgs),
      })
      .command({
        command: 'decode <hex>',
        describe: 'decode a carrier output script or a bare BODY',
        builder: (b: Argv) =>
          withJson(withNetwork(b))
            .positional('hex', { type: 'string', demandOption: true, describe: 'carrier or BODY, hex' })
            .example('$0 script decode 6a044e5245471d160014751e76e8199196d454941c45d1b3a323f1433bd60400f15365c0 --network regtest --json', 'decode an OP_NEWNODE'),
        handler: async (argv) => (await run()).decode(argv as unknown as DecodeArgs),
      })
      .demandCommand(1, 'choose an action: encode or decode'),
  handler: () => undefined,
};
