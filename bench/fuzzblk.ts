/**
 * Fuzzing the blk reader and the chain pass: random bit flips, truncations,
 * inserted, deleted, zeroed and copied bytes in a real blocks directory,
 * then a recount. A case passes when the recount either stops with one of
 * the documented user-facing errors, or succeeds with a chain that an
 * independent check finds valid (each block parses, links to its parent from
 * genesis, meets its own proof of work and commits to its transactions
 * without a mutated tree) and a registry equal to that of the same chain
 * stored cleanly, so nothing off the chosen chain leaked into the result;
 * and an independent reader must choose the same tip.
 * Used by test/blk-fuzz.test.ts (a bounded number of cases) and by
 * bench/fuzz.ts (`npm run fuzz`, as many as asked).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Block } from 'bitcoinjs-lib';
import { targetFromBits } from '../fixtures/generator/block.js';
import { prng } from '../fixtures/generator/random.js';
import { BlkFileError } from '../indexer/chain/blkfiles.js';
import { ChainError, readChainBlock, type BestChain } from '../indexer/chain/chain.js';
import { recount, type RecountOptions } from '../indexer/engine/recount.js';
import { exportAt } from '../indexer/read/queries.js';
import { openStore } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';

const regtest = BUILTIN_NETWORKS.regtest!;
const MAGIC = Buffer.from(regtest.magic, 'hex');

/** The blk files of a directory (raw, as on disk) and its key. */
export interface Seed {
  files: Array<{ name: string; bytes: Buffer }>;
  key: Buffer | null;
}

export function readSeed(dir: string, names: string[]): Seed {
  let key: Buffer | null = null;
  try {
    key = readFileSync(join(dir, 'xor.dat'));
  } catch {
    key = null;
  }
  return { files: names.map((name) => ({ name, bytes: readFileSync(join(dir, name)) })), key };
}

/** Re-lays a seed's records over `n` files (same key), so multi-file paths get fuzzed too. */
export function splitSeed(seed: Seed, n: number): Seed {
  const plain = Buffer.concat(seed.files.map((f) => xor(f.bytes, seed.key)));
  const records: Buffer[] = [];
  for (let pos = 0; pos + 8 <= plain.length && plain.subarray(pos, pos + 4).equals(MAGIC);) {
    const end = pos + 8 + plain.readUInt32LE(pos + 4);
    records.push(plain.subarray(pos, end));
    pos = end;
  }
  const per = Math.ceil(records.length / n);
  const files = Array.from({ length: n }, (_, i) => ({
    name: `blk${String(i).padStart(5, '0')}.dat`,
    bytes: xor(Buffer.concat(records.slice(i * per, (i + 1) * per)), seed.key),
  }));
  return { files: files.filter((f) => f.bytes.length > 0), key: seed.key };
}

function xor(bytes: Buffer, key: Buffer | null): Buffer {
  const out = Buffer.from(bytes);
  if (key !== null) for (let p = 0; p < out.length; p++) out[p] ^= key[p % 8]!;
  return out;
}

type Rand = () => number;
const int = (rand: Rand, n: number): number => Math.floor(rand() * n);

/** One random change to one file; returns what was done, for the report. */
function mutateOnce(files: Seed['files'], rand: Rand): string {
  const f = files[int(rand, files.length)]!;
  const b = f.bytes;
  const at = int(rand, b.length + 1);
  const kind = int(rand, 7);
  switch (kind) {
    case 0: {
      const bit = int(rand, 8);
      if (at < b.length) b[at] ^= 1 << bit;
      return `${f.name}: flip bit ${bit} at ${at}`;
    }
    case 1:
      f.bytes = b.subarray(0, at);
      return `${f.name}: truncate at ${at}`;
    case 2: {
      const extra = Buffer.from(Array.from({ length: 1 + int(rand, 64) }, () => int(rand, 256)));
      f.bytes = Buffer.concat([b.subarray(0, at), extra, b.subarray(at)]);
      return `${f.name}: insert ${extra.length} random bytes at ${at}`;
    }
    case 3: {
      const n = 1 + int(rand, 300);
      f.bytes = Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
      return `${f.name}: delete ${n} bytes at ${at}`;
    }
    case 4: {
      const n = 1 + int(rand, 300);
      b.fill(0, at, Math.min(b.length, at + n));
      return `${f.name}: zero ${n} bytes at ${at}`;
    }
    case 5: {
      const from = int(rand, b.length);
      const n = 1 + int(rand, 2000);
      f.bytes = Buffer.concat([b.subarray(0, at), b.subarray(from, from + n), b.subarray(at)]);
      return `${f.name}: copy ${n} bytes from ${from} to ${at}`;
    }
    default: {
      // A record's size field, where a flip moves every later record.
      const bit = int(rand, 32);
      const pos = 4 + 8 * int(rand, Math.max(1, Math.floor(b.length / 8)));
      if (pos + 4 <= b.length) b.writeUInt32LE((b.readUInt32LE(pos) ^ (1 << bit)) >>> 0, pos);
      return `${f.name}: flip bit ${bit} of the word at ${pos}`;
    }
  }
}

export interface CaseResult {
  seed: number;
  mutations: string[];
  outcome: 'error' | 'chain';
  /** The error message, or the chosen tip and height. */
  detail: string;
}

/** Thrown when a case gives a wrong answer or an unexpected kind of error. */
export class FuzzFailure extends Error {
  constructor(seed: number, mutations: string[], what: string) {
    super(`fuzz case ${seed} [${mutations.join('; ')}]: ${what}`);
    this.name = 'FuzzFailure';
  }
}

/**
 * The errors a damaged directory may give. Not RecountError or
 * ChainMismatchError: the demo directory is complete, so any valid chain
 * from its genesis has every input it spends, and a missing one means a block
 * was wrongly accepted.
 */
const USER_ERRORS = [BlkFileError, ChainError];

/** Whether bitcoinjs-lib, too, cannot parse the record whose data starts at `offset` of `file`. */
function unparseable(files: Seed['files'], key: Buffer | null, err: BlkFileError): boolean {
  const f = files.find((x) => err.file.endsWith(`/${x.name}`));
  if (f === undefined || err.offset === null || err.offset < 8) return false;
  const plain = xor(f.bytes, key);
  const size = plain.readUInt32LE(err.offset - 4);
  const raw = plain.subarray(err.offset, err.offset + size);
  try {
    const block = Block.fromBuffer(raw);
    return raw.length !== size || raw.length <= 80 || block.byteLength() !== raw.length || (block.transactions ?? []).length === 0;
  } catch {
    return true;
  }
}

/** Recounts a blocks directory into a temporary index and returns the export and the chain. */
async function recountDir(blocksDir: string, work: string, engine: Partial<RecountOptions>): Promise<{ json: string; chain: BestChain }> {
  const dbDir = join(work, `db-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const db = await openStore(dbDir, regtest, { create: true });
  try {
    const r = await recount({ blocksDir, params: regtest, db, throwaway: true, threads: 1, ...engine });
    return { json: JSON.stringify(await exportAt(db, regtest, r.height)), chain: r.chain! };
  } finally {
    await db.close();
    rmSync(dbDir, { recursive: true, force: true });
  }
}

function sha256d(b: Uint8Array): Buffer {
  return createHash('sha256').update(createHash('sha256').update(b).digest()).digest();
}

/** Core's compact target rules, written out again: negative and overflowing encodings are invalid. */
function meetsTarget(hash: Buffer, bits: number): boolean {
  const mantissa = bits & 0x007fffff;
  if (mantissa !== 0 && (bits & 0x00800000) !== 0) return false;
  const target = targetFromBits(bits);
  if (target === 0n || target >= 1n << 256n) return false;
  return BigInt('0x' + Buffer.from(hash).reverse().toString('hex')) <= target;
}

/** Whether a merkle tree repeats a pair at some level (an independent rendering of Core's check). */
function mutatedTree(hashes: Buffer[]): boolean {
  let level = hashes;
  while (level.length > 1) {
    for (let i = 0; i + 1 < level.length; i += 2) if (level[i]!.equals(level[i + 1]!)) return true;
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(sha256d(Buffer.concat([level[i]!, level[i + 1] ?? level[i]!])));
    level = next;
  }
  return false;
}

/** Why `chain` is not a valid chain from genesis, or null. */
function invalidity(chain: BestChain): string | null {
  let prev: string | null = null;
  for (const entry of chain.blocks) {
    const raw = readChainBlock(entry, chain.xorKey);
    let block: Block;
    try {
      block = Block.fromBuffer(raw);
    } catch (err) {
      return `block at height ${entry.height} does not parse independently (${String(err)})`;
    }
    const hash = sha256d(raw.subarray(0, 80));
    const id = Buffer.from(hash).reverse().toString('hex');
    if (!hash.equals(entry.hash)) return `block at height ${entry.height} hashes to ${id}, not the chain's hash`;
    if (prev === null ? id !== regtest.genesisHash : Buffer.from(block.prevHash!).reverse().toString('hex') !== prev) {
      return `block ${id} at height ${entry.height} does not link to the block below it`;
    }
    if (!meetsTarget(hash, block.bits)) return `block ${id} fails its proof of work`;
    const txs = block.transactions ?? [];
    if (txs.length === 0 || !Buffer.from(Block.calculateMerkleRoot(txs)).equals(Buffer.from(block.merkleRoot!))) return `block ${id} has a wrong merkle root`;
    if (mutatedTree(txs.map((t) => Buffer.from(t.getHash())))) return `block ${id} has a mutated merkle tree`;
    prev = id;
  }
  return null;
}

/**
 * The tip an independent reader picks from the files (in name order): records
 * found by their magic, each copy checked with bitcoinjs-lib and the checks
 * above, the first valid copy of a hash kept, and the most-work branch from
 * genesis chosen, on equal work the tip whose hash was seen first.
 */
function referenceTip(files: Seed['files'], key: Buffer | null): string {
  const nodes = new Map<string, { prev: string; seen: number; work: bigint; valid: boolean }>();
  let seen = 0;
  for (const f of [...files].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const plain = xor(f.bytes, key);
    for (let pos = 0; pos + 8 <= plain.length;) {
      if (!plain.subarray(pos, pos + 4).equals(MAGIC)) {
        pos++;
        continue;
      }
      const size = plain.readUInt32LE(pos + 4);
      if (pos + 8 + size > plain.length) break;
      const raw = plain.subarray(pos + 8, pos + 8 + size);
      pos += 8 + size;
      if (raw.length < 81) continue;
      const hash = sha256d(raw.subarray(0, 80));
      const id = Buffer.from(hash).reverse().toString('hex');
      let valid = false;
      try {
        const block = Block.fromBuffer(raw);
        const txs = block.transactions ?? [];
        valid = block.byteLength() === raw.length && txs.length > 0 && meetsTarget(hash, block.bits)
          && Buffer.from(Block.calculateMerkleRoot(txs)).equals(Buffer.from(block.merkleRoot!))
          && !mutatedTree(txs.map((t) => Buffer.from(t.getHash())));
      } catch {
        valid = false;
      }
      const known = nodes.get(id);
      if (known === undefined) {
        const prev = Buffer.from(raw.subarray(4, 36)).reverse().toString('hex');
        nodes.set(id, { prev, seen: seen++, work: valid ? (1n << 256n) / (targetFromBits(raw.readUInt32LE(72)) + 1n) : 0n, valid });
      } else if (!known.valid && valid) {
        Object.assign(known, { valid, work: (1n << 256n) / (targetFromBits(raw.readUInt32LE(72)) + 1n) });
      }
    }
  }
  const total = new Map<string, bigint>();
  const workOf = (id: string): bigint => {
    const chain: string[] = [];
    let at: string | undefined = id;
    let base = -1n;
    while (at !== undefined) {
      const cached = total.get(at);
      if (cached !== undefined) {
        base = cached;
        break;
      }
      const n = nodes.get(at);
      if (n === undefined || !n.valid) break;
      chain.push(at);
      if (at === regtest.genesisHash) {
        base = 0n;
        break;
      }
      at = n.prev;
    }
    for (const c of chain.reverse()) total.set(c, (base = base < 0n ? -1n : base + nodes.get(c)!.work));
    return total.get(id) ?? -1n;
  };
  let best: string | null = null;
  for (const [id, n] of nodes) {
    const w = workOf(id);
    if (w < 0n) continue;
    const b = best === null ? -1n : workOf(best);
    if (w > b || (w === b && n.seen < nodes.get(best!)!.seen)) best = id;
  }
  return best ?? '';
}

/** Runs one fuzz case in `work` (a scratch directory); throws FuzzFailure on a wrong answer. */
export async function fuzzCase(base: Seed, seed: number, work: string, cleanCache: Map<string, string>): Promise<CaseResult> {
  const rand = prng(seed);
  const files = base.files.map((f) => ({ name: f.name, bytes: Buffer.from(f.bytes) }));
  const mutations = Array.from({ length: 1 + int(rand, 3) }, () => mutateOnce(files, rand));
  const dir = join(work, `case-${seed}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  try {
    if (base.key !== null) writeFileSync(join(dir, 'xor.dat'), base.key);
    for (const f of files) writeFileSync(join(dir, f.name), f.bytes);
    const engine = int(rand, 3) === 0 ? { fast: true } : {};
    let got: { json: string; chain: BestChain };
    try {
      got = await recountDir(dir, work, engine);
    } catch (err) {
      if (USER_ERRORS.some((E) => err instanceof E)) {
        if (err instanceof BlkFileError && /block does not parse/.test(err.message) && !unparseable(files, base.key, err)) {
          throw new FuzzFailure(seed, mutations, `said "${err.message}", but the record parses independently`);
        }
        return { seed, mutations, outcome: 'error', detail: (err as Error).message };
      }
      throw new FuzzFailure(seed, mutations, `unexpected ${err instanceof Error ? err.stack : String(err)}`);
    }
    const bad = invalidity(got.chain);
    if (bad !== null) throw new FuzzFailure(seed, mutations, `the chosen chain is not valid: ${bad}`);
    const tip = got.chain.blocks[got.chain.blocks.length - 1]!;
    const expected = referenceTip(files, base.key);
    const tipId = Buffer.from(tip.hash).reverse().toString('hex');
    if (tipId !== expected) throw new FuzzFailure(seed, mutations, `chose tip ${tipId} at height ${tip.height}; the independent reader chooses ${expected}`);
    const key = tip.hash.toString('hex');
    let clean = cleanCache.get(key);
    if (clean === undefined) {
      const cleanDir = join(work, `clean-${seed}`);
      mkdirSync(cleanDir, { recursive: true });
      const parts: Buffer[] = [];
      for (const entry of got.chain.blocks) {
        const raw = readChainBlock(entry, got.chain.xorKey);
        const head = Buffer.alloc(8);
        MAGIC.copy(head);
        head.writeUInt32LE(raw.length, 4);
        parts.push(head, raw);
      }
      writeFileSync(join(cleanDir, 'blk00000.dat'), Buffer.concat(parts));
      try {
        clean = (await recountDir(cleanDir, work, {})).json;
      } finally {
        rmSync(cleanDir, { recursive: true, force: true });
      }
      cleanCache.set(key, clean);
    }
    if (got.json !== clean) throw new FuzzFailure(seed, mutations, `the registry differs from the chosen chain's stored cleanly (tip ${key} at ${tip.height})`);
    return { seed, mutations, outcome: 'chain', detail: `height ${tip.height}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
