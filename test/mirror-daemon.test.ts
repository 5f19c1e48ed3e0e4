/**
 * `nodereg index --postgres` against a real bcoin node and a real PostgreSQL:
 * the mirror equals the LevelDB index at every height after the daemon is
 * SIGKILLed again and again (some kills inside a mirror transaction), after a
 * real reorg (invalidateblock), and after PostgreSQL restarts under the
 * running daemon, which goes on indexing meanwhile.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { carrier, newNode } from '../fixtures/generator/announce.js';
import { prng } from '../fixtures/generator/random.js';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { reorgBranch, submitAll } from './helpers/chains.js';
import { Daemon, rpcArgs } from './helpers/daemon.js';
import { compareMirror } from './helpers/mirror.js';
import { startPostgres, type PgCluster } from './helpers/postgres.js';

const COIN = 100_000_000n;

let dir: string;
let node: BcoinNode;
let cluster: PgCluster;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-mirrord-'));
  [node, cluster] = await Promise.all([startBcoin(), startPostgres()]);
  url = cluster.url();
});
afterAll(async () => {
  await node?.stop();
  cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const chain = demo();
const blocks = chain.bestChain();
const db = (): string => join(dir, 'index');
const daemon = (): Daemon => new Daemon([...rpcArgs(node), '--db', db(), '--poll-interval', '50', '--postgres', url, '--log-level', 'debug']);

/** The mirror equals the index at every height, and its tip is the index's. */
async function expectMirrorEqualsIndex(): Promise<void> {
  const cmp = await compareMirror(db(), url);
  expect({ differing: cmp.differing, registrationsEqual: cmp.registrationsEqual, tablesDiffering: cmp.tablesDiffering, mirrorTip: cmp.mirrorTip })
    .toEqual({ differing: [], registrationsEqual: true, tablesDiffering: [], mirrorTip: cmp.indexTip });
}

/** Runs a daemon until its mirror reports `tip`, then stops it with SIGTERM. */
async function mirrorTo(tip: { height: number; hash: string }): Promise<void> {
  const d = daemon();
  await d.waitFor('mirror at tip', { height: tip.height, hash: tip.hash }, 120_000);
  expect(await d.stop()).toEqual({ code: 0, signal: null });
}

describe('the daemon mirroring into PostgreSQL', () => {
  it('resumes after 10+ SIGKILLs (some inside a mirror transaction) to a mirror equal to the index at every height', async () => {
    const rand = prng(0x9057_9e5);
    const watcher = new pg.Client({ connectionString: url, application_name: 'test-watcher' });
    await watcher.connect();
    /** Whether the daemon's mirror session is inside a statement or a transaction right now. */
    const writing = async (): Promise<boolean> => (await watcher.query(
      "SELECT 1 FROM pg_stat_activity WHERE application_name = 'nodereg' AND state IN ('active', 'idle in transaction')")).rowCount! > 0;
    try {
      await submitAll(node, blocks.slice(1, 151));
      let submitted = 150;
      const kills: Array<{ how: string; inWrite: boolean }> = [];
      // At least 10 kills and 3 inside a mirror write; a bounded number of rounds either way.
      for (let round = 0; round < 30 && (kills.length < 10 || kills.filter((k) => k.inWrite).length < 3 || submitted < chain.height); round++) {
        // Bursts sized so that the whole demo is in after about 10 rounds, each a catch-up the kill can land in.
        const left = chain.height - submitted;
        const n = Math.min(left, Math.max(5, Math.round((left / Math.max(1, 10 - kills.length)) * (0.5 + rand()))));
        await submitAll(node, blocks.slice(submitted + 1, submitted + 1 + n));
        submitted += n;
        const d = daemon();
        let how: string;
        let inWrite = false;
        if (rand() < 0.6) {
          // Inside a mirror transaction, seen from PostgreSQL's side; else once it has mirrored everything.
          for (;;) {
            if (await writing()) {
              inWrite = true;
              break;
            }
            if (!d.alive || d.has('mirror at tip', { height: submitted })) break;
          }
          how = inWrite ? 'inside a mirror write' : 'after mirroring up to the node';
        } else {
          const target = Math.floor(submitted - n + (n + 4) * rand());
          await d.until((x) => (x.connectedUpTo() ?? -1) >= Math.min(target, submitted), 120_000);
          how = `at block ${target}`;
        }
        expect((await d.kill()).signal).toBe('SIGKILL');
        kills.push({ how, inWrite });
      }
      console.log(`mirror kills: ${kills.length}, ${kills.filter((k) => k.inWrite).length} inside a mirror write\n${kills.map((k) => `  ${k.how}`).join('\n')}`);
      expect(kills.length).toBeGreaterThanOrEqual(10);
      expect(kills.filter((k) => k.inWrite).length).toBeGreaterThanOrEqual(3);
    } finally {
      await watcher.end();
    }
    await mirrorTo(chain.tip);
    await expectMirrorEqualsIndex();
  });

  const branch = reorgBranch(chain);

  it('rewinds on a real reorg (invalidateblock), then follows the new branch', async () => {
    const fork = chain.height - 10;
    const d = daemon();
    try {
      await d.waitFor('mirror at tip', { height: chain.tip.height, hash: chain.tip.hash }, 120_000);
      await node.rpc('invalidateblock', [blocks[fork + 1]!.hash]);
      // The node is back at the fork: the index disconnects and the mirror rewinds with it.
      await d.waitFor('mirror at tip', { height: fork, hash: blocks[fork]!.hash }, 120_000);
      await submitAll(node, branch.chainBlocks().slice(fork + 1));
      await d.waitFor('mirror at tip', { height: branch.tip.height, hash: branch.tip.hash }, 120_000);
      expect(d.has('mirror rewound')).toBe(true);
    } finally {
      expect(await d.stop()).toEqual({ code: 0, signal: null });
    }
    await expectMirrorEqualsIndex();
  });

  it('keeps indexing while PostgreSQL is down, and the mirror catches up once it is back', async () => {
    const d = daemon();
    try {
      await d.waitFor('mirror at tip', { height: branch.tip.height, hash: branch.tip.hash }, 120_000);
      cluster.halt();
      const judy = branch.account('judy', 'p2tr');
      branch.wallet.pay(branch.miner, [payTo(judy, 50n * COIN)]);
      branch.mine();
      branch.wallet.pay(judy, [carrier(newNode(judy, branch.nextTime()))]);
      branch.mine();
      const fresh = branch.chainBlocks().slice(-2);
      await submitAll(node, fresh);
      await d.waitFor('synced with node', { height: branch.tip.height, hash: branch.tip.hash }, 120_000);
      await d.waitFor('mirror pass failed; retrying', {}, 120_000);
      expect(d.has('mirror at tip', { height: branch.tip.height })).toBe(false);
      cluster.start();
      await d.waitFor('mirror at tip', { height: branch.tip.height, hash: branch.tip.hash }, 120_000);
      expect(d.has('registered', { height: branch.tip.height })).toBe(true);
    } finally {
      expect(await d.stop()).toEqual({ code: 0, signal: null });
    }
    await expectMirrorEqualsIndex();
  });
});
