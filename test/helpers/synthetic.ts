/**
 * Synthetic blocks for state-engine tests: already-scanned blocks (no proof
 * of work, random txids) built from a seeded PRNG, so properties can explore
 * thousands of chains quickly. Real serialized chains come from
 * fixtures/generator; these are serialized (`rawChainOf`) to feed
 * connectBlock/disconnectTip.
 */
import { createHash } from 'node:crypto';
import { prng } from '../../fixtures/generator/random.js';
import { rawOf, type RawSynthBlock } from '../../fixtures/generator/scanned.js';
import { encodeCarrier, type Announcement } from '../../script/carrier.js';
import { BUILTIN_NETWORKS, type NetworkParams } from '../../script/params.js';
import type { ScannedBlock, ScannedTx } from '../../indexer/chain/scanner.js';

export { rawOf, type RawSynthBlock };

export const TEST_PARAMS: NetworkParams = {
  ...BUILTIN_NETWORKS.regtest!,
  name: 'synthetic',
  minStake: 1000n,
  expiryBlocks: 6,
};

/** A P2WPKH-shaped stake script number i. */
export function stakeScript(i: number): Buffer {
  const h = createHash('sha256').update(`stake${i}`).digest().subarray(0, 20);
  return Buffer.concat([Buffer.of(0x00, 0x14), h]);
}

interface Utxo { txid: Buffer; vout: number; value: bigint; script: Buffer }

export interface SynthBlock { block: ScannedBlock; utxos: Utxo[]; tips: Map<string, { txid: Buffer; ts: number }> }

const GENESIS_TIME = 1_700_000_000;

export function genesis(params: NetworkParams = TEST_PARAMS): SynthBlock {
  const hash = Buffer.from(params.genesisHash, 'hex').reverse();
  const block: ScannedBlock = {
    hash, header: Buffer.alloc(80), prevHash: Buffer.alloc(32), merkleRoot: Buffer.alloc(32), time: GENESIS_TIME, bits: 0x207fffff,
    txs: [{ index: 0, txid: Buffer.alloc(32, 1), coinbase: true, inputs: [{ prevTxid: Buffer.alloc(32), prevVout: 0xffffffff }], outputs: [{ value: 5000n, script: stakeScript(0) }] }],
  };
  return { block, utxos: [], tips: new Map() };
}

/**
 * The next block after `parent`: a coinbase paying a random stake script,
 * then a few transactions spending random coins to random scripts, some
 * carrying announcements (valid or not), some draining stakes.
 */
export function nextBlock(parent: SynthBlock, rand: () => number, nScripts = 6): SynthBlock {
  const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const utxos = [...parent.utxos];
  const tips = new Map(parent.tips);
  const time = parent.block.time + 600;
  const txid = (): Buffer => createHash('sha256').update(Buffer.from(rand().toString() + rand().toString())).digest();
  const txs: ScannedTx[] = [];
  const cbTxid = txid();
  const cbScript = stakeScript(Math.floor(rand() * nScripts));
  const cbValue = BigInt(500 + Math.floor(rand() * 2000));
  const cbOuts = [{ value: cbValue, script: cbScript }];
  if (rand() < 0.1) {
    cbOuts.push({ value: 0n, script: encodeCarrier({ kind: 'newnode', stakeScript: cbScript, timestamp: time }) });
  }
  txs.push({ index: 0, txid: cbTxid, coinbase: true, inputs: [{ prevTxid: Buffer.alloc(32), prevVout: 0xffffffff }], outputs: cbOuts });
  const created: Utxo[] = [{ txid: cbTxid, vout: 0, value: cbValue, script: cbScript }];
  const nTx = Math.floor(rand() * 5);
  for (let i = 1; i <= nTx && utxos.length > 0; i++) {
    const nIn = 1 + Math.floor(rand() * Math.min(3, utxos.length));
    const ins: Utxo[] = [];
    for (let k = 0; k < nIn && utxos.length > 0; k++) ins.push(utxos.splice(Math.floor(rand() * utxos.length), 1)[0]!);
    const total = ins.reduce((s, u) => s + u.value, 0n);
    const id = txid();
    const outs: Array<{ value: bigint; script: Buffer }> = [];
    const nOut = 1 + Math.floor(rand() * 3);
    let left = total;
    for (let k = 0; k < nOut; k++) {
      const v = k === nOut - 1 ? left : left / 2n;
      left -= v;
      outs.push({ value: v, script: rand() < 0.7 ? stakeScript(Math.floor(rand() * nScripts)) : ins[0]!.script });
    }
    const owner = ins[0]!.script;
    const r = rand();
    let ann: Announcement | null = null;
    const known = tips.get(owner.toString('hex'));
    if (r < 0.25) ann = { kind: 'newnode', stakeScript: owner, timestamp: time - Math.floor(rand() * 100) };
    else if (r < 0.45 && known) ann = { kind: 'renewal', stakeScript: owner, timestamp: known.ts + 1 + Math.floor(rand() * 10), prevTxid: rand() < 0.85 ? known.txid : txid() };
    else if (r < 0.5) ann = { kind: 'renewal', stakeScript: owner, timestamp: time, prevTxid: txid() };
    if (ann) {
      outs.push({ value: 0n, script: encodeCarrier(ann) });
      if (rand() < 0.08) outs.push({ value: 0n, script: encodeCarrier(ann) });
      if (rand() < 0.5) tips.set(owner.toString('hex'), { txid: id, ts: ann.timestamp });
    }
    if (rand() < 0.05) outs.push({ value: 0n, script: Buffer.from('6a044e52454701ff', 'hex') });
    txs.push({ index: i, txid: id, coinbase: false, inputs: ins.map((u) => ({ prevTxid: u.txid, prevVout: u.vout })), outputs: outs });
    outs.forEach((o, vout) => {
      if (o.script[0] !== 0x6a) created.push({ txid: id, vout, value: o.value, script: o.script });
    });
  }
  const hash = createHash('sha256').update(Buffer.concat([parent.block.hash, cbTxid])).digest();
  const block: ScannedBlock = { hash, header: Buffer.alloc(80), prevHash: parent.block.hash, merkleRoot: Buffer.alloc(32), time, bits: 0x207fffff, txs };
  return { block, utxos: [...utxos, ...created], tips };
}

/** A chain of `n` blocks after genesis. */
export function chainOf(n: number, seed: number, from: SynthBlock = genesis()): SynthBlock[] {
  const rand = prng(seed);
  const out = [from];
  for (let i = 0; i < n; i++) out.push(nextBlock(out[out.length - 1]!, rand));
  return out;
}

/** The chain's blocks serialized one on the other, and params whose genesis is the first of them. */
export function rawChainOf(blocks: SynthBlock[], params: NetworkParams = TEST_PARAMS): { raw: RawSynthBlock[]; params: NetworkParams } {
  const raw: RawSynthBlock[] = [];
  for (const b of blocks) raw.push(rawOf(b.block, raw.at(-1)?.hash ?? Buffer.alloc(32)));
  return { raw, params: { ...params, genesisHash: Buffer.from(raw[0]!.hash).reverse().toString('hex') } };
}
