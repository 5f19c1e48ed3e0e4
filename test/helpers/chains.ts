import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { carrier, newNode } from '../../fixtures/generator/announce.js';
import type { ChainBuilder, MinedBlock } from '../../fixtures/generator/chain.js';
import { writeBlocksDir } from '../../fixtures/generator/blkwriter.js';
import { fixtureLayout } from '../../fixtures/generator/output.js';
import { payTo } from '../../fixtures/generator/wallet.js';
import { storageOrder } from '../../fixtures/generator/blkwriter.js';
import { BlockReader } from '../../indexer/chain/blkfiles.js';
import { loadBestChain } from '../../indexer/chain/chain.js';
import { BUILTIN_NETWORKS } from '../../script/params.js';
import type { BcoinNode } from './bcoin.js';
import { noderegIn, ROOT } from './cli.js';

/** What submitting a block and waiting for it need: its bytes, height and RPC hash. */
export type ChainBlock = Pick<MinedBlock, 'height' | 'hash' | 'raw'>;

/**
 * The demo's best chain, genesis first, read from the committed
 * fixtures/chains/demo (generator.test holds those files to what demo()
 * builds): for suites that only submit it to a node, where building it again
 * with demo() costs about half a CPU second (reading it, a twentieth).
 */
export async function demoBlocks(): Promise<ChainBlock[]> {
  const chain = await loadBestChain(join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), BUILTIN_NETWORKS.regtest!);
  const reader = new BlockReader(chain.xorKey);
  try {
    return chain.blocks.map((e, height) => ({ height, hash: Buffer.from(e.hash).reverse().toString('hex'), raw: reader.read(e) }));
  } finally {
    reader.close();
  }
}

/**
 * Writes every block a builder ever mined (all branches) as a blocks dir and
 * recounts it with the CLI, in-process (see noderegIn): the recount's answer is
 * the reference here, not the process that prints it.
 */
export async function recountOf(c: ChainBuilder, extraArgs: string[] = []): Promise<unknown> {
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-rc-'));
  try {
    writeBlocksDir(join(dir, 'blocks'), storageOrder(c), fixtureLayout(c));
    const res = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', join(dir, 'blocks'), '--json', ...extraArgs]);
    if (res.status !== 0) throw new Error(`recount failed: ${res.stderr}`);
    return JSON.parse(res.stdout) as unknown;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Submits blocks to a node in order; every one must be accepted. */
export async function submitAll(node: BcoinNode, blocks: readonly ChainBlock[]): Promise<void> {
  for (const b of blocks) {
    const answer = await node.rpc<string | null>('submitblock', [Buffer.from(b.raw).toString('hex')]);
    if (answer !== null) throw new Error(`bcoin refused block ${b.height} ${b.hash}: ${answer}`);
  }
}

/**
 * A branch of `c` from 10 blocks below its tip that outgrows it: ivan is paid
 * 50 coins and registers, then 10 empty blocks follow (12 blocks in all).
 */
export function reorgBranch(c: ChainBuilder): ChainBuilder {
  const side = c.fork(c.height - 10);
  const ivan = side.account('ivan', 'p2wpkh');
  side.wallet.pay(side.miner, [payTo(ivan, 50n * 100_000_000n)]);
  side.mine();
  side.wallet.pay(ivan, [carrier(newNode(ivan, side.nextTime()))]);
  side.mine();
  side.mineEmpty(10);
  return side;
}
