/**
 * The recorded Core fixtures, and bitcoind blocks directories written from
 * raw blocks with the file split, obfuscation and zero tails a test picks.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A file written by real node software: fixtures/real/`name` (see fixtures/real/README.md). */
export function fixturePath(name: string): string {
  const path = fileURLToPath(new URL(`../../fixtures/real/${name}`, import.meta.url));
  if (!existsSync(path)) throw new Error(`missing fixture ${path}: it is part of the repository, restore it with git checkout`);
  return path;
}

/** What the Core regtest node said about the chain in its blocks directory. */
export interface CoreRegtestNode {
  bestblockhash: string;
  height: number;
  heights: Record<string, { hash: string }>;
}

/** The blocks directory of a real Bitcoin Core regtest node, and its node.json. */
export function coreRegtest(): { blocksDir: string; node: CoreRegtestNode } {
  return {
    blocksDir: fixturePath('core-regtest/blocks'),
    node: JSON.parse(readFileSync(fixturePath('core-regtest/node.json'), 'utf8')) as CoreRegtestNode,
  };
}

export interface BlkDirOptions {
  /** Record magic, 4 bytes. */
  magic: Buffer;
  /** Obfuscation key; null writes the files in the clear. */
  key?: Buffer | null;
  /** Write xor.dat even when the key is null (then as eight zero bytes). */
  keyFile?: boolean;
  /** Raw zero bytes appended to each file, as Core's preallocation leaves them. */
  zeroTail?: number;
}

/**
 * Writes blocks as a bitcoind blocks directory, one inner array per blk
 * file, in a new temporary directory, and returns its path (the caller
 * removes it).
 */
export function writeBlkDir(files: Buffer[][], { magic, key = null, keyFile = key !== null, zeroTail = 4096 }: BlkDirOptions): string {
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-blk-'));
  files.forEach((blocks, i) => {
    const parts: Buffer[] = [];
    for (const b of blocks) {
      const size = Buffer.alloc(4);
      size.writeUInt32LE(b.length);
      parts.push(magic, size, b);
    }
    const data = Buffer.concat(parts);
    if (key !== null) for (let p = 0; p < data.length; p++) data[p] ^= key[p % 8];
    writeFileSync(join(dir, `blk${String(i).padStart(5, '0')}.dat`), Buffer.concat([data, Buffer.alloc(zeroTail)]));
  });
  if (keyFile) writeFileSync(join(dir, 'xor.dat'), key ?? Buffer.alloc(8));
  return dir;
}
