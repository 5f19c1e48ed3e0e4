import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchChain } from '../bench/chain.js';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { txidOf } from '../fixtures/generator/sign.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { BlockReader } from '../indexer/chain/blkfiles.js';
import { loadBestChain } from '../indexer/chain/chain.js';
import { OutputSweeps, StakeMatcher, sweepOutputs } from '../indexer/chain/stakesweep.js';
import { BlkFileError } from '../indexer/chain/blkread.js';
import { forEachTxid, TxWalker, txidPrint, visitBlock, type TxVisitor } from '../indexer/chain/scanner.js';
import { isUnspendable } from '../script/opcodes.js';
import { isAttempt } from '../script/carrier.js';
import { loadParamsFile } from '../script/params.js';
import { recountOf } from './helpers/chains.js';

const COIN = 100_000_000n;

let cache: string;
beforeAll(() => {
  cache = mkdtempSync(join(tmpdir(), 'nodereg-sweep-'));
});
afterAll(() => rmSync(cache, { recursive: true, force: true }));

/** Every input and output a walk shows, as text. */
function recorder(): { v: TxVisitor; seen: string[] } {
  const seen: string[] = [];
  return {
    seen,
    v: {
      input: (b, at, coinbase) => seen.push(`in ${b.toString('hex', at, at + 36)} ${coinbase}`),
      output: (b, vout, valueAt, s, e) => seen.push(`out ${vout} ${b.toString('hex', valueAt, valueAt + 8)} ${b.toString('hex', s, e)}`),
    },
  };
}

describe('the fast recount\'s sweep', () => {
  it('maps every block: where each transaction starts, the print of each input\'s spent txid, and the txids of the transactions paying a stake or carrying an attempt', async () => {
    const bench = benchChain(cache, 8000, undefined, 2);
    const chain = await loadBestChain(bench.blocksDir, loadParamsFile(bench.paramsFile));
    const stakes = new Set<string>();
    for (const e of chain.blocks) for (const s of e.stakes) stakes.add(s);
    expect(stakes.size).toBeGreaterThan(3);
    const matcher = new StakeMatcher(stakes);
    const reader = new BlockReader(chain.xorKey);
    const scratch = { buf: Buffer.alloc(0) };
    let marked = 0;
    let skipped = 0;
    try {
      for (const entry of chain.blocks.slice(1)) {
        const bytes = reader.read(entry);
        const sweep = sweepOutputs(bytes, matcher, scratch);
        const all: Buffer[] = [];
        forEachTxid(bytes, (txid) => all.push(Buffer.from(txid)));
        expect(sweep.txCount).toBe(all.length);
        expect(sweep.txAt).toHaveLength(all.length);
        expect(sweep.inAt).toHaveLength(all.length + 1);
        // Each transaction walked alone from its offset shows what the whole block's walk shows for it.
        const whole = recorder();
        const perTx: string[][] = [];
        let cur: string[] = [];
        visitBlock(bytes, {
          input: (b, at, cb) => { whole.v.input(b, at, cb); cur.push(whole.seen.at(-1)!); },
          output: (b, vout, valueAt, s, e) => { whole.v.output(b, vout, valueAt, s, e); cur.push(whole.seen.at(-1)!); },
          txEnd: () => { perTx.push(cur); cur = []; },
        });
        const walker = new TxWalker(bytes);
        const want: number[] = [];
        for (let i = 0; i < sweep.txCount; i++) {
          const one = recorder();
          walker.visit(sweep.txAt[i]!, i, one.v);
          expect(one.seen).toEqual(perTx[i]);
          const inputs = one.seen.filter((l) => l.startsWith('in '));
          expect(sweep.inAt[i + 1]! - sweep.inAt[i]!).toBe(inputs.length);
          inputs.forEach((l, k) => expect(sweep.prints[sweep.inAt[i]! + k]).toBe(txidPrint(Buffer.from(l.slice(3, 67), 'hex'), 0)));
          let pays = false;
          walker.visit(sweep.txAt[i]!, i, {
            input() {},
            output(b, _vout, _valueAt, s, e) {
              if (isUnspendable(b, s, e) ? isAttempt(b.subarray(s, e)) : stakes.has(b.toString('latin1', s, e))) pays = true;
            },
          });
          if (pays) want.push(i);
        }
        expect(sweep.marked).toEqual(want);
        sweep.marked.forEach((i, k) => expect(sweep.txids.subarray(k * 32, k * 32 + 32)).toEqual(all[i]));
        marked += want.length;
        skipped += sweep.txCount - want.length;
      }
    } finally {
      reader.close();
    }
    // The chain has both kinds, or the check above proves little.
    expect(marked).toBeGreaterThan(10);
    expect(skipped).toBeGreaterThan(marked);
  });

  it('matches exactly the stake scripts: not another script of the same length and last bytes, and short ones by their bytes alone', () => {
    const p2wpkh = Buffer.concat([Buffer.from('0014', 'hex'), Buffer.alloc(20, 7)]);
    const matcher = new StakeMatcher([p2wpkh.toString('latin1'), '\x51\x52']);
    const has = (b: Buffer): boolean => matcher.has(Buffer.concat([Buffer.from('ffff', 'hex'), b, Buffer.from('ee', 'hex')]), 2, 2 + b.length);
    expect(has(p2wpkh)).toBe(true);
    const twin = Buffer.from(p2wpkh);
    twin[5] = 8; // same length, same last bytes
    expect(has(twin)).toBe(false);
    expect(has(p2wpkh.subarray(1))).toBe(false);
    expect(has(Buffer.from('5152', 'hex'))).toBe(true);
    expect(has(Buffer.from('5153', 'hex'))).toBe(false);
    expect(has(Buffer.alloc(0))).toBe(false);
  });

  it('a block that can no longer be read (its file cut short since the chain pass) is a BlkFileError, not a worker\'s plain error', async () => {
    const bench = benchChain(cache, 8000, undefined, 2);
    const chain = await loadBestChain(bench.blocksDir, loadParamsFile(bench.paramsFile));
    const last = chain.blocks.at(-1)!;
    const end = statSync(last.file).size;
    const sweeps = new OutputSweeps([{ ...last, height: 7, offset: end - 10, size: 100 }], chain.xorKey, [], 1);
    try {
      const got = await sweeps.block(7).then(() => null, (err: unknown) => err);
      expect(got).toBeInstanceOf(BlkFileError);
      expect((got as BlkFileError).message).toBe(`${last.file} at offset ${end - 10}: file ends after 10 of 100 block bytes; was it changed since the chain was loaded?`);
    } finally {
      await sweeps.close();
    }
  });

  it('--fast sees a stake spent by transactions that neither pay a stake nor carry an attempt, in a later block and in the block that made the coin', async () => {
    const c = new ChainBuilder({ seed: 'sparse-connect' });
    const w = c.wallet;
    const ann = c.account('ann', 'p2pkh');
    const ben = c.account('ben', 'p2wpkh');
    const sink = c.account('sink', 'p2pkh');
    c.mineEmpty(101);
    w.pay(c.miner, [payTo(ann, 45n * COIN), payTo(ben, 45n * COIN)]);
    c.mine();
    w.pay(ann, [carrier(newNode(ann, c.nextTime()))]);
    w.pay(ben, [carrier(newNode(ben, c.nextTime()))]);
    c.mine();
    // All of ann's stake goes to sink, change included: a lapse that only the spend shows.
    w.pay(ann, [payTo(sink, 10n * COIN)], { change: sink });
    c.mine();
    // A coin paying ben, and in the same block a transaction moving it on to sink.
    const gift = w.pay(c.miner, [payTo(ben, COIN)]);
    w.spend([w.coin(txidOf(gift), 0)!], [payTo(sink, COIN - 1000n)], { change: sink });
    c.mine();
    c.mineEmpty(2);

    const full = await recountOf(c);
    const nodes = (full as { nodes: Array<{ status: string; balance: string }> }).nodes;
    expect(nodes.map((n) => n.status)).toEqual(['lapsed', 'active']);
    expect(nodes[1]!.balance).toBe(String(45n * COIN - 1000n));
    expect(await recountOf(c, ['--fast'])).toEqual(full);
    expect(await recountOf(c, ['--fast', '--threads', '1'])).toEqual(full);
  });
});
