import { demo } from '../fixtures/generator/scenarios.js';
import type { MinedBlock } from '../fixtures/generator/chain.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';

// A real full node is the judge of the generator: if bcoin refuses a block,
// the generator is wrong (witness commitment, BIP34, fees, maturity, MTP...).
const chain = demo();
const main = chain.bestChain();
const stale = chain.staleBlocks();
let node: BcoinNode | undefined;

beforeAll(async () => {
  node = await startBcoin();
}, 40_000);

afterAll(async () => {
  await node?.stop();
});

const submit = (b: MinedBlock): Promise<string | null> =>
  node!.rpc<string | null>('submitblock', [Buffer.from(b.raw).toString('hex')]);

test('bcoin accepts every main-chain block of the demo in height order and ends on its tip', async () => {
  for (const b of main.slice(1)) {
    const answer = await submit(b);
    // Pairing the answer with the height makes a failure name the block.
    expect({ height: b.height, answer }).toEqual({ height: b.height, answer: null });
  }
  expect(await node!.rpc('getbestblockhash')).toBe(main[main.length - 1]!.hash);
  expect(await node!.rpc('getblockcount')).toBe(main.length - 1);
});

test('bcoin stores the stale fork blocks without leaving the main chain', async () => {
  expect(stale.length).toBeGreaterThan(0);
  for (const b of stale) expect({ height: b.height, answer: await submit(b) }).toEqual({ height: b.height, answer: null });
  expect(await node!.rpc('getbestblockhash')).toBe(main[main.length - 1]!.hash);
  const tips = await node!.rpc<Array<{ hash: string; status: string }>>('getchaintips');
  expect(tips.map((t) => t.hash)).toContain(stale[stale.length - 1]!.hash);
});

test('bcoin rejects a block whose signature was tampered with, so the acceptance above means something', async () => {
  const c = demo();
  const next = c.fork(c.height);
  const alice = next.account('alice', 'p2wpkh');
  const tx = next.wallet.pay(alice, [{ script: next.account('gina', 'p2wpkh').script, value: 1000n }]);
  const sig = tx.ins[0]!.witness[0]!;
  sig[10] ^= 0x01;
  const bad = next.mine([tx]);
  expect(bad.prevHash).toBe(main[main.length - 1]!.hash);
  expect(await submit(bad)).toMatch(/^rejected: .*(script|sig)/);
  expect(await node!.rpc('getbestblockhash')).toBe(main[main.length - 1]!.hash);
});
