import { closeSync, openSync, writeSync } from 'node:fs';
import * as ecc from '@bitcoinerlab/secp256k1';
import { ECPairFactory } from 'ecpair';
import type { NetworkParams } from '../../script/params.js';
import { UserError } from '../common.js';
import { parseWif, toNetwork, type OwnedScript } from './keys.js';

const ECPair = ECPairFactory(ecc);

/**
 * Creates a fresh stake key in a new file, readable by its owner only, and
 * returns the addresses it controls. An existing file is never overwritten:
 * it may hold the key of a funded stake.
 */
export function createKeyFile(path: string, params: NetworkParams): OwnedScript[] {
  const pair = ECPair.makeRandom({ network: toNetwork(params) });
  const wif = pair.toWIF();
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new UserError(`${path} already exists; nodereg never overwrites a key file (it may hold a funded stake's key)`);
    throw new UserError(`cannot create ${path} (${code ?? 'error'})`);
  }
  try {
    writeSync(fd, `# nodereg stake key for ${params.name}; keep this file private (mode 600) and backed up\n${wif}\n`);
  } finally {
    closeSync(fd);
  }
  return parseWif(wif, params, `key file ${path}`).owned();
}
