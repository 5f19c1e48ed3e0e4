/**
 * The recount's human output: progress bars only on a terminal (bytes in
 * MiB/GiB with an ETA while reading, blocks while connecting), then a
 * summary and the first NODES_SHOWN nodes, or every node with --all.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { NODES_SHOWN } from '../cli/commands/recount.js';
import { summary } from '../cli/format.js';
import { formatBytes, progressText, showProgress } from '../cli/progress.js';
import type { ExportJson, ExportNode } from '../indexer/read/queries.js';
import { CLI, nodereg, ROOT } from './helpers/cli.js';

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const SLOW = 180_000;

describe('when bars are drawn', () => {
  it('only on a terminal that can move the cursor', () => {
    expect(showProgress({ isTTY: true }, {})).toBe(true);
    expect(showProgress({ isTTY: true }, { TERM: 'xterm-256color' })).toBe(true);
    expect(showProgress({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(showProgress({ isTTY: false }, {})).toBe(false);
    expect(showProgress({}, {})).toBe(false);
  });

  it('bytes read are shown in MiB, or GiB past one, with a rate; blocks as counts', () => {
    expect(formatBytes(0)).toBe('0.0 MiB');
    expect(formatBytes(5 * 1024 * 1024 + 512 * 1024)).toBe('5.5 MiB');
    expect(formatBytes(1536 * 1024 * 1024)).toBe('1.50 GiB');
    expect(progressText(256 * 1024 * 1024, 2048 * 1024 * 1024, 'bytes', 4)).toBe('256.0/2.00 GiB | 64.0 MiB/s');
    expect(progressText(120, 449, 'blocks', 2)).toBe('120/449 blocks | 60 blocks/s');
    expect(progressText(0, 449, 'blocks', 0)).toBe('0/449 blocks | 0 blocks/s');
  });
});

describe('the summary', () => {
  const node = (i: number): ExportNode => ({
    stakeScript: `51${i.toString(16).padStart(2, '0')}`, address: `addr${i}`, status: 'active', firstHeight: 10 + i, firstTxid: '00'.repeat(32),
    tipHeight: 10 + i, tipTxid: '00'.repeat(32), timestamp: 0, renewals: 0, expiryHeight: 200, endedHeight: null, balance: '4200000000',
  });
  const registry = (n: number): ExportJson => ({
    network: 'regtest', height: 100, tip: '11'.repeat(32), root: '22'.repeat(32), nodes: Array.from({ length: n }, (_, i) => node(i + 1)), rejected: [],
  });

  it(`lists the first ${NODES_SHOWN} nodes and says how many more there are`, () => {
    const text = summary(registry(NODES_SHOWN + 5), null, NODES_SHOWN);
    expect(text).toMatch(/^nodes {5}25 active, 0 expired, 0 lapsed$/m);
    expect(text).toContain(`addr${NODES_SHOWN} `);
    expect(text).not.toContain(`addr${NODES_SHOWN + 1} `);
    expect(text.trimEnd().split('\n').at(-1)).toBe('… and 5 more node(s): --all lists every node, --json prints the whole registry');
  });

  it('lists every node when they fit, or when there is no limit', () => {
    expect(summary(registry(NODES_SHOWN), null, NODES_SHOWN)).not.toContain('more node(s)');
    const all = summary(registry(NODES_SHOWN + 5));
    expect(all).toContain(`addr${NODES_SHOWN + 5} `);
    expect(all).not.toContain('more node(s)');
  });
});

describe('the recount command', () => {
  const args = ['recount', '--network', 'regtest', '--blocks-dir', DEMO];

  it('on a terminal, shows the reading bar in MiB with an ETA, then the connecting bar, then the summary', () => {
    const res = spawnSync('script', ['-qec', [process.execPath, CLI, ...args].map((a) => `'${a}'`).join(' '), '/dev/null'], { encoding: 'utf8', timeout: 120_000 });
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/reading blocks +\[[^\]]*\] \d+% \| \d+\.\d\/\d+\.\d MiB \| \d+\.\d MiB\/s \| ETA /);
    expect(res.stdout).toMatch(/connecting +\[[^\]]*\] \d+% \| \d+\/451 blocks \| \d+ blocks\/s \| ETA /);
    expect(res.stdout).toMatch(/^nodes {5}3 active, 1 expired, 1 lapsed\r?$/m);
  }, SLOW);

  it('piped, prints no bar: only the summary and the node table, the same with --all on a small registry', () => {
    const res = nodereg(args);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    expect(res.stdout).toMatch(/^network {3}regtest\nheight {4}450\n/);
    expect(res.stdout.trimEnd().split('\n').at(-1)).toMatch(/^5 +active /);
    expect(nodereg([...args, '--all']).stdout).toBe(res.stdout);
  }, SLOW);
});
