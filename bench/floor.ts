import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deobfuscate, readXorKey } from '../indexer/chain/blkfiles.js';
import { blockTxCount, walkTxidsInto } from '../indexer/chain/scanner.js';
import { analyseBlocksDir } from '../indexer/chain/chainpass.js';

/**
 * The floor of docs/spec.md §4: read the blk files, walk every transaction and
 * compute its txid with native SHA-256, single-threaded, nothing else. It
 * hashes the way the recount's chain pass does (digests as latin1 strings,
 * written into one buffer), the cheapest use of `crypto.hash` found, so the
 * ratios are not flattered by a slower floor.
 */
export async function floorScan(blocksDir: string, magicHex = 'fabfb5da'): Promise<{ txs: number; seconds: number }> {
  const start = process.hrtime.bigint();
  const key = await readXorKey(blocksDir);
  const magic = Buffer.from(magicHex, 'hex');
  let txs = 0;
  let txids = Buffer.allocUnsafe(1 << 16);
  const files = readdirSync(blocksDir).filter((f) => /^blk\d{5}\.dat$/.test(f)).sort();
  for (const f of files) {
    const buf = readFileSync(join(blocksDir, f));
    deobfuscate(buf, 0, key);
    let pos = buf.indexOf(magic);
    while (pos >= 0 && pos + 8 <= buf.length) {
      const size = buf.readUInt32LE(pos + 4);
      const block = buf.subarray(pos + 8, pos + 8 + size);
      const n = blockTxCount(block);
      if (txids.length < n * 32) txids = Buffer.allocUnsafe(n * 64);
      txs += walkTxidsInto(block, txids, 0, null).txs;
      pos = buf.indexOf(magic, pos + 8 + size);
    }
  }
  return { txs, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}

/**
 * The ceiling of every recount mode: the chain pass alone, as a recount runs
 * it (`analyseBlocksDir` on its default threads), in this process, doing
 * nothing with what it yields. It reads every block, computes every txid and
 * checks every merkle root and header (docs/spec.md §2.8), which each mode
 * does before it connects anything, so no mode's tx/s can pass this figure on
 * the same machine while the chain pass stays as it is. Its ratio to the
 * floor bounds the ratios of §4.
 */
export async function chainPassScan(blocksDir: string, magicHex = 'fabfb5da'): Promise<{ txs: number; seconds: number }> {
  const start = process.hrtime.bigint();
  let txs = 0;
  for await (const records of analyseBlocksDir(blocksDir, magicHex)) {
    for (const r of records) txs += r.info.txCount;
  }
  return { txs, seconds: Number(process.hrtime.bigint() - start) / 1e9 };
}
