import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../fixtures/generator/scenarios.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { submitAll } from './helpers/chains.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';

/*
 * A snapshot loaded against a real bcoin node: the node confirms its tip
 * (and cannot hash its UTXO set, which load says), and `nodereg index`
 * then continues from the snapshot's tip through a reorg that its undo
 * records cover and the blocks that carry the demo's last announcements,
 * ending where a recount of the whole chain ends. Without undo records the
 * same reorg stops with the error that names the snapshot.
 *
 * The runs that talk to bcoin (index, load with --rpc) spawn the binary, so
 * the CLI's HTTP sockets are not pooled with the test's own; the ones that
 * only read or write the index and files run in-process (`noderegIn`).
 */

const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as unknown;

let dir: string;
let node: BcoinNode;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-snapbc-'));
  node = await startBcoin();
}, 120_000);
afterAll(async () => {
  await node?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const rpcArgs = (): string[] => ['--rpc', node.url, '--rpc-user', 'x', '--rpc-password', node.apiKey];
const indexUntilSynced = (db: string, extra: string[] = []) =>
  nodereg(['index', '--network', 'regtest', ...rpcArgs(), '--db', db, '--until-synced', '--log-level', 'warn', ...extra]);

/**
 * Submits after the CLI ran for a while: bcoin has meanwhile closed the
 * test's idle keep-alive socket, which fetch finds out on its first request
 * (a POST, which it does not retry), so a throwaway call goes first.
 */
async function submitAfterPause(blocks: Parameters<typeof submitAll>[1]): Promise<void> {
  await node.rpc('getblockcount').catch(() => undefined);
  await submitAll(node, blocks);
}

describe('snapshot load against bcoin, then nodereg index', () => {
  it('continues from the snapshot\'s tip through a reorg and new announcements, ending equal to the recount of the chain', async () => {
    const c = demo();
    const main = c.bestChain();
    await submitAll(node, main.slice(1, 421));
    const src = join(dir, 'src');
    expect(indexUntilSynced(src, ['--utxo-hash']).status).toBe(0);
    const file = join(dir, 'at420.snap');
    const bare = join(dir, 'at420-no-undo.snap');
    expect((await noderegIn(['snapshot', 'create', '--db', src, '--out', file])).status).toBe(0);
    expect((await noderegIn(['snapshot', 'create', '--db', src, '--out', bare, '--undo-blocks', '0'])).status).toBe(0);

    const dst = join(dir, 'dst');
    const loaded = nodereg(['snapshot', 'load', file, '--db', dst, ...rpcArgs()]);
    expect(loaded.stderr).toBe('');
    expect(loaded.status).toBe(0);
    expect(loaded.stdout).toMatch(/ok {2}the node's block at height 420 is the snapshot's tip/);
    expect(loaded.stdout).toMatch(/-- {2}UTXO-set MuHash not checked against the node: could not check the UTXO-set MuHash: .*needs Bitcoin Core ≥ 0\.21/);
    const dstBare = join(dir, 'dst-bare');
    expect((await noderegIn(['snapshot', 'load', bare, '--db', dstBare])).status).toBe(0);

    // A two-block reorg below the snapshot's tip: the snapshot's undo records cover it.
    const side = c.fork(418);
    side.mineEmpty(3);
    await submitAfterPause(side.chainBlocks().slice(419));
    expect(indexUntilSynced(dst).status).toBe(0);
    expect((JSON.parse((await noderegIn(['root', '--db', dst, '--json'])).stdout) as { tip: string }).tip).toBe(side.tip.hash);

    const fail = indexUntilSynced(dstBare);
    expect(fail.status).toBe(1);
    expect(fail.stderr).toMatch(/(^|\n)nodereg: cannot undo block 420 for a reorg of depth 2: .*loaded from a snapshot \("nodereg snapshot load"\).*\[this index was loaded from a snapshot at height 420: it has undo data from height 421 on, and the reorg reaches below it\]\n$/);

    // The main chain comes back with the demo's last renewals, lapse and stale fork.
    await submitAfterPause(main.slice(421));
    expect(indexUntilSynced(dst).status).toBe(0);
    expect(JSON.parse((await noderegIn(['export', '--db', dst])).stdout)).toEqual(expected);
  }, 300_000);
});
