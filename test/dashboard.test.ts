import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import type { ListedNode } from '../indexer/read/listing.js';
import { recount } from '../indexer/engine/recount.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';

const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOT = join(ROOT, 'test-artifacts', 'dashboard.png');
const regtest = BUILTIN_NETWORKS.regtest!;

let idx: Awaited<ReturnType<typeof tempIndex>>;
let server: ApiServer;
let base: string;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const foreign: string[] = [];

const api = async <T>(path: string): Promise<T> => (await (await fetch(base + path)).json()) as T;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the dashboard test drives Debian's Chromium. Install it with \`apt-get update && apt-get install -y chromium\`.`);
  }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: install the devDependency with `npm install --save-dev playwright-core` (or `npm ci`).');
  }
  idx = await tempIndex(regtest);
  await recount({ blocksDir: join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), params: regtest, db: idx.db });
  server = await buildServer({ db: idx.db, params: regtest });
  base = (await server.listen('127.0.0.1', 0)).replace(/\/$/, '');
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
  await page.goto(`${base}/`);
  await page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await idx?.close();
});

const visibleRows = (): Promise<string[][]> => page.$$eval('#nodes tbody tr:not([hidden])', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent ?? '')));
const coins = (units: string): string => {
  const s = units.padStart(9, '0');
  return `${s.slice(0, -8)}.${s.slice(-8)}`;
};

describe('the dashboard in headless Chromium', () => {
  it('shows the tip, the root and the counts by status that the API reports, and saves a screenshot', async () => {
    const status = await api<{ tip: { height: number; hash: string }; counts: Record<string, number>; sync: string }>('/v1/status');
    const root = await api<{ root: string }>('/v1/root');
    expect(await page.textContent('#tip-height')).toBe(String(status.tip.height));
    expect(await page.textContent('#tip-hash')).toBe(status.tip.hash);
    expect(await page.textContent('#sync')).toBe(status.sync);
    expect(await page.textContent('#root')).toBe(root.root);
    for (const s of ['active', 'expired', 'lapsed']) expect({ s, n: await page.textContent(`#count-${s}`) }).toEqual({ s, n: String(status.counts[s]) });
    expect(status.counts).toEqual({ active: 3, expired: 1, lapsed: 1 });

    mkdirSync(join(ROOT, 'test-artifacts'), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    expect(statSync(SCREENSHOT).size).toBeGreaterThan(10_000);
  });

  it('lists the registry in the table exactly as /v1/nodes?status=all does', async () => {
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    expect(nodes).toHaveLength(5);
    expect(await visibleRows()).toEqual(nodes.map((n, i) => [
      String(i + 1), n.address ?? n.stakeScript, n.status, String(n.firstHeight), String(n.age), String(n.renewals), String(n.expiryHeight), coins(n.balance),
    ]));
  });

  it('draws the chart from /v1/history/active, one point per sampled height, higher for more active nodes', async () => {
    const { points } = await api<{ points: Array<{ height: number; active: number }> }>('/v1/history/active?points=200');
    const drawn = await page.$$eval('#chart svg circle', (cs) => cs.map((c) => ({
      height: Number(c.getAttribute('data-height')), active: Number(c.getAttribute('data-active')), cx: Number(c.getAttribute('cx')), cy: Number(c.getAttribute('cy')),
    })));
    expect(drawn.map(({ height, active }) => ({ height, active }))).toEqual(points);
    expect(points).toHaveLength(200);
    for (let i = 1; i < drawn.length; i++) {
      expect(drawn[i]!.cx).toBeGreaterThan(drawn[i - 1]!.cx);
      expect(Math.sign(drawn[i - 1]!.cy - drawn[i]!.cy)).toBe(Math.sign(drawn[i]!.active - drawn[i - 1]!.active));
    }
    expect(await page.getAttribute('#chart svg', 'data-max')).toBe('4');
    expect(await page.$$('#chart svg polyline')).toHaveLength(1);
  });

  it('filters the table as an address is typed, and looks a full address up on Enter', async () => {
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    const alice = nodes[1]!;
    const dave = nodes[3]!;
    await page.fill('#search', alice.address!.slice(4, 14).toUpperCase());
    expect((await visibleRows()).map((r) => r[1])).toEqual([alice.address]);
    await page.fill('#search', 'no-such-address');
    expect(await visibleRows()).toEqual([]);
    await page.fill('#search', '');
    expect(await visibleRows()).toHaveLength(5);

    await page.fill('#search', dave.address!);
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 1);
    expect(await visibleRows()).toEqual([['1', dave.address, 'lapsed', '433', '17', '1', '583', '4.99995000']]);

    await page.fill('#search', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelector('#message')?.textContent !== '');
    expect(await page.textContent('#message')).toMatch(/another network; regtest addresses start with "bcrt1"/);
    expect(await visibleRows()).toEqual([]);

    await page.fill('#search', '');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 5);
  });

  it('filters by status through the API', async () => {
    await page.selectOption('#status', 'lapsed');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 1);
    expect((await visibleRows()).map((r) => r[2])).toEqual(['lapsed']);
    await page.selectOption('#status', 'active');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 3);
    expect((await visibleRows()).map((r) => r[2])).toEqual(['active', 'active', 'active']);
  });

  it('fetches nothing from outside the server and logs no errors but the 400 of the wrong-network lookup', () => {
    expect(foreign).toEqual([]);
    expect(problems).toEqual(['console error: Failed to load resource: the server responded with a status of 400 (Bad Request)']);
  });
});
