import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startBcoin } from './helpers/bcoin.js';
import { demoBlocks, submitAll } from './helpers/chains.js';
import { fixturePath } from './helpers/blocksdir.js';
import { nodereg, noderegIn } from './helpers/cli.js';

const FIXTURE = fixturePath('core-regtest');
const nodeJson = JSON.parse(readFileSync(join(FIXTURE, 'node.json'), 'utf8')) as { heights: Record<string, { hash: string; utxoMuhash: string }> };

let dir: string;
let db: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-verify-'));
  db = join(dir, 'db');
  expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', join(FIXTURE, 'blocks'), '--utxo-hash', '--db', db]).status).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * A fake RPC server standing in for Core: bcoin has no `gettxoutsetinfo
 * muhash`, so Core's answers are replayed from node.json, which the real
 * Namecoin Core node wrote for this very chain.
 */
async function fakeCore(answer: { height: number; bestblock: string; muhash: string }): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(call.method === 'gettxoutsetinfo'
        ? { result: { ...answer, txouts: 1, total_amount: 1 }, error: null, id: call.id }
        : { result: null, error: { code: -32601, message: 'Method not found' }, id: call.id }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

// verify against the fake servers runs in-process (see noderegIn); against bcoin it is the spawned binary.
describe('nodereg verify', () => {
  it('reports a match against Core\'s own gettxoutsetinfo muhash (fake RPC server replaying node.json)', async () => {
    const core = await fakeCore({ height: 116, bestblock: nodeJson.heights['116']!.hash, muhash: nodeJson.heights['116']!.utxoMuhash });
    try {
      const res = await noderegIn(['verify', '--rpc', core.url, '--rpc-user', 'u', '--rpc-password', 'p', '--db', db]);
      expect(res.status).toBe(0);
      expect(res.stdout).toMatch(/^match: UTXO set at height 116/);
    } finally {
      await core.close();
    }
  });

  it('compares at the node\'s height when the index is ahead of it on the same branch (fake RPC server)', async () => {
    const core = await fakeCore({ height: 100, bestblock: nodeJson.heights['100']!.hash, muhash: nodeJson.heights['100']!.utxoMuhash });
    try {
      const res = await noderegIn(['verify', '--rpc', core.url, '--db', db, '--json']);
      expect(JSON.parse(res.stdout)).toMatchObject({ result: 'match', height: 100 });
    } finally {
      await core.close();
    }
  });

  it('reports a mismatch with both hashes and exit status 3 (fake RPC server)', async () => {
    const wrong = '00'.repeat(32);
    const core = await fakeCore({ height: 116, bestblock: nodeJson.heights['116']!.hash, muhash: wrong });
    try {
      const res = await noderegIn(['verify', '--rpc', core.url, '--db', db, '--json']);
      expect(res.status).toBe(3);
      expect(JSON.parse(res.stdout)).toEqual({ result: 'mismatch', height: 116, hash: nodeJson.heights['116']!.hash, index: nodeJson.heights['116']!.utxoMuhash, node: wrong });
    } finally {
      await core.close();
    }
  });

  it('says the index is behind when the node is ahead of it (fake RPC server)', async () => {
    const core = await fakeCore({ height: 200, bestblock: 'ab'.repeat(32), muhash: 'cd'.repeat(32) });
    try {
      const res = await noderegIn(['verify', '--rpc', core.url, '--db', db]);
      expect(res.status).toBe(1);
      expect(res.stderr).toMatch(/index only at 116.*--until-synced/);
    } finally {
      await core.close();
    }
  });

  it('says a real node without muhash (bcoin) cannot tell, with exit status 4', async () => {
    const node = await startBcoin();
    const d2 = join(dir, 'bcoin-db');
    try {
      await submitAll(node, (await demoBlocks()).slice(1, 120));
      expect(nodereg(['index', '--network', 'regtest', '--rpc', node.url, '--rpc-user', 'x', '--rpc-password', node.apiKey, '--db', d2, '--utxo-hash', '--until-synced']).status).toBe(0);
      const res = nodereg(['verify', '--rpc', node.url, '--rpc-user', 'x', '--rpc-password', node.apiKey, '--db', d2]);
      expect(res.status).toBe(4);
      expect(res.stdout).toMatch(/the node has no muhash.*needs Bitcoin Core ≥ 0\.21/);
    } finally {
      await node.stop();
    }
  });
});
