/**
 * `nodereg mirror`: building the PostgreSQL mirror of an existing index and
 * keeping it equal to the index at every height when the index moves to
 * another branch, falls behind the mirror, or belongs to other params. A real
 * throwaway PostgreSQL cluster; the chains are the demo and a reorg of it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { demo } from '../fixtures/generator/scenarios.js';
import { writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { connectPostgres } from '../indexer/mirror/connect.js';
import { migrate, MIGRATIONS, MIRROR_SCHEMA_VERSION } from '../indexer/mirror/schema.js';
import { MirrorBusyError, prepareMirror, syncMirror } from '../indexer/mirror/sync.js';
import { openIndexStore } from '../indexer/store/store.js';
import { NOTIFY_CHANNEL } from '../indexer/mirror/writer.js';
import { BUILTIN_NETWORKS, paramsHash } from '../script/params.js';
import { noderegAsync, noderegIn, ROOT } from './helpers/cli.js';
import { reorgBranch } from './helpers/chains.js';
import { compareMirror, sqlRows } from './helpers/mirror.js';
import { startPostgres, type PgCluster } from './helpers/postgres.js';

const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { height: number; tip: string };

let cluster: PgCluster;
let dir: string;
let url: string;

const chain = demo();
const demoBlocks = chain.bestChain();
// Built before the suite: the demo's own chain, the same with a 12-block branch from 10 below its tip, and its first 301 blocks.
const branch = reorgBranch(chain);

/** An index (`recount --db`) of `blocks`, written as one blocks directory. */
async function indexOf(name: string, blocks: readonly Uint8Array[]): Promise<string> {
  const blocksDir = join(dir, `${name}-blocks`);
  writeBlocksDir(blocksDir, blocks, { magic: chain.params.magic });
  const db = join(dir, name);
  const r = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', blocksDir, '--db', db]);
  if (r.status !== 0) throw new Error(`recount failed: ${r.stderr}`);
  return db;
}

async function mirror(db: string, extra: string[] = []): Promise<{ status: number | null; json: unknown; stderr: string }> {
  // In-process (see noderegIn); the recounts above and `index --postgres` below spawn the binary.
  const r = await noderegIn(['mirror', '--db', db, '--postgres', url, '--json', ...extra]);
  return { status: r.status, json: r.status === 0 ? JSON.parse(r.stdout) as unknown : null, stderr: r.stderr };
}

let main: string;
let reorged: string;
let short: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-mirror-'));
  cluster = await startPostgres();
  url = cluster.url();
  const all = [chain.genesis.raw, ...chain.blocks().map((b) => b.raw)];
  main = await indexOf('main', [chain.genesis.raw, ...demoBlocks.slice(1).map((b) => b.raw)]);
  reorged = await indexOf('reorged', all);
  short = await indexOf('short', demoBlocks.slice(0, 301).map((b) => b.raw));
});
afterAll(() => {
  cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('nodereg mirror against a real PostgreSQL', () => {
  it('builds the mirror of an index in batches, equal to the index at every height', async () => {
    const r = await mirror(main, ['--batch', '64']);
    expect(r).toMatchObject({ status: 0, json: { network: 'regtest', before: null, rewoundTo: null, tip: { height: expected.height, hash: expected.tip }, blocks: expected.height + 1 } });
    const cmp = await compareMirror(main, url);
    expect(cmp).toEqual({ indexTip: cmp.indexTip, mirrorTip: cmp.indexTip, differing: [], registrationsEqual: true, tablesDiffering: [], heightsCompared: expected.height + 1 });
    // The explorer views' rows are there to compare: rejections by stake, and the index keeps them.
    expect((await sqlRows<{ n: string }>(url, 'SELECT count(*) AS n FROM rejections WHERE stake_script IS NOT NULL'))[0]!.n).not.toBe('0');
    expect(await sqlRows(url, 'SELECT stake_rejections FROM mirror_meta')).toEqual([{ stake_rejections: true }]);
    // The coins went block by block (from the undo records), keeping every spent one: the tip is below KEEP_SPENT.
    expect(await sqlRows(url, 'SELECT coins_height, coins_since FROM mirror_meta')).toEqual([{ coins_height: expected.height, coins_since: -1 }]);
    expect(await sqlRows(url, 'SELECT max(version) AS version FROM schema_migrations')).toEqual([{ version: MIRROR_SCHEMA_VERSION }]);
    // Caught up: a second run applies nothing.
    expect((await mirror(main)).json).toMatchObject({ before: expected.height, rewoundTo: null, blocks: 0 });
  });

  it('rewinds a mirror on a stale branch to the fork and follows the index onto the new one, notifying listeners of each transaction', async () => {
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const heard: unknown[] = [];
    listener.on('notification', (n) => heard.push({ channel: n.channel, payload: JSON.parse(n.payload!) as unknown }));
    await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
    const r = await mirror(reorged);
    const newTip = branch.bestChain().at(-1)!;
    expect(r).toMatchObject({ status: 0, json: { before: expected.height, rewoundTo: expected.height - 10, tip: { height: newTip.height, hash: newTip.hash }, blocks: 12 } });
    // Delivered after each commit; a bound only against notifications that never come.
    for (let i = 0; i < 3000 && heard.length < 2; i++) await sleep(10);
    await listener.end();
    expect(heard).toEqual([
      { channel: NOTIFY_CHANNEL, payload: { event: 'rewind', height: expected.height - 10, hash: demoBlocks[expected.height - 10]!.hash } },
      { channel: NOTIFY_CHANNEL, payload: { event: 'block', height: newTip.height, hash: newTip.hash } },
    ]);
    const cmp = await compareMirror(reorged, url);
    expect(cmp.differing).toEqual([]);
    expect(cmp.registrationsEqual).toBe(true);
    expect(cmp.tablesDiffering).toEqual([]);
    expect(cmp.mirrorTip).toEqual(cmp.indexTip);
  });

  it('rewinds a mirror ahead of its index (an older copy of the index) by height', async () => {
    const r = await mirror(short);
    expect(r).toMatchObject({ status: 0, json: { rewoundTo: 300, tip: { height: 300, hash: demoBlocks[300]!.hash }, blocks: 0 } });
    const cmp = await compareMirror(short, url);
    expect([cmp.differing, cmp.registrationsEqual, cmp.tablesDiffering, cmp.mirrorTip]).toEqual([[], true, [], cmp.indexTip]);
    expect(await sqlRows(url, 'SELECT max(height) AS h FROM blocks')).toEqual([{ h: 300 }]);
  });

  it('refuses a mirror of other params with a clear error, and rebuilds it with --postgres-rebuild', async () => {
    await sqlRows(url, "UPDATE mirror_meta SET network = 'testnet', params_hash = 'ab12'");
    const refused = await mirror(main);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/^nodereg: the mirror holds network testnet \(params hash ab12…\), the index regtest .*--postgres-rebuild\n$/);
    const rebuilt = await mirror(main, ['--postgres-rebuild']);
    expect(rebuilt).toMatchObject({ status: 0, json: { before: null, blocks: expected.height + 1 } });
    const cmp = await compareMirror(main, url);
    expect([cmp.differing, cmp.registrationsEqual, cmp.tablesDiffering, cmp.mirrorTip]).toEqual([[], true, [], cmp.indexTip]);
  });

  it('says so in one line, exit 1, when PostgreSQL is not there (mirror and index alike)', async () => {
    const nowhere = `postgresql://postgres@localhost/nodereg?host=${encodeURIComponent(join(dir, 'no-server'))}`;
    // Spawned: pg's connect error comes from another realm inside Jest, and its message would read differently.
    const m = await noderegAsync(['mirror', '--db', main, '--postgres', nowhere]);
    expect([m.status, m.stderr]).toEqual([1, expect.stringMatching(/^nodereg: cannot reach PostgreSQL at postgresql:\/\/postgres@localhost\/nodereg\?host=.*: ENOENT; start it, or fix --postgres .*\n$/)]);
    const ix = await noderegAsync(['index', '--db', main, '--rpc', 'http://127.0.0.1:1', '--rpc-user', 'x', '--rpc-password', 'y', '--postgres', nowhere]);
    expect([ix.status, ix.stderr]).toEqual([1, expect.stringMatching(/^nodereg: cannot reach PostgreSQL at .*ENOENT/)]);
    const bad = await noderegIn(['mirror', '--db', main, '--postgres', 'mysql://u:secret@h/db']);
    expect([bad.status, bad.stderr]).toEqual([2, expect.stringMatching(/--postgres must be a connection URL .*mysql:\/\/u:\*\*\*@h\/db/)]);
  });

  it('brings a mirror of schema 2 to this build: emptied by migration 3, refilled by the next catch-up', async () => {
    const old = await cluster.createDatabase('schema2');
    const c = await connectPostgres(old);
    try {
      // A mirror as schema 2 left it: its tables, a tip and a rejection that does not say its stake.
      await c.query('CREATE TABLE schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      for (const v of [1, 2]) {
        await c.query(MIGRATIONS[v - 1]!);
        await c.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v]);
      }
      await c.query('INSERT INTO mirror_meta (network, params_hash, tip_height, tip_hash) VALUES ($1, $2, 0, $3)', ['regtest', paramsHash(BUILTIN_NETWORKS.regtest!), demoBlocks[0]!.hash]);
      await c.query("INSERT INTO blocks (height, hash, registry_root) VALUES (0, $1, 'x')", [demoBlocks[0]!.hash]);
      await c.query("INSERT INTO rejections (height, position, vout, txid, reason) VALUES (0, 1, 0, 'ab', 'BAD_MAGIC')");
    } finally {
      await c.end();
    }
    const r = await noderegIn(['mirror', '--db', main, '--postgres', old, '--json']);
    expect([r.status, r.stderr]).toEqual([0, '']);
    expect(JSON.parse(r.stdout)).toMatchObject({ before: null, blocks: expected.height + 1 });
    expect(await sqlRows(old, 'SELECT max(version) AS v FROM schema_migrations')).toEqual([{ v: MIRROR_SCHEMA_VERSION }]);
    const cmp = await compareMirror(main, old);
    expect([cmp.differing, cmp.registrationsEqual, cmp.tablesDiffering, cmp.mirrorTip]).toEqual([[], true, [], cmp.indexTip]);
  });

  it('loads the coins whole after a catch-up longer than a window, and again after a rewind below the spent coins it kept', async () => {
    const whole = await cluster.createDatabase('whole');
    const c = await connectPostgres(whole);
    try {
      await prepareMirror(c, BUILTIN_NETWORKS.regtest!);
      const sync = async (path: string): Promise<void> => {
        const { db, params } = await openIndexStore(path, null, { create: false });
        try {
          await syncMirror(c, db, params, { blocksPerTx: 64, window: 100 });
        } finally {
          await db.close();
        }
      };
      await sync(main);
      // Loaded at the tip: the spent coins are kept from there on (block by block they would be from -1).
      expect(await sqlRows(whole, 'SELECT coins_height, coins_since FROM mirror_meta')).toEqual([{ coins_height: expected.height, coins_since: expected.height }]);
      let cmp = await compareMirror(main, whole);
      expect([cmp.differing, cmp.tablesDiffering, cmp.mirrorTip]).toEqual([[], [], cmp.indexTip]);
      await sync(reorged);
      cmp = await compareMirror(reorged, whole);
      expect([cmp.differing, cmp.registrationsEqual, cmp.tablesDiffering, cmp.mirrorTip]).toEqual([[], true, [], cmp.indexTip]);
      expect(await sqlRows(whole, 'SELECT coins_since FROM mirror_meta')).toEqual([{ coins_since: cmp.indexTip.height }]);
    } finally {
      await c.end();
    }
  });

  it('runs each migration once, refuses a schema newer than this build, and admits one writer at a time', async () => {
    const other = await cluster.createDatabase('writers');
    const a = await connectPostgres(other);
    const b = await connectPostgres(other);
    let aOpen = true;
    try {
      await prepareMirror(a, BUILTIN_NETWORKS.regtest!);
      expect(await migrate(a)).toEqual([]);
      await expect(prepareMirror(b, BUILTIN_NETWORKS.regtest!, { lockWaitMs: 50 })).rejects.toThrow(MirrorBusyError);
      await a.end();
      aOpen = false;
      await prepareMirror(b, BUILTIN_NETWORKS.regtest!);
      await b.query('INSERT INTO schema_migrations (version) VALUES ($1)', [MIRROR_SCHEMA_VERSION + 1]);
      await expect(migrate(b)).rejects.toThrow(`the mirror's schema is version ${MIRROR_SCHEMA_VERSION + 1}, newer than this nodereg's ${MIRROR_SCHEMA_VERSION}; upgrade nodereg`);
    } finally {
      if (aOpen) await a.end();
      await b.end();
    }
  });
});
