import fc from 'fast-check';
import { MuHash3072 } from '../script/muhash.js';
import { SetHasher } from '../indexer/engine/sethash.js';
import { MAX_SCRIPT_SIZE, utxoElement } from '../indexer/engine/utxohash.js';
import type { Coin } from '../indexer/types.js';

/*
 * The whole-set hash (sethash.ts) writes each coin's MuHash element into a
 * batch itself, compactSize included; it must hash exactly the elements
 * utxoElement (the per-coin path of a kept index) builds, and leave out the
 * same coins.
 */

interface TestCoin {
  txid: Buffer;
  vout: number;
  coin: Coin;
}

const coinArb = (scriptLength: fc.Arbitrary<number>): fc.Arbitrary<TestCoin> =>
  fc.record({
    txid: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
    vout: fc.nat({ max: 0xffffffff }),
    height: fc.nat({ max: 0x7fffffff }),
    coinbase: fc.boolean(),
    value: fc.bigInt({ min: 0n, max: 21_000_000n * 100_000_000n }),
    script: scriptLength.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
  }).map(({ txid, vout, height, coinbase, value, script }) => ({
    txid, vout, coin: { height, coinbase, value, script: Buffer.from(script) },
  }));

/** Script lengths on every compactSize edge a kept coin can have, and past the cut-off. */
const EDGES = [0, 1, 0xfc, 0xfd, 0xfe, 0xff, 0x100, 0x1234, MAX_SCRIPT_SIZE - 1, MAX_SCRIPT_SIZE, MAX_SCRIPT_SIZE + 1, 0x10000];
const scriptLength = fc.oneof(fc.constantFrom(...EDGES), fc.nat({ max: 600 }));

async function setHash(coins: TestCoin[], readyEvery: number): Promise<Buffer> {
  const hasher = new SetHasher();
  let n = 0;
  for (const { txid, vout, coin } of coins) {
    hasher.put(txid, vout, coin.height * 2 + (coin.coinbase ? 1 : 0), Number(coin.value & 0xffffffffn), Number(coin.value >> 32n), coin.script);
    if (++n % readyEvery === 0) await hasher.ready();
  }
  return (await hasher.finish()).serialize();
}

function reference(coins: TestCoin[]): Buffer {
  const m = new MuHash3072();
  for (const { txid, vout, coin } of coins) {
    const e = utxoElement(txid, vout, coin);
    if (e !== null) m.insert(e);
  }
  return m.serialize();
}

describe('SetHasher', () => {
  it('hashes every coin as utxoElement serializes it, across compactSize edges and the script cut-off', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(coinArb(scriptLength), { maxLength: 24 }), fc.integer({ min: 1, max: 5 }), async (coins, readyEvery) => {
        expect((await setHash(coins, readyEvery)).toString('hex')).toBe(reference(coins).toString('hex'));
      }),
      { numRuns: 40 },
    );
  });

  it('leaves out a script over MAX_SCRIPT_SIZE and keeps one of exactly that size', async () => {
    const base = { txid: Buffer.alloc(32, 7), vout: 1 };
    const kept = { ...base, coin: { height: 5, coinbase: false, value: 1n, script: Buffer.alloc(MAX_SCRIPT_SIZE, 1) } };
    const dropped = { ...base, coin: { ...kept.coin, script: Buffer.alloc(MAX_SCRIPT_SIZE + 1, 1) } };
    const empty = new MuHash3072().serialize().toString('hex');
    expect((await setHash([dropped], 1)).toString('hex')).toBe(empty);
    expect((await setHash([kept], 1)).toString('hex')).not.toBe(empty);
    expect((await setHash([kept, dropped], 1)).toString('hex')).toBe(reference([kept]).toString('hex'));
  });

  it('grows a batch past its initial size for many large scripts before it is sent', async () => {
    // 200 coins of 10 000-byte scripts are about 2 MB, twice the first batch buffer; ready() is never called.
    const coins = Array.from({ length: 200 }, (_, i) => ({
      txid: Buffer.alloc(32, i), vout: i, coin: { height: i, coinbase: i % 2 === 0, value: BigInt(i) * 1000n, script: Buffer.alloc(MAX_SCRIPT_SIZE, i) },
    }));
    expect((await setHash(coins, Number.MAX_SAFE_INTEGER)).toString('hex')).toBe(reference(coins).toString('hex'));
  });
});
