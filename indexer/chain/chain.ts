import BN from 'bn.js';
import type { NetworkParams } from '../../script/params.js';
import { BlockReader, readXorKey, type BlockLocation } from './blkfiles.js';
import { analyseBlocksDir } from './chainpass.js';
import { explainMissingGenesis } from './diagnose.js';
import { blockWork } from './pow.js';

/** One block of the chosen chain and where to re-read it. */
export interface ChainEntry extends BlockLocation {
  height: number;
  /** Internal byte order. */
  hash: Buffer;
  txCount: number;
  /**
   * Every txid of the block, 32 bytes each in order, as the merkle check
   * computed them; null past TXID_KEEP_BYTES, where later passes hash again.
   */
  txids: Buffer | null;
  /** Outputs of the block that could enter the UTXO set. */
  spendable: number;
  /** Stake scripts (latin1) named by the block's well-formed announcement attempts. */
  stakes: string[];
}

/**
 * The chain pass keeps txids for later passes up to this many bytes (about
 * 4M transactions); a bigger chain's later blocks are hashed again instead,
 * so memory stays bounded on mainnet-sized directories.
 */
export const TXID_KEEP_BYTES = 128 * 1024 * 1024;

export interface ChainStats {
  files: number;
  /** Block records read, duplicates included. */
  records: number;
  bytes: number;
  /** Records whose block had already been counted. */
  duplicates: number;
  /** Blocks failing proof of work or their merkle root. */
  invalid: number;
  /** Blocks dropped because an ancestor is invalid. */
  invalidDescendants: number;
  /** Blocks that do not connect to genesis. */
  orphans: number;
  /** Blocks connected to genesis but off the chosen chain. */
  stale: number;
  /** Total chainwork of the tip, hex. */
  chainWork: string;
}

export interface BestChain {
  /** Height order, genesis at 0. */
  blocks: ChainEntry[];
  warnings: string[];
  stats: ChainStats;
  /** The directory's obfuscation key, for re-reading blocks. */
  xorKey: Buffer | null;
}

export interface LoadChainOptions {
  onProgress?: (bytesDone: number, bytesTotal: number) => void;
  /** Each warning as it happens, besides being collected in `warnings`. */
  onWarning?: (message: string) => void;
  /** Checked after every record; when it returns true, loading ends with a ChainLoadStopped. */
  shouldStop?: () => boolean;
  /** Threads that parse and hash blocks (default: one per core, at most four). */
  threads?: number;
  /** Keep txids for later passes up to this many bytes (default TXID_KEEP_BYTES). */
  keepTxidBytes?: number;
  /**
   * Each block that passed its checks, as the pass meets it in file order,
   * before any chain is chosen: lets a caller start on the likely chain
   * while the rest is still being read (see recount.ts). When it returns a
   * promise, reading waits for it (back-pressure): the block's `bytes` stay
   * valid until then. True means the caller is done with the block's txids:
   * they are not kept (a later pass that needs them after all hashes again).
   */
  onBlockSeen?: (block: SeenBlock) => boolean | Promise<boolean>;
}

/** A block record that parses and passes proof of work and its merkle root. */
export interface SeenBlock {
  /** Hash and previous-block hash, internal byte order, as latin1 strings. */
  key: string;
  prevKey: string;
  loc: BlockLocation;
  /** Its txids, 32 bytes each. */
  txids: Buffer;
  /** Its bytes, de-obfuscated: a view valid only during the `onBlockSeen` call (read `loc` again later). */
  bytes: Buffer;
}

/** Loading was cut short by `shouldStop` (e.g. Ctrl-C during a long read). */
export class ChainLoadStopped extends Error {
  constructor() {
    super('stopped while reading the blocks directory');
    this.name = 'ChainLoadStopped';
  }
}

/** The chain cannot be chosen from this directory at all (e.g. genesis missing). */
export class ChainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ChainError';
  }
}

interface Node {
  /** Hash as a latin1 string: half the size of hex, and never a view into a file buffer. */
  key: string;
  prevKey: string;
  /** Position in file order, for the equal-work tie-break. */
  seen: number;
  loc: BlockLocation;
  txCount: number;
  txids: Buffer | null;
  spendable: number;
  stakes: string[];
  bits: number;
  /** Why the block itself is invalid, or null. */
  flaw: string | null;
  parent: Node | null;
  work: BN | null;
  /** Visited by the walk from genesis or from an invalid block. */
  reached: boolean;
}

function rpcHex(key: string): string {
  return Buffer.from(key, 'latin1').reverse().toString('hex');
}

function where(n: Node): string {
  return `${n.loc.file} at offset ${n.loc.offset}`;
}

/**
 * Chooses the chain a recount processes (docs/spec.md §2.8): every record is
 * read once; blocks failing proof of work or their merkle root (wrong, or a
 * mutated tree) are dropped with their descendants, orphans are ignored,
 * duplicates count once (an intact copy stands in for a bad one); then the
 * most-work branch from genesis wins, and on equal work the tip seen first
 * in file order. Unparseable records throw BlkFileError, except a live
 * node's half-written newest block, left out with a warning. Only block
 * locations are kept, so memory grows with the block count, not chain size.
 */
export async function loadBestChain(dir: string, params: NetworkParams, opts: LoadChainOptions = {}): Promise<BestChain> {
  const warnings: string[] = [];
  const warn = (message: string): void => {
    warnings.push(message);
    opts.onWarning?.(message);
  };
  const stats: ChainStats = {
    files: 0, records: 0, bytes: 0, duplicates: 0, invalid: 0, invalidDescendants: 0, orphans: 0, stale: 0, chainWork: '0',
  };
  const nodes = new Map<string, Node>();
  const files = new Set<string>();
  let kept = 0;
  const keep = (txids: Buffer): Buffer | null => {
    if (kept + txids.length > (opts.keepTxidBytes ?? TXID_KEEP_BYTES)) return null;
    kept += txids.length;
    return txids;
  };
  const pass = analyseBlocksDir(dir, params.magic, {
    onProgress: opts.onProgress, onWarning: warn, shouldStop: opts.shouldStop, threads: opts.threads, callerBusy: opts.onBlockSeen !== undefined,
  });
  for await (const records of pass) {
    for (const { file, info, txids, bytes } of records) {
      if (opts.shouldStop?.()) throw new ChainLoadStopped();
      stats.records++;
      stats.bytes += info.size;
      files.add(file);
      const loc = { file, offset: info.offset, size: info.size };
      const known = nodes.get(info.key);
      const flaw = info.flaw;
      if (known !== undefined) {
        // Same hash, same header: only the transactions can differ, so an intact
        // copy may stand in for a corrupt one, but never the other way round.
        stats.duplicates++;
        if (known.flaw === null || flaw !== null) continue;
        const used = (await opts.onBlockSeen?.({ key: info.key, prevKey: info.prevKey, loc, txids, bytes })) === true;
        Object.assign(known, { flaw: null, loc, txCount: info.txCount, txids: used ? null : keep(txids), spendable: info.spendable, stakes: info.stakes });
        continue;
      }
      const used = flaw === null && (await opts.onBlockSeen?.({ key: info.key, prevKey: info.prevKey, loc, txids, bytes })) === true;
      nodes.set(info.key, {
        key: info.key, prevKey: info.prevKey, seen: stats.records, loc, txCount: info.txCount, txids: flaw === null && !used ? keep(txids) : null,
        spendable: info.spendable, stakes: info.stakes, bits: info.bits, flaw, parent: null, work: null, reached: false,
      });
    }
  }
  if (opts.shouldStop?.()) throw new ChainLoadStopped();
  stats.files = files.size;

  const genesisKey = Buffer.from(params.genesisHash, 'hex').reverse().toString('latin1');
  const genesis = nodes.get(genesisKey);
  if (genesis === undefined) {
    throw new ChainError(await explainMissingGenesis(dir, params, stats.records));
  }
  if (genesis.flaw !== null) throw new ChainError(`genesis block in ${where(genesis)} ${genesis.flaw}`);

  const children = new Map<string, Node[]>();
  for (const n of nodes.values()) {
    if (n === genesis) continue;
    const list = children.get(n.prevKey);
    if (list === undefined) children.set(n.prevKey, [n]);
    else list.push(n);
  }

  // Walk the tree from genesis, parents before children, summing work and
  // stopping at invalid blocks; whatever is never reached is an orphan.
  const workCache = new Map<number, BN>();
  const workOf = (bits: number): BN => {
    let w = workCache.get(bits);
    if (w === undefined) workCache.set(bits, (w = blockWork(bits)));
    return w;
  };
  genesis.work = workOf(genesis.bits);
  genesis.reached = true;
  let best = genesis;
  const queue: Node[] = [genesis];
  const invalid: Node[] = [];
  for (let qi = 0; qi < queue.length; qi++) {
    const parent = queue[qi];
    for (const child of children.get(parent.key) ?? []) {
      child.reached = true;
      if (child.flaw !== null) {
        invalid.push(child);
        continue;
      }
      child.parent = parent;
      child.work = (parent.work as BN).add(workOf(child.bits));
      const cmp = child.work.cmp(best.work as BN);
      if (cmp > 0 || (cmp === 0 && child.seen < best.seen)) best = child;
      queue.push(child);
    }
  }

  for (const bad of invalid) {
    let descendants = 0;
    const stack = [bad];
    while (stack.length > 0) {
      for (const c of children.get((stack.pop() as Node).key) ?? []) {
        if (c.reached) continue;
        c.reached = true;
        descendants++;
        stack.push(c);
      }
    }
    stats.invalid++;
    stats.invalidDescendants += descendants;
    warn(`block ${rpcHex(bad.key)} in ${where(bad)} ${bad.flaw}: dropped with its ${descendants} descendant(s)`);
  }
  for (const n of nodes.values()) {
    if (n.reached) continue;
    if (n.flaw !== null) {
      stats.invalid++;
      warn(`block ${rpcHex(n.key)} in ${where(n)} ${n.flaw}: dropped`);
    } else {
      stats.orphans++;
      warn(`block ${rpcHex(n.key)} in ${where(n)} does not connect to genesis (parent ${rpcHex(n.prevKey)} unknown): ignored`);
    }
  }

  const blocks: ChainEntry[] = [];
  for (let n: Node | null = best; n !== null; n = n.parent) {
    blocks.push({
      height: 0, hash: Buffer.from(n.key, 'latin1'), ...n.loc, txCount: n.txCount, txids: n.txids, spendable: n.spendable, stakes: n.stakes,
    });
  }
  blocks.reverse();
  blocks.forEach((b, h) => (b.height = h));
  stats.stale = queue.length - blocks.length;
  stats.chainWork = (best.work as BN).toString(16);
  return { blocks, warnings, stats, xorKey: await readXorKey(dir) };
}

/**
 * Opens a reader that re-reads chain entries (de-obfuscated) one at a time, in
 * whatever order the caller walks them. Close it when done.
 */
export async function openChainReader(dir: string): Promise<BlockReader> {
  return BlockReader.open(dir);
}

/** Reads one chain entry's bytes; for many reads, keep a reader open instead. */
export function readChainBlock(entry: BlockLocation, xorKey: Buffer | null): Buffer {
  const reader = new BlockReader(xorKey);
  try {
    return reader.read(entry);
  } finally {
    reader.close();
  }
}
