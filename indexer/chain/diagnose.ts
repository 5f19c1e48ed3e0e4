import { hash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { BUILTIN_NETWORKS, type NetworkParams } from '../../script/params.js';
import { deobfuscate, listBlkFiles, readXorKey, XOR_HINT } from './blkfiles.js';
import { readRegularFile } from './blkread.js';

/** Where bitcoind keeps each network's blocks under its data directory. */
const NETWORK_SUBDIRS = ['blocks', 'regtest/blocks', 'testnet3/blocks', 'testnet4/blocks', 'signet/blocks'];

async function hasBlkFiles(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).some((name) => /^blk\d+\.dat$/.test(name));
  } catch {
    return false;
  }
}

/**
 * Says why a blocks directory holds no genesis block of `params`, and what to
 * do: the parent of blocks/ was given, the files belong to another network,
 * or they are obfuscated and xor.dat is missing. Core always writes genesis
 * first, at the start of blk00000.dat, so the first record tells the network.
 */
export async function explainMissingGenesis(dir: string, params: NetworkParams, records: number): Promise<string> {
  const files = await listBlkFiles(dir);
  if (files.length === 0) {
    const found: string[] = [];
    for (const sub of NETWORK_SUBDIRS) if (await hasBlkFiles(join(dir, sub))) found.push(join(dir, sub));
    if (found.length > 0) {
      return `no blk*.dat files in ${dir}, but bitcoind's blocks are in ${found.join(' and ')}: pass --blocks-dir ${found[0]}`;
    }
    return `no blk*.dat files in ${dir}: pass bitcoind's blocks/ directory (e.g. ~/.bitcoin/blocks, or ~/.bitcoin/regtest/blocks for regtest)`;
  }
  const generic = `genesis block ${params.genesisHash} of network ${params.name} is not in ${dir} (${records} records read); is this the right network's blocks directory?`;
  let head: Buffer;
  try {
    head = Buffer.from(await readRegularFile(files[0]!, 88));
    deobfuscate(head, 0, await readXorKey(dir));
  } catch {
    return generic;
  }
  if (head.length < 8) return generic;
  const magic = head.subarray(0, 4).toString('hex');
  const first = head.length >= 88 ? hash('sha256', hash('sha256', head.subarray(8, 88), 'buffer'), 'buffer').reverse().toString('hex') : '';
  const byGenesis = Object.values(BUILTIN_NETWORKS).find((n) => n.magic === magic && n.genesisHash === first);
  if (byGenesis !== undefined && byGenesis.genesisHash !== params.genesisHash) {
    return `${dir} looks like a ${byGenesis.name} blocks directory (it starts with ${byGenesis.name}'s genesis block), not ${params.name}: add --network ${byGenesis.name}`;
  }
  const byMagic = Object.values(BUILTIN_NETWORKS).find((n) => n.magic === magic);
  if (byMagic !== undefined && magic !== params.magic) {
    return `the records in ${dir} carry the magic of ${byMagic.name}, not of ${params.name}: add --network ${byMagic.name}, or describe the chain with --params`;
  }
  if (byMagic === undefined && magic !== params.magic && (await readXorKey(dir)) === null && head.subarray(0, 8).some((b) => b !== 0)) {
    return `${files[0]} does not start with a block record of ${params.name}: ${XOR_HINT}`;
  }
  return generic;
}
