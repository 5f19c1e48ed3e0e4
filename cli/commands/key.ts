import type { Argv, CommandModule } from 'yargs';
import { networkFrom, printJson, withJson, withNetwork, type NetworkArgs } from '../common.js';
import { table } from '../format.js';
import { createKeyFile } from '../operator/keygen.js';
import { readKeyFile, type OwnedScript } from '../operator/keys.js';

/*
 * `nodereg key`: create a stake key file, or show which addresses a key file
 * controls. The key itself is never printed.
 */

interface KeyArgs extends NetworkArgs {
  out?: string;
  keyFile?: string;
  json: boolean;
}

function show(owned: OwnedScript[], json: boolean): void {
  if (json) {
    printJson({ addresses: owned.map((o) => ({ type: o.kind, address: o.address, script: o.script.toString('hex') })) });
    return;
  }
  process.stdout.write(`${table(['type', 'address'], owned.map((o) => [o.kind, o.address]))}\n`);
}

const create: CommandModule = {
  command: 'new',
  describe: 'create a stake key in a new file (mode 600) and print the addresses it controls',
  builder: (y: Argv) => withJson(withNetwork(y))
    .option('out', { type: 'string', demandOption: true, describe: 'file to create (never overwritten)' })
    .example('$0 key new --network regtest --out stake.wif', 'a regtest stake key; fund its p2wpkh address'),
  handler: (argv) => {
    const a = argv as unknown as KeyArgs;
    const owned = createKeyFile(a.out!, networkFrom(a));
    if (!a.json) process.stdout.write(`created ${a.out} (mode 600). Each address below is a different stake of this key; fund one:\n\n`);
    show(owned, a.json);
  },
};

const addresses: CommandModule = {
  command: 'addresses',
  describe: 'the addresses (stakes) a key file controls',
  builder: (y: Argv) => withJson(withNetwork(y))
    .option('key-file', { type: 'string', demandOption: true, describe: 'file holding one WIF key, mode 600' })
    .example('$0 key addresses --network regtest --key-file stake.wif', 'which stake addresses this key can announce'),
  handler: (argv) => {
    const a = argv as unknown as KeyArgs;
    show(readKeyFile(a.keyFile!, networkFrom(a)).owned(), a.json);
  },
};

export const keyCommand: CommandModule = {
  command: 'key <command>',
  describe: 'create a stake key file, or list the addresses one controls',
  builder: (y: Argv) => y.command(create).command(addresses).demandCommand(1),
  handler: () => undefined,
};
