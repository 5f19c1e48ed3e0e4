import { createServer, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetchBlocks, fetchGroups, GROUPING } from '../indexer/node/fetch.js';
import { isMuhashUnsupported, isPrunedBlock, RpcClient, type RpcError, type RpcOptions } from '../indexer/node/rpc.js';
import { rejection } from './helpers/rpc.js';

/** What the fake server saw of one request. */
interface Seen {
  body: unknown;
  auth: string | undefined;
}

/** A scripted answer: a JSON value, or raw text when `raw` is set. */
interface Reply {
  status?: number;
  json?: unknown;
  raw?: string;
  delayMs?: number;
}

interface FakeRpc {
  url: string;
  seen: Seen[];
  /** Requests whose client hung up before the answer was sent. */
  abandoned: () => number;
  close: () => Promise<void>;
}

/** A fake RPC server on 127.0.0.1 that answers each request with whatever `handler` scripts. */
async function fakeRpc(handler: (req: Seen, n: number) => Reply | Promise<Reply>): Promise<FakeRpc> {
  const seen: Seen[] = [];
  let abandoned = 0;
  const server: Server = createServer((req: IncomingMessage, res) => {
    let text = '';
    req.on('data', (d: Buffer) => { text += d.toString(); });
    req.on('end', () => {
      const s: Seen = { body: JSON.parse(text) as unknown, auth: req.headers.authorization };
      seen.push(s);
      void Promise.resolve(handler(s, seen.length)).then((reply) => {
        const send = (): void => {
          if (res.destroyed) return;
          res.writeHead(reply.status ?? 200, { 'Content-Type': reply.raw !== undefined ? 'text/html' : 'application/json' });
          res.end(reply.raw ?? JSON.stringify(reply.json));
        };
        if (reply.delayMs) setTimeout(send, reply.delayMs).unref();
        else send();
      });
    });
    res.on('close', () => { if (!res.writableFinished) abandoned++; });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    abandoned: () => abandoned,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/** JSON-RPC 1.0 answer to a single request, the way bitcoind writes it. */
function ok(req: Seen, result: unknown): Reply {
  return { json: { result, error: null, id: (req.body as { id: unknown }).id } };
}
function fail(req: Seen, code: number, message: string, status = 500): Reply {
  return { status, json: { result: null, error: { code, message }, id: (req.body as { id: unknown }).id } };
}
const methodOf = (req: Seen): string => (req.body as { method: string }).method;
const paramsOf = (req: Seen): unknown[] => (req.body as { params: unknown[] }).params;

const HASH = 'ab'.repeat(32);
const fast: Partial<RpcOptions> = { backoffMs: 5, maxBackoffMs: 20, retries: 3 };

let server: FakeRpc | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('RpcClient against a fake RPC server', () => {
  it('reports an HTTP 500 with a JSON-RPC error body once, as a non-transient rpc error with the node\'s message', async () => {
    server = await fakeRpc((req) => fail(req, -5, 'Block not found'));
    const rpc = new RpcClient({ url: server.url, ...fast });
    const err = await rejection(rpc.call('getblock', [HASH, 0]));
    expect(err).toMatchObject({ kind: 'rpc', code: -5, transient: false });
    expect(err.message).toBe(`the node at ${server.url} refused getblock: Block not found (code -5)`);
    expect(server.seen).toHaveLength(1);
  });

  it('retries an HTTP 500 with an HTML body and then returns the result', async () => {
    server = await fakeRpc((req, n) => (n === 1 ? { status: 500, raw: '<html><body>Internal Server Error</body></html>' } : ok(req, 7)));
    const retries: string[] = [];
    const rpc = new RpcClient({ url: server.url, ...fast, onRetry: (i) => retries.push(`${i.attempt} ${i.error.kind} ${i.error.message}`) });
    await expect(rpc.call('getblockcount')).resolves.toBe(7);
    expect(retries).toEqual([`1 http the node at ${server.url} answered getblockcount with HTTP 500 (Internal Server Error)`]);
  });

  it('retries a request that timed out and then returns the result', async () => {
    server = await fakeRpc((req, n) => ({ ...ok(req, 'late'), delayMs: n === 1 ? 2000 : 0 }));
    const errors: RpcError[] = [];
    const rpc = new RpcClient({ url: server.url, ...fast, timeoutMs: 200, onRetry: (i) => errors.push(i.error) });
    await expect(rpc.call('getblock', [HASH])).resolves.toBe('late');
    expect(errors.map((e) => [e.kind, e.message])).toEqual([
      ['timeout', `the node at ${server.url} did not answer getblock within 200 ms`],
    ]);
  });

  it('says which call timed out in seconds when retries run out', async () => {
    server = await fakeRpc((req) => ({ ...ok(req, 1), delayMs: 5000 }));
    const rpc = new RpcClient({ url: server.url, retries: 0, timeoutMs: 1500 });
    const err = await rejection(rpc.getBestBlockHash());
    expect(err).toMatchObject({ kind: 'timeout', transient: true });
    expect(err.message).toBe(`the node at ${server.url} did not answer getbestblockhash within 1.5 s`);
  });

  it('retries a body that is not JSON and then returns the result', async () => {
    server = await fakeRpc((req, n) => (n === 1 ? { raw: '{"result": "trunc' } : ok(req, HASH)));
    const kinds: string[] = [];
    const rpc = new RpcClient({ url: server.url, ...fast, onRetry: (i) => kinds.push(i.error.kind) });
    await expect(rpc.getBestBlockHash()).resolves.toBe(HASH);
    expect(kinds).toEqual(['malformed']);
  });

  it('gives up on a refused connection after the retries, within a bounded time, with an actionable message', async () => {
    const probe = await fakeRpc((req) => ok(req, null));
    const url = probe.url;
    await probe.close();
    const delays: number[] = [];
    const rpc = new RpcClient({ url, retries: 3, backoffMs: 10, maxBackoffMs: 25, onRetry: (i) => delays.push(i.delayMs) });
    const err = await rejection(rpc.getBlockchainInfo());
    // Bounded: three retries, with the planned waits capped at maxBackoffMs (checked below, not timed).
    expect(err).toMatchObject({ kind: 'unreachable', transient: true });
    expect(err.message).toBe(`cannot reach the node at ${url} (ECONNREFUSED): is it running, and is --rpc right?`);
    expect(delays).toEqual([10, 20, 25]);
  });

  it('re-reads a cookie file rewritten by a node restart after a 401 and succeeds with the new cookie', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-rpc-'));
    const cookieFile = join(dir, '.cookie');
    const header = (cookie: string): string => `Basic ${Buffer.from(cookie).toString('base64')}`;
    try {
      writeFileSync(cookieFile, '__cookie__:old');
      server = await fakeRpc((req, n) => {
        if (n === 1) writeFileSync(cookieFile, '__cookie__:new');
        return req.auth === header('__cookie__:new') ? ok(req, 42) : { status: 401, raw: '' };
      });
      const rpc = new RpcClient({ url: server.url, cookieFile, retries: 0 });
      await expect(rpc.call('getblockcount')).resolves.toBe(42);
      expect(server.seen.map((s) => s.auth)).toEqual([header('__cookie__:old'), header('__cookie__:new')]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects a wrong password with a message that names the flags and never the password', async () => {
    server = await fakeRpc(() => ({ status: 401, raw: '' }));
    const password = 'hunter2-Sup3rSecret';
    for (const rpc of [
      new RpcClient({ url: server.url, user: 'alice', password, ...fast }),
      new RpcClient({ url: server.url.replace('//', `//alice:${password}@`), ...fast }),
    ]) {
      const err = await rejection(rpc.call('getblockcount'));
      expect(err).toMatchObject({ kind: 'auth', transient: false });
      expect(err.message).toBe(`the node at ${server.url} rejected the credentials (HTTP 401): check --rpc-user/--rpc-password or --rpc-cookie`);
      expect(err.message + String(err.stack)).not.toContain(password);
      expect(rpc.url).not.toContain(password);
    }
    expect(server.seen.map((s) => s.auth)).toEqual(Array(2).fill(`Basic ${Buffer.from(`alice:${password}`).toString('base64')}`));
  });

  it('understands JSON-RPC 2.0 answers: an error without a result, and a result without an error', async () => {
    server = await fakeRpc((req) => (methodOf(req) === 'nosuch'
      ? { json: { jsonrpc: '2.0', error: { code: -32601, message: 'Method not found' }, id: (req.body as { id: number }).id } }
      : { json: { jsonrpc: '2.0', result: 5, id: (req.body as { id: number }).id } }));
    const rpc = new RpcClient({ url: server.url, ...fast });
    const err = await rejection(rpc.call('nosuch'));
    expect(err).toMatchObject({ kind: 'rpc', code: -32601, transient: false });
    await expect(rpc.call('getblockcount')).resolves.toBe(5);
    expect(server.seen).toHaveLength(2);
  });

  it('waits out a node that is warming up (-28) and then returns the result', async () => {
    server = await fakeRpc((req, n) => (n <= 2 ? fail(req, -28, 'Loading block index…') : ok(req, 3)));
    const messages: string[] = [];
    const rpc = new RpcClient({ url: server.url, ...fast, onRetry: (i) => messages.push(i.error.message) });
    await expect(rpc.call('getblockcount')).resolves.toBe(3);
    expect(messages).toEqual(Array(2).fill(`the node at ${server.url} is still starting (Loading block index…): wait for it to finish loading`));
  });

  it('returns batch results in request order even when the server answers them shuffled', async () => {
    server = await fakeRpc((req) => {
      const items = req.body as Array<{ id: number; params: [number] }>;
      return { json: items.map((c) => ({ result: c.params[0] * 10, error: null, id: c.id })).reverse() };
    });
    const rpc = new RpcClient({ url: server.url, ...fast });
    const calls = [3, 1, 4, 1, 5].map((n) => ({ method: 'getblockhash', params: [n] }));
    await expect(rpc.batch<number>(calls)).resolves.toEqual([30, 10, 40, 10, 50]);
    expect(server.seen).toHaveLength(1);
  });

  it('throws the first failed item of a batch, in request order', async () => {
    server = await fakeRpc((req) => {
      const items = req.body as Array<{ id: number; params: [number] }>;
      return {
        json: items.map((c) => (c.params[0] >= 2
          ? { result: null, error: { code: -8, message: `Block height ${c.params[0]} out of range` }, id: c.id }
          : { result: HASH, error: null, id: c.id })).reverse(),
      };
    });
    const rpc = new RpcClient({ url: server.url, ...fast });
    const err = await rejection(rpc.getBlockHashes(0, 3));
    expect(err).toMatchObject({ kind: 'rpc', code: -8, nodeMessage: 'Block height 2 out of range' });
  });

  it('explains a pruned block: the index needs an unpruned node or a --db ahead of the prune height', async () => {
    server = await fakeRpc((req) => fail(req, -1, 'Block not available (pruned data)'));
    const rpc = new RpcClient({ url: server.url, ...fast });
    const err = await rejection(rpc.getBlockRaw(HASH));
    expect(isPrunedBlock(err)).toBe(true);
    expect(err).toMatchObject({ kind: 'rpc', code: -1, transient: false });
    expect(err.message).toBe(`the node at ${server.url} has pruned block ${HASH}: the index needs an unpruned node, or a --db whose tip is above the node's prune height`);
  });

  it('falls back to getblock <hash> false on a node that wants a boolean, and remembers it', async () => {
    server = await fakeRpc((req) => (paramsOf(req)[1] === 0 ? fail(req, -1, 'JSON value is not a boolean as expected') : ok(req, '00ff')));
    const rpc = new RpcClient({ url: server.url, ...fast });
    await expect(rpc.getBlockRaw(HASH)).resolves.toEqual(Buffer.from([0, 255]));
    await expect(rpc.getBlockRaw(HASH)).resolves.toEqual(Buffer.from([0, 255]));
    expect(server.seen.map((s) => paramsOf(s)[1])).toEqual([0, false, false]);
  });

  it('returns null for the UTXO MuHash when the node lacks gettxoutsetinfo muhash, and the hash when it has it', async () => {
    const answers = [
      (req: Seen) => fail(req, -32601, 'Method not found', 404),
      (req: Seen) => fail(req, -8, '\'muhash\' is not a valid hash_type'),
      (req: Seen) => fail(req, -1, 'gettxoutsetinfo\n\nReturns statistics about the unspent transaction output set.'),
      (req: Seen) => ok(req, { height: 9, bestblock: HASH, muhash: 'cd'.repeat(32), txouts: 9 }),
    ];
    server = await fakeRpc((req, n) => answers[n - 1]!(req));
    const rpc = new RpcClient({ url: server.url, ...fast });
    await expect(rpc.getTxOutSetInfoMuhash()).resolves.toBeNull();
    await expect(rpc.getTxOutSetInfoMuhash()).resolves.toBeNull();
    await expect(rpc.getTxOutSetInfoMuhash()).resolves.toBeNull();
    await expect(rpc.getTxOutSetInfoMuhash()).resolves.toEqual({ height: 9, bestblock: HASH, muhash: 'cd'.repeat(32) });
    expect(server.seen.map(paramsOf)).toEqual(Array(4).fill(['muhash']));
  });

  it('rejects a getblockchaininfo answer without a valid best block hash as malformed', async () => {
    server = await fakeRpc((req) => ok(req, { blocks: 3, bestblockhash: 'nope' }));
    const rpc = new RpcClient({ url: server.url, ...fast });
    const err = await rejection(rpc.getBlockchainInfo());
    expect(err).toMatchObject({ kind: 'malformed', transient: false });
    expect(isMuhashUnsupported(err)).toBe(false);
  });

  it('reads Core\'s and bcoin\'s estimatesmartfee answers as satoshis per kvB', async () => {
    const answers = [{ feerate: 0.00012345, blocks: 2 }, { fee: -1, blocks: 6 }, { errors: ['Insufficient data or no feerate found'], blocks: 0 }];
    server = await fakeRpc((req, n) => ok(req, answers[n - 1]));
    const rpc = new RpcClient({ url: server.url, ...fast });
    await expect(rpc.estimateSmartFee(2)).resolves.toEqual({ satPerKvB: 12345n, blocks: 2 });
    await expect(rpc.estimateSmartFee(6)).resolves.toEqual({ satPerKvB: null, blocks: 6 });
    await expect(rpc.estimateSmartFee(3)).resolves.toEqual({ satPerKvB: null, blocks: 0 });
  });
});

describe('getBlocksRaw against a fake RPC server', () => {
  const h = (c: string): string => c.repeat(64);
  const blockOf = (hash: string): string => hash.slice(0, 8);
  /** Answers getblock alone or batched; the hash of all 'd's is a block the node does not have. */
  const blocks = (req: Seen): Reply => {
    const one = (c: { id: unknown; params: unknown[] }): unknown => (c.params[0] === h('d')
      ? { result: null, error: { code: -5, message: 'Block not found' }, id: c.id }
      : { result: c.params[0] === h('e') ? 'zz' + blockOf(h('e')) : blockOf(c.params[0] as string), error: null, id: c.id });
    if (Array.isArray(req.body)) return { json: (req.body as Array<{ id: unknown; params: unknown[] }>).map(one) };
    const answer = one(req.body as { id: unknown; params: unknown[] }) as { error: unknown };
    return { status: answer.error ? 500 : 200, json: answer };
  };

  it('asks for several blocks in one batch once the first answer settled the verbosity', async () => {
    server = await fakeRpc(blocks);
    const rpc = new RpcClient({ url: server.url, ...fast });
    const got = await rpc.getBlocksRaw([h('a'), h('b'), h('c')]);
    expect(got.map((b) => b.toString('hex'))).toEqual([blockOf(h('a')), blockOf(h('b')), blockOf(h('c'))]);
    expect(server.seen.map((s) => (Array.isArray(s.body) ? s.body.length : 1))).toEqual([1, 2]);
  });

  it('falls back to one request per block when the node refuses one, so the error names that block', async () => {
    server = await fakeRpc(blocks);
    const rpc = new RpcClient({ url: server.url, ...fast });
    await rpc.getBlocksRaw([h('a')]);
    const err = await rejection(rpc.getBlocksRaw([h('b'), h('d'), h('c')])) as RpcError;
    expect(err).toMatchObject({ kind: 'rpc', code: -5 });
    const singles = server.seen.slice(2).map((s) => paramsOf(s)[0]);
    expect(singles).toEqual([h('b'), h('d')]);
  });

  it('rejects an answer in a batch that is not hex, as for a single block', async () => {
    server = await fakeRpc(blocks);
    const rpc = new RpcClient({ url: server.url, ...fast });
    await rpc.getBlocksRaw([h('a')]);
    expect(await rejection(rpc.getBlocksRaw([h('b'), h('e')]))).toMatchObject({ kind: 'malformed' });
  });
});

describe('fetchBlocks against a fake RPC server', () => {
  const hashAt = (h: number): string => h.toString(16).padStart(64, '0');
  const rawAt = (hash: string): string => `${hash}`.slice(-8);
  /** Every fourth block is slow, and within each four the later ones come first, so answers arrive out of order. */
  const shuffled = (height: number): number => 5 + (height % 4 === 0 ? 40 : 10 - (height % 4));

  /** Answers getblockhash batches at once and getblock after `delay(height)` ms. */
  function chainServer(tip: number, stats: { inFlight: number; maxInFlight: number; getblocks: number }, delay = shuffled) {
    return fakeRpc((req) => {
      if (Array.isArray(req.body) && (req.body as Array<{ method: string }>)[0]!.method === 'getblockhash') {
        const items = req.body as Array<{ id: number; method: string; params: [number] }>;
        return { json: items.map((c) => (c.params[0] <= tip ? { result: hashAt(c.params[0]), error: null, id: c.id } : { result: null, error: { code: -8, message: 'Block height out of range' }, id: c.id })) };
      }
      // getblock, alone or batched: answered after the slowest block's delay.
      const items = Array.isArray(req.body) ? req.body as Array<{ id: number; params: [string] }> : [{ id: (req.body as { id: number }).id, params: paramsOf(req) as [string] }];
      stats.getblocks += items.length;
      stats.inFlight++;
      stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
      const wait = Math.max(...items.map((c) => delay(parseInt(c.params[0], 16))));
      return new Promise<Reply>((resolve) => setTimeout(() => {
        stats.inFlight--;
        resolve(Array.isArray(req.body)
          ? { json: items.map((c) => ({ result: rawAt(c.params[0]), error: null, id: c.id })) }
          : ok(req, rawAt(items[0]!.params[0])));
      }, wait).unref());
    });
  }

  it('yields every block in height order while answers arrive out of order, with several requests in flight', async () => {
    const stats = { inFlight: 0, maxInFlight: 0, getblocks: 0 };
    server = await chainServer(40, stats);
    const rpc = new RpcClient({ url: server.url, ...fast });
    const got: Array<[number, string, string]> = [];
    for await (const b of fetchBlocks(rpc, 3, 40, { depth: 6, batchSize: 7 })) got.push([b.height, b.hash, b.raw.toString('hex')]);
    expect(got).toEqual(Array.from({ length: 38 }, (_, i) => [i + 3, hashAt(i + 3), rawAt(hashAt(i + 3))]));
    expect(stats.maxInFlight).toBeGreaterThan(1);
    expect(stats.maxInFlight).toBeLessThanOrEqual(6);
    const seen = server.seen;
    const batchesOf = (method: string): number[] => seen
      .filter((s) => Array.isArray(s.body) && (s.body as Array<{ method: string }>)[0]!.method === method)
      .map((s) => (s.body as unknown[]).length);
    // Sorted: batches sent on several connections may reach the server out of order on a loaded machine.
    expect(batchesOf('getblockhash').sort((a, b) => b - a)).toEqual([7, 7, 7, 7, 7, 3]);
    // After the first block, small blocks are asked for several at a time.
    expect(batchesOf('getblock').length).toBeGreaterThan(0);
    expect(batchesOf('getblock').every((n) => n > 1 && n <= GROUPING.maxGroup)).toBe(true);
  });

  it('groups blocks by size: about groupBytes a request, a block that big alone, at most maxGroup blocks', async () => {
    // Blocks of 4 bytes, but heights 22..40 weigh 64 bytes. One request at a time, so
    // that each request is sized from the answer before it, and the sizes are exact.
    const sizeAt = (h: number): number => (h >= 22 && h <= 40 ? 64 : 4);
    server = await fakeRpc((req) => {
      const items = (Array.isArray(req.body) ? req.body : [req.body]) as Array<{ id: number; method: string; params: [unknown] }>;
      const one = (c: { id: number; method: string; params: [unknown] }): unknown => (c.method === 'getblockhash'
        ? { result: hashAt(c.params[0] as number), error: null, id: c.id }
        : { result: 'ab'.repeat(sizeAt(parseInt(c.params[0] as string, 16))), error: null, id: c.id });
      return Array.isArray(req.body) ? { json: items.map(one) } : ok(req, (one(items[0]!) as { result: unknown }).result);
    });
    const rpc = new RpcClient({ url: server.url, ...fast });
    const sizes: number[] = [];
    for await (const g of fetchGroups(rpc, 0, 60, { depth: 1, batchSize: 10, groupBytes: 32, maxGroup: 6 })) sizes.push(g.length);
    // One block to learn the size; 4-byte blocks 6 at a time (8 would fit in 32 bytes, but
    // maxGroup is 6): 1..24, the last request meeting 22..24; the other 64-byte blocks
    // (25..40) each alone, then 41 alone too (sized from 40), and again 6 at a time.
    expect(sizes).toEqual([1, 6, 6, 6, 6, ...Array<number>(16).fill(1), 1, 6, 6, 6, 1]);
    expect(sizes.reduce((a, b) => a + b)).toBe(61);
  });

  it('starts with requests of GROUPING.firstGroup small blocks and doubles them, as they succeed, up to GROUPING.maxGroup', async () => {
    const stats = { inFlight: 0, maxInFlight: 0, getblocks: 0 };
    server = await chainServer(1200, stats, () => 0);
    const rpc = new RpcClient({ url: server.url, ...fast });
    const sizes: number[] = [];
    for await (const g of fetchGroups(rpc, 0, 1200, { depth: 1, batchSize: 100 })) sizes.push(g.length);
    // One block to learn the size, then 16, 32, … 512 (4-byte blocks: far below groupBytes), and the rest.
    expect(GROUPING).toMatchObject({ firstGroup: 16, maxGroup: 512 });
    expect(sizes).toEqual([1, 16, 32, 64, 128, 256, 512, 192]);
    expect(stats.getblocks).toBe(1201);
  });

  it('splits a request of several blocks that fails twice, and keeps later requests that small until they succeed', async () => {
    // A node (or a link) that fails every answer of more than 4 blocks with an HTML 500 page.
    let failed = 0;
    server = await fakeRpc((req) => {
      const items = (Array.isArray(req.body) ? req.body : [req.body]) as Array<{ id: number; method: string; params: [unknown] }>;
      if (items[0]!.method === 'getblockhash') return { json: items.map((c) => ({ result: hashAt(c.params[0] as number), error: null, id: c.id })) };
      if (items.length > 4) {
        failed++;
        return { status: 500, raw: '<html>500 Internal Server Error</html>' };
      }
      const blocks = items.map((c) => ({ result: rawAt(c.params[0] as string), error: null, id: c.id }));
      return Array.isArray(req.body) ? { json: blocks } : { json: blocks[0] };
    });
    const retried: string[] = [];
    const rpc = new RpcClient({ url: server.url, ...fast, onRetry: (r) => retried.push(r.method) });
    const heights: number[] = [];
    for await (const b of fetchBlocks(rpc, 0, 99, { depth: 1, batchSize: 10, maxGroup: 16 })) heights.push(b.height);
    expect(heights).toEqual(Array.from({ length: 100 }, (_, i) => i));
    const asked = server.seen
      .filter((x) => (Array.isArray(x.body) ? (x.body as Array<{ method: string }>)[0]!.method : (x.body as { method: string }).method) === 'getblock')
      .map((x) => (Array.isArray(x.body) ? (x.body as unknown[]).length : 1));
    // Each failed request was tried twice (one retry, not the client's three), then halved.
    expect(asked.filter((n) => n > 4).length).toBe(failed);
    expect(failed % 2).toBe(0);
    expect(retried.filter((m) => /^getblock \(batch of (\d+)\)$/.test(m)).length).toBe(failed / 2);
    // Sizes go 1, 16 (fails), 8 (fails), 4, 4, then 4 at a time (the ceiling halved to 4), each success
    // doubling it to 8 for one failed try: far fewer failures than blocks.
    expect(asked.slice(0, 7)).toEqual([1, 16, 16, 8, 8, 4, 4]);
    expect(failed).toBeGreaterThan(0);
    expect(failed).toBeLessThan(40);
  });

  it('ends the fetch when a single block fails after the client\'s retries', async () => {
    server = await fakeRpc((req) => {
      const items = (Array.isArray(req.body) ? req.body : [req.body]) as Array<{ id: number; method: string; params: [unknown] }>;
      if (items[0]!.method === 'getblockhash') return { json: items.map((c) => ({ result: hashAt(c.params[0] as number), error: null, id: c.id })) };
      if (items.some((c) => c.params[0] === hashAt(7))) return { status: 500, raw: '<html>500 Internal Server Error</html>' };
      const blocks = items.map((c) => ({ result: rawAt(c.params[0] as string), error: null, id: c.id }));
      return Array.isArray(req.body) ? { json: blocks } : { json: blocks[0] };
    });
    const rpc = new RpcClient({ url: server.url, ...fast });
    const heights: number[] = [];
    const err = await rejection((async () => {
      for await (const b of fetchBlocks(rpc, 0, 20, { depth: 1, batchSize: 10, maxGroup: 16 })) heights.push(b.height);
    })());
    // The request for 1..16 fails as a whole: its halves 1..8, 1..4, 5..8, 5..6 and 7..8 are
    // asked for in turn, 5..6 arrives, and 7 alone fails after the client's retries.
    expect(heights).toEqual([0]);
    expect(err).toMatchObject({ kind: 'http' });
    // Block 7 alone was asked for 1 + 3 times (the client's retries).
    const alone7 = server.seen.filter((x) => !Array.isArray(x.body) && (x.body as { params: unknown[] }).params[0] === hashAt(7));
    expect(alone7.length).toBe(4);
  });

  it('fetchGroups yields each getblock request\'s blocks as one group, the groups in height order', async () => {
    const stats = { inFlight: 0, maxInFlight: 0, getblocks: 0 };
    server = await chainServer(40, stats);
    const rpc = new RpcClient({ url: server.url, ...fast });
    const groups: number[][] = [];
    for await (const g of fetchGroups(rpc, 3, 40, { depth: 6, batchSize: 7 })) groups.push(g.map((b) => b.height));
    expect(groups.flat()).toEqual(Array.from({ length: 38 }, (_, i) => i + 3));
    // One group per getblock request, of as many blocks as that request asked for (compared as
    // sorted lists: requests on several connections may reach the server out of order).
    const asked = server.seen
      .filter((s) => (Array.isArray(s.body) ? (s.body as Array<{ method: string }>)[0]!.method : (s.body as { method: string }).method) === 'getblock')
      .map((s) => (Array.isArray(s.body) ? (s.body as unknown[]).length : 1));
    const bySize = (a: number, b: number): number => a - b;
    expect(groups.map((g) => g.length).sort(bySize)).toEqual(asked.sort(bySize));
    expect(groups.some((g) => g.length > 1)).toBe(true);
  });

  it('stops cleanly when the consumer breaks out early: in-flight requests are abandoned and nothing rejects unhandled', async () => {
    const stats = { inFlight: 0, maxInFlight: 0, getblocks: 0 };
    server = await chainServer(3000, stats, (height) => (height < 3 ? 0 : 10_000));
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason); };
    process.on('unhandledRejection', onUnhandled);
    try {
      const rpc = new RpcClient({ url: server.url, ...fast });
      const heights: number[] = [];
      for await (const b of fetchBlocks(rpc, 0, 3000, { depth: 8, batchSize: 50, maxGroup: 64 })) {
        heights.push(b.height);
        if (heights.length === 3) break;
      }
      await new Promise((r) => setTimeout(r, 200));
      expect(heights).toEqual([0, 1, 2]);
      // Heights 3..7 were on the server, waiting, when the consumer left, and the
      // batches launched as 0..2 arrived; a few more may not have left the client yet.
      expect(server.abandoned()).toBeGreaterThanOrEqual(5);
      const getblockRequests = server.seen.filter((s) => (Array.isArray(s.body) ? (s.body as Array<{ method: string }>)[0]!.method : (s.body as { method: string }).method) === 'getblock').length;
      expect(getblockRequests).toBeLessThanOrEqual(11);
      // Never more than `depth` requests of at most maxGroup blocks each (of 3001 blocks).
      expect(stats.getblocks).toBeLessThanOrEqual(8 * 64);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('yields nothing for an empty range and passes on a failed getblockhash', async () => {
    const stats = { inFlight: 0, maxInFlight: 0, getblocks: 0 };
    server = await chainServer(5, stats);
    const rpc = new RpcClient({ url: server.url, ...fast });
    const none: number[] = [];
    for await (const b of fetchBlocks(rpc, 4, 3)) none.push(b.height);
    expect(none).toEqual([]);
    const heights: number[] = [];
    const err = await rejection((async () => {
      for await (const b of fetchBlocks(rpc, 0, 9, { batchSize: 4 })) heights.push(b.height);
    })());
    expect(heights).toEqual([0, 1, 2, 3]);
    expect(err).toMatchObject({ kind: 'rpc', code: -8 });
  });
});
