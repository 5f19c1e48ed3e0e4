import { networkFrom, printJson, type NetworkArgs } from '../common.js';
import { table } from '../format.js';
import { createKeyFile } from '../operator/keygen.js';
import { readKeyFile, type OwnedScript } from '../operator/keys.js';

/*
 * What `nodereg key new` and `key addresses` do, loaded only when one of them
 * runs: it needs the signing libraries (ecpair, secp256k1).
 */

export interface KeyArgs extends NetworkArgs {
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

export function runNew(a: KeyArgs): void {
  const owned = createKeyFile(a.out!, networkFrom(a));
  if (!a.json) process.stdout.write(`created ${a.out} (mode 600). Each address below is a different stake of this key; fund one:\n\n`);
  show(owned, a.json);
}

export function runAddresses(a: KeyArgs): void {
  show(readKeyFile(a.keyFile!, networkFrom(a)).owned(), a.json);
}
