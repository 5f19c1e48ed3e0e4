/**
 * An index remembers the params it was built with, so later commands need
 * no --params; a recount refuses an index of another chain unless --reset;
 * a full disk is a resumable, one-line error.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadParamsFile, paramsHash, paramsToJson } from '../script/params.js';
import { buildServer } from '../indexer/http/server.js';
import { openIndexStore } from '../indexer/store/store.js';
import { ApiSource } from '../cli/operator/api-source.js';
import { writeBlocksDir } from '../fixtures/generator/blkwriter.js';
import { ChainBuilder } from '../fixtures/generator/chain.js';
import { storageOrder } from '../fixtures/generator/blkwriter.js';
import { nodereg, noderegIn, type CliRun, ROOT } from './helpers/cli.js';

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const PARAMS = join(ROOT, 'fixtures', 'params', 'bcoin-regtest.json');

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-params-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectFailure(res: CliRun, status: number, pattern: RegExp): void {
  expect({ status: res.status, stdout: res.stdout }).toEqual({ status, stdout: '' });
  expect(res.stderr).toMatch(/^nodereg: [^\n]+\n$/);
  expect(res.stderr).toMatch(pattern);
}
function expectOk(res: CliRun): string {
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return res.stdout;
}
/** In-process (see noderegIn); the full disk is met by the spawned binary, which exits with the index still open. */
const fails = async (args: string[], status: number, pattern: RegExp): Promise<void> => expectFailure(await noderegIn(args), status, pattern);
const ok = async (args: string[]): Promise<string> => expectOk(await noderegIn(args));
const failsSpawned = (args: string[], status: number, pattern: RegExp): void => expectFailure(nodereg(args), status, pattern);
const okSpawned = (args: string[]): string => expectOk(nodereg(args));

describe('the index remembers its params', () => {
  let db: string;
  let withFile: string;
  beforeAll(async () => {
    db = join(dir, 'params-db');
    await ok(['recount', '--params', PARAMS, '--blocks-dir', DEMO, '--db', db]);
    withFile = await ok(['export', '--db', db, '--params', PARAMS]);
  }, 300_000);

  it('export, nodes, check and a resumed recount work without --params', async () => {
    const exported = await ok(['export', '--db', db]);
    expect(exported).toBe(withFile);
    expect((JSON.parse(exported) as { network: string }).network).toBe('bcoin-regtest');
    expect(await ok(['nodes', '--db', db, '--json'])).toMatch(/"address": "rb1/);
    expect(await ok(['check', '--db', db])).toMatch(/^ok: /);
    expect(await ok(['recount', '--blocks-dir', DEMO, '--db', db, '--json'])).toBe(withFile);
  }, 300_000);

  it('other params are still refused', async () => {
    await fails(['export', '--db', db, '--network', 'regtest'], 1, /built for network "bcoin-regtest" with other params/);
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ ...JSON.parse(readFileSync(PARAMS, 'utf8')), expiryBlocks: 100 }));
    await fails(['nodes', '--db', db, '--params', other], 1, /built for network "bcoin-regtest" with other params/);
  }, 120_000);

  it('the read API serves them, and an --api client takes them from it', async () => {
    const { db: level, params } = await openIndexStore(db, null, { create: false });
    expect(paramsHash(params)).toBe(paramsHash(loadParamsFile(PARAMS)));
    const server = await buildServer({ db: level, params });
    try {
      const url = await server.listen('127.0.0.1', 0);
      const status = await (await fetch(`${url}/v1/status`)).json() as { params: unknown; paramsHash: string };
      expect(status.params).toEqual(paramsToJson(params));
      const source = await ApiSource.open(url, {});
      expect(source.params).toEqual(params);
    } finally {
      await server.close();
      await level.close();
    }
  }, 120_000);
});

describe('a recount into an index of another chain', () => {
  it('is refused without --reset, and --reset rebuilds it as a fresh recount would', async () => {
    const c = new ChainBuilder({ seed: 'another-chain', sign: 'dummy' });
    c.mineEmpty(30);
    const other = join(dir, 'other', 'blocks');
    writeBlocksDir(other, storageOrder(c), { magic: 'fabfb5da' });
    const db = join(dir, 'chain-db');
    await ok(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', db]);
    await fails(['recount', '--network', 'regtest', '--blocks-dir', other, '--db', db], 1,
      /the index at .* was built from another chain: its block at height 1 is not in this blocks directory's best chain .*pass --reset/);
    const fresh = await ok(['recount', '--network', 'regtest', '--blocks-dir', other, '--json']);
    expect(await ok(['recount', '--network', 'regtest', '--blocks-dir', other, '--db', db, '--reset', '--json'])).toBe(fresh);
    expect(await ok(['export', '--db', db])).toBe(fresh);
  }, 300_000);

  it('--reset empties only an index directory', async () => {
    const mine = join(dir, 'not-an-index');
    mkdirSync(mine);
    writeFileSync(join(mine, 'notes.txt'), 'keep me');
    await fails(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', mine, '--reset'], 1, /holds files that are not LevelDB's; --reset empties only an index directory/);
    expect(readFileSync(join(mine, 'notes.txt'), 'utf8')).toBe('keep me');
    const usage = await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--reset']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/^nodereg: --reset wipes the index given by --db, so it needs --db\n/);
  }, 120_000);
});

/** A real, tiny file system: a tmpfs needs root (CAP_SYS_ADMIN); elsewhere this test cannot run. */
function mountTiny(at: string, kib: number): boolean {
  mkdirSync(at, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k`, 'tmpfs', at], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('a full disk', () => {
  const at = join(tmpdir(), `nodereg-full-${process.pid}`);
  const mounted = mountTiny(at, 2048);
  afterAll(() => {
    if (mounted) execFileSync('umount', [at]);
    rmSync(at, { recursive: true, force: true });
  });
  (mounted ? it : it.skip)('is exit 1 with "free space and run the same command to resume", and the rerun completes', () => {
    const ballast = join(at, 'ballast');
    writeFileSync(ballast, Buffer.alloc(1800 * 1024));
    const db = join(at, 'db');
    failsSpawned(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', db], 1,
      /^nodereg: no space left on the device holding --db \(.*db\); free space and run the same command to resume\n$/);
    rmSync(ballast);
    const fresh = okSpawned(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--json']);
    expect(okSpawned(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', db, '--json'])).toBe(fresh);
  }, 300_000);
});
