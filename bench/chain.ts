/**
 * A deterministic benchmark chain: about `txs` transactions on the regtest
 * genesis, written as a bitcoind blocks directory. Signatures are dummies
 * (the indexer does not verify scripts), but proof of work, merkle roots and
 * txids are real, so the recount does all of its real work. Built by hand
 * from bytes because the fixture generator's real signing is ~50x slower.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { encodeCarrier } from '../script/carrier.js';
import { encodePush } from '../script/opcodes.js';
import { encodePositiveScriptNum } from '../script/scriptnum.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { REGTEST_GENESIS_HEX } from '../fixtures/generator/block.js';
import { prng } from '../fixtures/generator/random.js';

export const BENCH_VERSION = 1;
const MAGIC = Buffer.from('fabfb5da', 'hex');
const BITS = 0x207fffff;
const FILE_LIMIT = 128 * 1024 * 1024;
const STAKES = 3000;
const PAYEES = 50_000;
const MIN_STAKE = 1_000_000n;

export interface BenchChain {
  dir: string;
  blocksDir: string;
  paramsFile: string;
  txs: number;
  blocks: number;
  announcements: number;
}

const sha256d = (b: Uint8Array): Buffer => createHash('sha256').update(createHash('sha256').update(b).digest()).digest();

function p2wpkh(tag: string, i: number): Buffer {
  return Buffer.concat([Buffer.of(0x00, 0x14), createHash('sha256').update(`${tag}${i}`).digest().subarray(0, 20)]);
}

interface Coin { txid: Buffer; vout: number; value: bigint; script: number }
interface Out { value: bigint; script: Buffer }

const DUMMY_SIG = Buffer.alloc(72, 0x30);
const DUMMY_KEY = Buffer.alloc(33, 0x02);

function varint(n: number): Buffer {
  if (n < 0xfd) return Buffer.of(n);
  const b = Buffer.alloc(3);
  b[0] = 0xfd;
  b.writeUInt16LE(n, 1);
  return b;
}

/** Serializes a segwit transaction (every input a P2WPKH spend); returns bytes and txid. */
function tx(inputs: Coin[], outputs: Out[]): { raw: Buffer; txid: Buffer } {
  const ins: Buffer[] = [varint(inputs.length)];
  for (const c of inputs) {
    const b = Buffer.alloc(41);
    c.txid.copy(b, 0);
    b.writeUInt32LE(c.vout, 32);
    b[36] = 0;
    b.writeUInt32LE(0xffffffff, 37);
    ins.push(b);
  }
  const outs: Buffer[] = [varint(outputs.length)];
  for (const o of outputs) {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(o.value);
    outs.push(v, varint(o.script.length), o.script);
  }
  const version = Buffer.of(2, 0, 0, 0);
  const lock = Buffer.alloc(4);
  const body = Buffer.concat([...ins, ...outs]);
  const txid = sha256d(Buffer.concat([version, body, lock]));
  const wit: Buffer[] = [];
  for (let i = 0; i < inputs.length; i++) wit.push(Buffer.of(2, 72), DUMMY_SIG, Buffer.of(33), DUMMY_KEY);
  return { raw: Buffer.concat([version, Buffer.of(0, 1), body, ...wit, lock]), txid };
}

function coinbase(height: number, outputs: Out[]): { raw: Buffer; txid: Buffer } {
  const sig = Buffer.concat([encodePush(encodePositiveScriptNum(height)), Buffer.from('bench')]);
  const outs: Buffer[] = [varint(outputs.length)];
  for (const o of outputs) {
    const v = Buffer.alloc(8);
    v.writeBigUInt64LE(o.value);
    outs.push(v, varint(o.script.length), o.script);
  }
  const raw = Buffer.concat([
    Buffer.of(1, 0, 0, 0, 1), Buffer.alloc(32), Buffer.from('ffffffff', 'hex'), varint(sig.length), sig,
    Buffer.from('ffffffff', 'hex'), ...outs, Buffer.alloc(4),
  ]);
  return { raw, txid: sha256d(raw) };
}

function merkle(ids: Buffer[]): Buffer {
  let level = ids;
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(sha256d(Buffer.concat([level[i]!, level[i + 1] ?? level[i]!])));
    level = next;
  }
  return level[0]!;
}

function header(prev: Buffer, root: Buffer, time: number): Buffer {
  const h = Buffer.alloc(80);
  h.writeUInt32LE(0x20000000, 0);
  prev.copy(h, 4);
  root.copy(h, 36);
  h.writeUInt32LE(time, 68);
  h.writeUInt32LE(BITS, 72);
  for (let nonce = 0; ; nonce++) {
    h.writeUInt32LE(nonce, 76);
    // Regtest's target accepts any hash whose top bit (last byte, internal order) is clear.
    if ((sha256d(h)[31]! & 0x80) === 0) return h;
  }
}

/**
 * Builds (or reuses from `cacheRoot`) a chain of about `targetTxs`
 * transactions: payments, fan-in and fan-out, `STAKES` stake scripts
 * funded, announced, renewed, and some drained so they lapse.
 */
export function benchChain(cacheRoot: string, targetTxs: number, log: (m: string) => void = () => undefined, seed = 42): BenchChain {
  const dir = join(cacheRoot, `chain-${targetTxs}-s${seed}-v${BENCH_VERSION}`);
  const metaFile = join(dir, 'chain.json');
  if (existsSync(metaFile)) return JSON.parse(readFileSync(metaFile, 'utf8')) as BenchChain;
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(join(tmp, 'blocks'), { recursive: true });
  const rand = prng(seed);
  const pick = (n: number): number => Math.floor(rand() * n);
  const payees = Array.from({ length: PAYEES }, (_, i) => p2wpkh('payee', i));
  const stakes = Array.from({ length: STAKES }, (_, i) => p2wpkh('stake', i));
  const pool: Coin[] = [];
  const stakeCoins = new Map<number, Coin>();
  const tips = new Map<number, { txid: Buffer; ts: number }>();
  let fileNo = 0;
  let fd = openSync(join(tmp, 'blocks', 'blk00000.dat'), 'w');
  let fileSize = 0;
  const writeBlock = (raw: Buffer): void => {
    if (fileSize + raw.length + 8 > FILE_LIMIT) {
      closeSync(fd);
      fd = openSync(join(tmp, 'blocks', `blk${String(++fileNo).padStart(5, '0')}.dat`), 'w');
      fileSize = 0;
    }
    const head = Buffer.alloc(8);
    MAGIC.copy(head, 0);
    head.writeUInt32LE(raw.length, 4);
    writeSync(fd, head);
    writeSync(fd, raw);
    fileSize += raw.length + 8;
  };
  const genesis = Buffer.from(REGTEST_GENESIS_HEX, 'hex');
  writeBlock(genesis);
  let prev = sha256d(genesis.subarray(0, 80));
  const perBlock = 2000;
  let txCount = 1;
  let announcements = 0;
  let h = 0;
  while (txCount < targetTxs) {
    h++;
    const time = 1_700_000_000 + 600 * h;
    const txs: Array<{ raw: Buffer; txid: Buffer }> = [];
    const add = (t: { raw: Buffer; txid: Buffer }, outs: readonly Out[], scriptIds: number[]): void => {
      txs.push(t);
      outs.forEach((o, vout) => {
        if (scriptIds[vout]! >= 0) pool.push({ txid: t.txid, vout, value: o.value, script: scriptIds[vout]! });
        else if (scriptIds[vout]! <= -2) stakeCoins.set(-scriptIds[vout]! - 2, { txid: t.txid, vout, value: o.value, script: -1 });
      });
    };
    // The coinbase pays a payee and funds up to 20 unfunded stakes.
    const cbOuts: Out[] = [{ value: 5_000_000_000n, script: payees[pick(PAYEES)]! }];
    const cbIds: number[] = [0];
    for (let k = 0; k < 20; k++) {
      const s = pick(STAKES);
      if (stakeCoins.has(s) || cbIds.includes(-2 - s)) continue;
      cbOuts.push({ value: MIN_STAKE * 2n, script: stakes[s]! });
      cbIds.push(-2 - s);
    }
    add(coinbase(h, cbOuts), cbOuts, cbIds);
    const take = (): Coin => {
      const i = pick(pool.length);
      const c = pool[i]!;
      pool[i] = pool[pool.length - 1]!;
      pool.pop();
      return c;
    };
    const want = Math.min(perBlock, targetTxs - txCount);
    while (txs.length < want && pool.length > 5) {
      const r = rand();
      const stakeNo = pick(STAKES);
      const stakeCoin = stakeCoins.get(stakeNo);
      if (r < 0.01 && stakeCoin) {
        // An announcement: the stake spends its own coin back to itself and carries the carrier.
        stakeCoins.delete(stakeNo);
        const tip = tips.get(stakeNo);
        const live = tip !== undefined && rand() < 0.8;
        const carrier = live
          ? encodeCarrier({ kind: 'renewal', stakeScript: stakes[stakeNo]!, timestamp: Math.max(time, tip.ts + 1), prevTxid: tip.txid })
          : encodeCarrier({ kind: 'newnode', stakeScript: stakes[stakeNo]!, timestamp: time });
        const outs = [{ value: stakeCoin.value - 1000n, script: stakes[stakeNo]! }, { value: 0n, script: carrier }];
        const t = tx([{ ...stakeCoin }], outs);
        add(t, outs, [-2 - stakeNo, -1]);
        tips.set(stakeNo, { txid: t.txid, ts: live ? Math.max(time, tip.ts + 1) : time });
        announcements++;
      } else if (r < 0.0115 && stakeCoin) {
        // Drain a stake: its registration lapses at the end of the block.
        stakeCoins.delete(stakeNo);
        tips.delete(stakeNo);
        const outs = [{ value: stakeCoin.value - 1000n, script: payees[pick(PAYEES)]! }];
        add(tx([stakeCoin], outs), outs, [pick(PAYEES)]);
      } else if (r < 0.15) {
        const ins = [take(), take(), take(), take()];
        const total = ins.reduce((s, c) => s + c.value, 0n);
        const outs = [{ value: total - 1000n, script: payees[pick(PAYEES)]! }];
        add(tx(ins, outs), outs, [pick(PAYEES)]);
      } else if (r < 0.25 && pool[pool.length - 1]!.value > 100_000n) {
        const c = pool.pop()!;
        const n = 8;
        const each = (c.value - 1000n) / BigInt(n);
        const ids = Array.from({ length: n }, () => pick(PAYEES));
        const outs = ids.map((i) => ({ value: each, script: payees[i]! }));
        add(tx([c], outs), outs, ids);
      } else {
        const c = take();
        const half = c.value / 2n;
        const ids = [pick(PAYEES), pick(PAYEES)];
        const outs = half > 2000n
          ? [{ value: half, script: payees[ids[0]!]! }, { value: c.value - half - 500n, script: payees[ids[1]!]! }]
          : [{ value: c.value, script: payees[ids[0]!]! }];
        add(tx([c], outs), outs, ids.slice(0, outs.length));
      }
    }
    const root = merkle(txs.map((t) => t.txid));
    const hdr = header(prev, root, time);
    prev = sha256d(hdr);
    writeBlock(Buffer.concat([hdr, varint(txs.length), ...txs.map((t) => t.raw)]));
    txCount += txs.length;
    if (h % 50 === 0) log(`  generated ${h} blocks, ${txCount}/${targetTxs} txs`);
  }
  closeSync(fd);
  const params = { ...BUILTIN_NETWORKS.regtest!, name: 'bench', minStake: MIN_STAKE.toString() };
  writeFileSync(join(tmp, 'params.json'), JSON.stringify(params, null, 1));
  const chain: BenchChain = {
    dir, blocksDir: join(dir, 'blocks'), paramsFile: join(dir, 'params.json'), txs: txCount, blocks: h + 1, announcements,
  };
  writeFileSync(join(tmp, 'chain.json'), JSON.stringify(chain, null, 1));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return chain;
}
