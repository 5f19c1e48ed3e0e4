/**
 * Mutated blocks (CVE-2012-2459, docs/spec.md §2.8): a block whose body
 * repeats its last transaction keeps its header and merkle root, but Core
 * reports the tree as mutated. Such a copy is invalid like a wrong merkle
 * root: alone, it is dropped with its descendants; beside an intact copy of
 * the same block, stored before or after it, the intact copy counts. Every
 * recount engine, and the CLI in full, --fast and --db modes, must give the
 * registry that an independent replay of the right chain gives.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Block } from 'bitcoinjs-lib';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { storageOrder, writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder, type MinedBlock } from '../fixtures/generator/chain.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { exportAt, type ExportJson } from '../indexer/read/queries.js';
import { recount, type RecountOptions } from '../indexer/engine/recount.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { nodereg } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';
import { replayRegistry } from './helpers/replay.js';

const regtest = BUILTIN_NETWORKS.regtest!;
const COIN = 100_000_000n;

let tmp: string;
let dirs = 0;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'nodereg-mutated-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The same block with its last transaction repeated: same header, same merkle root, one transaction more. */
function mutate(raw: Uint8Array): Buffer {
  const block = Block.fromBuffer(Buffer.from(raw));
  const txs = block.transactions!;
  expect(txs.length % 2).toBe(1);
  block.transactions = [...txs, txs[txs.length - 1]!];
  const out = Buffer.from(block.toBuffer());
  expect(out.subarray(0, 80).equals(Buffer.from(raw).subarray(0, 80))).toBe(true);
  // The root still matches: only the mutation check can tell the copies apart.
  const again = Block.fromBuffer(out);
  expect(Buffer.from(Block.calculateMerkleRoot(again.transactions!)).equals(Buffer.from(again.merkleRoot!))).toBe(true);
  expect(again.transactions!.some((t) => t.hasWitnesses())).toBe(false);
  expect(out.length).toBeGreaterThan(raw.length);
  return out;
}

/**
 * amy registers with 50 coins; block M then pays bob, and amy 1 coin as its
 * last transaction, so a body that repeats it pays amy twice; two blocks
 * follow M. A one-block branch from M's parent has less work.
 */
const c = new ChainBuilder({ seed: 'mutated-blocks', sign: 'dummy' });
c.mineEmpty(101);
const amy = c.account('amy', 'p2wpkh');
const bob = c.account('bob', 'p2tr');
c.wallet.pay(c.miner, [payTo(amy, 50n * COIN)]);
c.mine();
c.wallet.pay(amy, [carrier(newNode(amy, c.nextTime()))]);
c.mine();
const parent = c.tip;
c.wallet.pay(c.miner, [payTo(bob, COIN)]);
c.wallet.pay(c.miner, [payTo(amy, COIN)]);
const m = c.mine();
c.wallet.pay(bob, [carrier(newNode(bob, c.nextTime()))]);
c.mine();
c.mineEmpty(1);
const side = c.fork(parent.height);
const sideTip = side.mine([]);
const stored = storageOrder(c);
const atM = stored.indexOf(m.raw);
const mutated = mutate(m.raw);

const CASES: Array<{ name: string; blocks: Uint8Array[]; chain: MinedBlock[]; warned: boolean }> = [
  {
    name: 'the mutated copy alone',
    blocks: stored.map((b) => (b === m.raw ? mutated : b)),
    chain: [...c.bestChain().slice(0, parent.height + 1), sideTip],
    warned: true,
  },
  {
    name: 'the mutated copy stored before the intact one',
    blocks: [...stored.slice(0, atM), mutated, ...stored.slice(atM + 1), m.raw],
    chain: c.bestChain(),
    warned: false,
  },
  {
    name: 'the mutated copy stored after the intact one',
    blocks: [...stored, mutated],
    chain: c.bestChain(),
    warned: false,
  },
];

/** Writes the blocks as an obfuscated blocks directory of small files, so copies land in different files. */
function blocksDirOf(blocks: readonly Uint8Array[]): string {
  const dir = join(tmp, `${dirs++}`, 'blocks');
  mkdirSync(join(dir, '..'));
  writeBlocksDir(dir, blocks, { magic: regtest.magic, xorKey: Buffer.from('5a17c0de00ff1234', 'hex'), maxFileSize: 8192, zeroTail: 1024 });
  return dir;
}

type Engine = Omit<RecountOptions, 'blocksDir' | 'params' | 'db'>;
const ENGINES: Record<string, Engine> = {
  'database (--db)': {},
  'database, temporary, --fast': { throwaway: true, fast: true, memoryBytes: 0 },
  'memory (full)': { throwaway: true },
  'memory, --fast': { throwaway: true, fast: true },
  'memory, --fast, no kept txids (swept)': { throwaway: true, fast: true, keepTxidBytes: 0 },
  'memory, no kept txids': { throwaway: true, keepTxidBytes: 0 },
};

async function exportOf(blocksDir: string, engine: Engine): Promise<{ json: ExportJson; warnings: string[] }> {
  const idx = await tempIndex(regtest);
  const warnings: string[] = [];
  try {
    const result = await recount({ blocksDir, params: regtest, db: idx.db, onWarning: (w) => warnings.push(w), ...engine });
    return { json: JSON.parse(JSON.stringify(await exportAt(idx.db, regtest, result.height))) as ExportJson, warnings };
  } finally {
    await idx.close();
  }
}

/** What the independent replay says about the registry: status, balance and rejections. */
function referenceOf(chain: MinedBlock[]): { tip: string; height: number; nodes: string[]; rejected: string[] } {
  const r = replayRegistry(chain);
  const nodes = [...r.balances].map(([s, balance]) => {
    const ended = r.ended[s];
    const status = r.live.includes(s) ? 'active' : ended!.split('@')[0]!;
    return `${s} ${status} ${balance}`;
  });
  const rejected = [...r.outcomes].filter(([, o]) => o !== 'accepted').map(([k, o]) => `${k} ${o}`);
  return { tip: chain[chain.length - 1]!.hash, height: chain.length - 1, nodes: nodes.sort(), rejected: rejected.sort() };
}

function viewOf(json: ExportJson): ReturnType<typeof referenceOf> {
  return {
    tip: json.tip,
    height: json.height,
    nodes: json.nodes.map((n) => `${n.stakeScript} ${n.status} ${n.balance}`).sort(),
    rejected: json.rejected.map((r) => `${r.txid}:${r.vout} ${r.reason}`).sort(),
  };
}

const dropped = new RegExp(`^block ${m.hash} in .*blk\\d+\\.dat at offset \\d+ has a mutated merkle tree \\(repeated transactions, CVE-2012-2459\\): dropped with its 2 descendant\\(s\\)$`);

test('the scenario means something: the replays of the two chains differ in amy\'s balance and the tip', () => {
  const [alone, before] = CASES.map((k) => referenceOf(k.chain));
  expect(alone!.tip).toBe(sideTip.hash);
  expect(before!.tip).toBe(c.tip.hash);
  expect(before!.nodes).toContain(`${Buffer.from(amy.script).toString('hex')} active ${replayRegistry(c.bestChain()).balances.get(Buffer.from(amy.script).toString('hex'))}`);
  expect(alone!.nodes).not.toEqual(before!.nodes);
});

describe.each(CASES)('$name', ({ blocks, chain, warned }) => {
  let dir: string;
  let clean: ExportJson;
  beforeAll(async () => {
    dir = blocksDirOf(blocks);
    clean = (await exportOf(blocksDirOf([c.genesis.raw, ...chain.slice(1).map((b) => b.raw)]), {})).json;
  });

  it('every engine gives the registry of the independent replay, and the same export as the chain stored cleanly', async () => {
    const reference = referenceOf(chain);
    expect(viewOf(clean)).toEqual(reference);
    for (const [name, engine] of Object.entries(ENGINES)) {
      const { json, warnings } = await exportOf(dir, engine);
      expect({ engine: name, json }).toEqual({ engine: name, json: clean });
      expect({ engine: name, warnings }).toEqual({ engine: name, warnings: warned ? [expect.stringMatching(dropped)] : [] });
    }
  });

  it.each([[[]], [['--fast']], [['--db', '<db>']]])('the CLI with %j prints that registry, exit 0', (flags) => {
    const args = flags.map((f) => (f === '<db>' ? join(tmp, `${dirs++}-db`) : f));
    const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', dir, '--json', ...args]);
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(clean);
    const lines = res.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toEqual(warned ? [expect.stringMatching(new RegExp(`^warning: ${dropped.source.slice(1)}`))] : []);
  });
});
