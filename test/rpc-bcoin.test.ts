import { createHash } from 'node:crypto';
import { networks, payments } from 'bitcoinjs-lib';
import { fetchBlocks } from '../indexer/node/fetch.js';
import { isMuhashUnsupported, RpcClient } from '../indexer/node/rpc.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { rejection } from './helpers/rpc.js';

const TIP = 25;
/** A regtest P2WPKH address in bcoin's `rb` bech32 prefix; nobody needs to spend these coinbases. */
const MINER = payments.p2wpkh({ hash: new Uint8Array(20).fill(7), network: { ...networks.regtest, bech32: 'rb' } }).address!;

/** bitcoind's block hash: sha256d of the 80-byte header, shown byte-reversed. */
function headerHash(raw: Buffer): string {
  const once = createHash('sha256').update(raw.subarray(0, 80)).digest();
  return createHash('sha256').update(once).digest().reverse().toString('hex');
}

let node: BcoinNode;
let rpc: RpcClient;

beforeAll(async () => {
  node = await startBcoin();
  rpc = new RpcClient({ url: node.url, user: 'x', password: node.apiKey, retries: 2, backoffMs: 50 });
  await node.rpc('generatetoaddress', [TIP, MINER]);
});

afterAll(async () => {
  await node?.stop();
});

describe('RpcClient against a real bcoin regtest node', () => {
  it('reads the chain tip from getblockchaininfo and getbestblockhash', async () => {
    const info = await rpc.getBlockchainInfo();
    expect(info).toMatchObject({ chain: 'regtest', blocks: TIP, headers: TIP, pruned: false });
    expect(info.pruneheight).toBeUndefined();
    await expect(rpc.getBestBlockHash()).resolves.toBe(info.bestblockhash);
    await expect(rpc.getBlockHash(TIP)).resolves.toBe(info.bestblockhash);
  });

  it('fetches raw blocks whose header hashes to the hash asked for, and which link to their parent', async () => {
    let prev: string | undefined;
    for (const h of [0, 1, 2, TIP]) {
      const hash = await rpc.getBlockHash(h);
      const raw = await rpc.getBlockRaw(hash);
      expect(headerHash(raw)).toBe(hash);
      if (h === 1) expect(Buffer.from(raw.subarray(4, 36)).reverse().toString('hex')).toBe(prev);
      prev = hash;
    }
  });

  it('accepts both getblock verbosity 0 and false, so either form gives the same bytes', async () => {
    const hash = await rpc.getBlockHash(3);
    const asNumber = await node.rpc<string>('getblock', [hash, 0]);
    const asBool = await node.rpc<string>('getblock', [hash, false]);
    expect(asNumber).toBe(asBool);
    expect((await rpc.getBlockRaw(hash)).toString('hex')).toBe(asNumber);
  });

  it('answers a JSON-RPC batch in request order, and reports a failed item', async () => {
    const heights = Array.from({ length: TIP + 1 }, (_, h) => TIP - h);
    const batched = await rpc.batch<string>(heights.map((h) => ({ method: 'getblockhash', params: [h] })));
    const single = await Promise.all(heights.map((h) => rpc.getBlockHash(h)));
    expect(batched).toEqual(single);
    const mixed = await rpc.batch<unknown>([{ method: 'getblockcount' }, { method: 'getbestblockhash' }]);
    expect(mixed).toEqual([TIP, single[0]]);
    const err = await rejection(rpc.getBlockHashes(TIP - 1, TIP + 1));
    expect(err).toMatchObject({ kind: 'rpc', code: -8, nodeMessage: 'Block height out of range.', transient: false });
  });

  it('streams the whole chain through fetchBlocks in height order', async () => {
    const seen: number[] = [];
    let prev = '00'.repeat(32);
    for await (const b of fetchBlocks(rpc, 0, TIP, { depth: 4, batchSize: 10 })) {
      seen.push(b.height);
      expect(headerHash(b.raw)).toBe(b.hash);
      if (b.height > 0) expect(Buffer.from(b.raw.subarray(4, 36)).reverse().toString('hex')).toBe(prev);
      prev = b.hash;
    }
    expect(seen).toEqual(Array.from({ length: TIP + 1 }, (_, h) => h));
  });

  it('has no UTXO MuHash: gettxoutsetinfo muhash is classified as needing Core ≥ 0.21', async () => {
    await expect(rpc.getTxOutSetInfoMuhash()).resolves.toBeNull();
    const err = await rejection(rpc.call('gettxoutsetinfo', ['muhash']));
    expect(err).toMatchObject({ kind: 'rpc', code: -1, transient: false });
    expect(isMuhashUnsupported(err)).toBe(true);
  });

  it('reports an unknown method as a non-transient rpc error', async () => {
    const err = await rejection(rpc.call('nosuchmethod'));
    expect(err).toMatchObject({ kind: 'rpc', code: -32601, transient: false });
    expect(err.message).toBe(`the node at ${rpc.url} refused nosuchmethod: Method not found: nosuchmethod. (code -32601)`);
  });

  it('rejects a wrong API key as an auth error without echoing the key', async () => {
    const wrong = `${node.apiKey}-wrong`;
    const bad = new RpcClient({ url: node.url, user: 'x', password: wrong, retries: 0 });
    const err = await rejection(bad.getBlockchainInfo());
    expect(err).toMatchObject({ kind: 'auth', transient: false });
    expect(err.message).toMatch(/rejected the credentials \(HTTP 401\)/);
    expect(err.message).not.toContain(wrong);
  });
});
