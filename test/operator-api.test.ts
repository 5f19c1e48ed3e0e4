import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { openIndexer, type Indexer } from '../indexer/api.js';
import { requireTip, utxosOf } from '../indexer/read/queries.js';
import { RpcClient } from '../indexer/node/rpc.js';
import { ApiSource } from '../cli/operator/api-source.js';
import { UserError } from '../cli/common.js';
import { parseStake } from '../script/address.js';
import { paramsHash } from '../script/params.js';
import type { Account } from '../fixtures/generator/keys.js';
import { noderegIn } from './helpers/cli.js';
import { closedUrl, expectOneLineError, json, PARAMS, PARAMS_FILE, RegtestLab, SEGWIT_HEIGHT } from './helpers/operator.js';

/*
 * The --api source: the operator commands against a running daemon's read
 * API. The real HTTP server is built elsewhere; these tests serve the
 * documented routes from a fake read API (an in-process Indexer following
 * bcoin behind a few lines of node:http), and canned answers for the client's
 * validation.
 */

type Handler = (path: string) => Promise<{ status: number; body: unknown }>;

async function serve(handler: Handler): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    handler(new URL(req.url!, 'http://x').pathname).then(({ status, body }) => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(typeof body === 'string' ? body : JSON.stringify(body));
    }, (err: Error) => {
      res.writeHead(500);
      res.end(err.message);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** The documented routes, answered from an embedded indexer's database. */
function readApiOf(ix: Indexer): Handler {
  return async (path) => {
    const tip = await requireTip(ix.db);
    let m: RegExpMatchArray | null;
    if (path === '/v1/status') {
      return { status: 200, body: { network: ix.params.name, paramsHash: paramsHash(ix.params), tip: { height: tip.height, hash: Buffer.from(tip.hash).reverse().toString('hex') } } };
    }
    if ((m = path.match(/^\/v1\/scripts\/([^/]+)\/utxos$/))) {
      return { status: 200, body: { height: tip.height, utxos: await utxosOf(ix.db, parseStake(decodeURIComponent(m[1]!), ix.params)) } };
    }
    if ((m = path.match(/^\/v1\/nodes\/([^/]+)$/))) return { status: 200, body: await ix.node(decodeURIComponent(m[1]!)) };
    if ((m = path.match(/^\/v1\/tx\/([0-9a-f]{64})$/))) {
      const announcements = await ix.explain(m[1]!);
      return announcements.length === 0 ? { status: 404, body: { error: 'unknown transaction' } } : { status: 200, body: { txid: m[1], announcements } };
    }
    return { status: 404, body: { error: 'no such route' } };
  };
}

describe('operator commands against a fake read API that follows a real bcoin node', () => {
  let lab: RegtestLab;
  let ix: Indexer;
  let api: { server: Server; url: string };
  let stake: Account;

  beforeAll(async () => {
    lab = await RegtestLab.start('operator-api');
    stake = lab.account('api-stake', 'p2wpkh');
    await lab.fundByCoinbase(stake);
    await lab.mine(SEGWIT_HEIGHT + 8 - (await lab.height()));
    ix = await openIndexer({ db: join(lab.dir, 'daemon'), network: PARAMS, rpc: { url: lab.node.url, user: 'x', password: lab.node.apiKey }, pollIntervalMs: 100 });
    const synced = new Promise((resolve) => ix.once('synced', resolve));
    await ix.start();
    await synced;
    api = await serve(readApiOf(ix));
  }, 60_000);

  afterAll(async () => {
    api?.server.close();
    await ix?.stop();
    await lab?.stop();
  });

  const apiArgs = (): string[] => [...lab.rpcArgs(), '--params', PARAMS_FILE, '--api', api.url];

  it('announces with --wait, reading coins and registration from the API and the outcome from /v1/tx', async () => {
    const res = await lab.runMining(['announce', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...apiArgs(), '--wait', '--json']);
    expect(res.stderr).toBe('');
    const out = json<{ outcome: Array<{ accepted: boolean }>; registration: { status: string; renewals: number } }>(res);
    expect(out.outcome).toEqual([expect.objectContaining({ accepted: true, kind: 'newnode' })]);
    expect(out.registration).toMatchObject({ status: 'active', renewals: 0 });
  });

  it('renews with --wait and shows the renewal in status', async () => {
    const res = await lab.runMining(['renew', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...apiArgs(), '--wait']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/renewal at height \d+: accepted/);
    const status = await noderegIn(['status', '--stake', stake.address, ...apiArgs()]);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^status\s+active$/m);
    expect(status.stdout).toMatch(/^renewals\s+1$/m);
  });

  it('refuses a doomed announcement through the API too', async () => {
    const res = await noderegIn(['announce', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...apiArgs()]);
    expectOneLineError(res, /ALREADY_REGISTERED: /);
  });

  it('refuses params that differ from the daemon\'s, and asks for --params when the daemon\'s chain is not built in', async () => {
    const wrong = await noderegIn(['status', '--stake', stake.address, '--network', 'regtest', '--api', api.url]);
    expectOneLineError(wrong, /indexes "bcoin-regtest" with other params than regtest/);
    const missing = await noderegIn(['status', '--stake', stake.address, '--api', api.url]);
    expectOneLineError(missing, /serves "bcoin-regtest", a chain described by a params file: pass the same --params <file>/, 2);
  });

  it('reports a read API that cannot be reached', async () => {
    const url = await closedUrl();
    const res = await noderegIn(['status', '--stake', stake.address, '--params', PARAMS_FILE, '--api', url]);
    expectOneLineError(res, new RegExp(`cannot reach the read API at ${url} \\(ECONNREFUSED\\): is "nodereg index --serve" running`));
  });
});

describe('the read API client checks every answer against the documented shapes (fake read API, canned answers)', () => {
  const status = { network: 'bcoin-regtest', paramsHash: paramsHash(PARAMS), tip: { height: 7, hash: 'ab'.repeat(32) } };
  const script = parseStake('rb1qm243yghwka2cvhj7gcsgepj0hdm5eg24jnf23s', PARAMS);
  let routes: Record<string, { status: number; body: unknown }>;
  let api: { server: Server; url: string };

  beforeAll(async () => {
    api = await serve(async (path) => routes[path] ?? { status: 404, body: {} });
  });
  afterAll(() => {
    api.server.close();
  });
  beforeEach(() => {
    routes = { '/v1/status': { status: 200, body: status } };
  });

  const open = (): Promise<ApiSource> => ApiSource.open(api.url, { params: PARAMS_FILE });

  it('reads coins and registration of one tip, and treats an unknown stake (404) as never registered', async () => {
    const addr = '/v1/scripts/rb1qm243yghwka2cvhj7gcsgepj0hdm5eg24jnf23s/utxos';
    routes[addr] = { status: 200, body: { height: 7, utxos: [{ txid: 'cd'.repeat(32), vout: 1, value: '4200000001', height: 3, coinbase: false }] } };
    const snap = await (await open()).stake(script);
    expect(snap.tip).toEqual(status.tip);
    expect(snap.coins).toEqual([{ txid: 'cd'.repeat(32), vout: 1, value: 4_200_000_001n, height: 3, coinbase: false }]);
    expect(snap.info).toMatchObject({ height: 7, balance: '4200000001', registration: null });
  });

  it('answers an unknown transaction (404) as not yet seen', async () => {
    await expect((await open()).explain('ef'.repeat(32))).resolves.toEqual([]);
  });

  it('rejects answers that do not have the documented shape', async () => {
    const source = await open();
    routes['/v1/scripts/rb1qm243yghwka2cvhj7gcsgepj0hdm5eg24jnf23s/utxos'] = { status: 200, body: { height: 7, utxos: [{ txid: 'cd'.repeat(32), vout: 1, value: 4200000001, height: 3, coinbase: false }] } };
    await expect(source.stake(script)).rejects.toThrow(/something other than the read API's JSON/);
    routes[`/v1/tx/${'ef'.repeat(32)}`] = { status: 200, body: 'not json' };
    await expect(source.explain('ef'.repeat(32))).rejects.toThrow(UserError);
    routes['/v1/nodes/rb1qm243yghwka2cvhj7gcsgepj0hdm5eg24jnf23s'] = { status: 200, body: { height: 7, stakeScript: script.toString('hex'), balance: '1', registration: { status: 'alive' }, history: [] } };
    await expect(source.info(script)).rejects.toThrow(/something other than the read API's JSON/);
    routes['/v1/nodes/rb1qm243yghwka2cvhj7gcsgepj0hdm5eg24jnf23s'] = { status: 500, body: 'boom' };
    await expect(source.info(script)).rejects.toThrow(/answered GET \/v1\/nodes\/\S+ with HTTP 500/);
  });

  it('refuses a server without /v1/status, and an empty index', async () => {
    routes = {};
    await expect(open()).rejects.toThrow(/has no \/v1\/status: is --api a nodereg read API\?/);
    routes = { '/v1/status': { status: 200, body: { ...status, tip: null } } };
    await expect(open()).rejects.toThrow(/serves an empty index/);
  });

  it('waits for the daemon to reach the node\'s tip, then gives up with both heights', async () => {
    const rpc = { getBlockchainInfo: async () => ({ blocks: 9, bestblockhash: '01'.repeat(32) }) } as unknown as RpcClient;
    await expect((await open()).catchUp(rpc, 300)).rejects.toThrow(/is at height 7 but the node is at 9/);
  });
});
