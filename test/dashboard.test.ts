import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import type { ListedNode } from '../indexer/read/listing.js';
import type { HistoryEntry } from '../indexer/read/queries.js';
import type { RejectedAttempt } from '../indexer/read/explore.js';
import { recount } from '../indexer/engine/recount.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';

/*
 * The dashboard in Debian's Chromium, driven by Playwright: one browser for
 * the whole file, over the demo chain served twice (with and without
 * --explorer-url) by `nodereg serve`'s server, which follows no node.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const EXPLORER = 'https://explorer.example/tx/{txid}';
const regtest = BUILTIN_NETWORKS.regtest!;

let idx: Awaited<ReturnType<typeof tempIndex>>;
let server: ApiServer;
let plain: ApiServer;
let base: string;
let plainBase: string;
let browser: Browser;
let page: Page;
const problems: string[] = [];
const foreign: string[] = [];
const requested: string[] = [];

const api = async <T>(path: string): Promise<T> => (await (await fetch(base + path)).json()) as T;
const coins = (units: string): string => {
  const s = units.padStart(9, '0');
  return `${s.slice(0, -8)}.${s.slice(-8)}`;
};
const shot = async (name: string): Promise<void> => {
  const file = join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  expect(statSync(file).size).toBeGreaterThan(10_000);
};
/** A node page's history table as the API has it: events and the rejections that named the stake, by height, expiry and lapse last in a block. */
async function historyRows(stake: string): Promise<string[][]> {
  const { history } = await api<{ history: HistoryEntry[] }>(`/v1/nodes/${stake}/history`);
  const { recorded, rejected } = await api<{ recorded: boolean; rejected: RejectedAttempt[] }>(`/v1/nodes/${stake}/rejected`);
  expect(recorded).toBe(true);
  const rows = [
    ...history.map((h) => ({ height: h.height, late: h.event === 'expired' || h.event === 'lapsed' ? 1 : 0, row: [String(h.height), h.event, h.txid ?? '—', `registration ${h.registration}, expiry height ${h.expiryHeight}`] })),
    ...rejected.map((a) => ({ height: a.height, late: 0, row: [String(a.height), 'rejected', a.txid, `${a.reason} ${a.reasonText}`] })),
  ];
  return rows.sort((a, b) => a.height - b.height || a.late - b.late).map((r) => r.row);
}
const ready = (): Promise<unknown> => page.waitForSelector('body[data-ready="true"]', { timeout: 15_000 });
const cells = (selector: string): Promise<string[][]> =>
  page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => Array.from(tr.children, (td) => (td.textContent ?? '').trim())));

const timing: Record<string, number> = {};
const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    timing[name] = Math.round(performance.now() - t0);
  }
};

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: the dashboard test drives Debian's Chromium. Install it with \`bash tools/ensure-chromium.sh\` (apt-get install chromium).`);
  }
  let chromium: typeof import('playwright-core').chromium;
  try {
    ({ chromium } = await import('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: install the devDependency with `npm ci`.');
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  idx = await tempIndex(regtest);
  await timed('recount', () => recount({ blocksDir: join(ROOT, 'fixtures', 'chains', 'demo', 'blocks'), params: regtest, db: idx.db }));
  server = await buildServer({ db: idx.db, params: regtest, explorerUrl: EXPLORER });
  base = (await server.listen('127.0.0.1', 0)).replace(/\/$/, '');
  plain = await buildServer({ db: idx.db, params: regtest });
  plainBase = (await plain.listen('127.0.0.1', 0)).replace(/\/$/, '');
  browser = await timed('launch', () => chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  }));
  page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('request', (r) => {
    const url = r.url();
    if (url.startsWith('http://127.0.0.1:')) requested.push(url.replace(/^http:\/\/[^/]+/, ''));
    else if (!url.startsWith('data:')) foreign.push(url);
  });
  await page.goto(`${base}/`);
  await ready();
}, 60_000);

afterAll(async () => {
  // Figures for the suite's budget (tools/suite-seconds.json), not assertions.
  process.stderr.write(`dashboard suite set-up, ms: ${JSON.stringify(timing)}\n`);
  await browser?.close();
  await server?.close();
  await plain?.close();
  await idx?.close();
});

describe('the dashboard in headless Chromium', () => {
  it('shows the tip, the root and the counts the API reports, and no live dot under a static serve', async () => {
    const status = await api<{ tip: { height: number; hash: string }; counts: Record<string, number>; sync: string }>('/v1/status');
    const root = await api<{ root: string }>('/v1/root');
    expect(await page.textContent('#tip-height')).toBe(String(status.tip.height));
    expect(await page.textContent('#tip-hash')).toBe(status.tip.hash);
    expect(await page.textContent('#root')).toBe(root.root);
    for (const s of ['active', 'expired', 'lapsed']) expect({ s, n: await page.textContent(`#count-${s}`) }).toEqual({ s, n: String(status.counts[s]) });
    expect(status.counts).toEqual({ active: 3, expired: 1, lapsed: 1 });

    expect(status.sync).toBe('not-following');
    expect(await page.textContent('#sync')).toBe('static index');
    expect(await page.textContent('#lag')).toBe('not following a node');
    expect(await page.textContent('#live')).toBe('');
    expect(await page.$$('#live .dot')).toHaveLength(0);
    expect(requested.filter((u) => u.startsWith('/v1/events'))).toEqual([]);
    await shot('dashboard-desktop.png');
  });

  it('lists the registry as /v1/nodes?status=all does, with an ended-at column, coloured status and rows linking to the node page', async () => {
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    expect(nodes).toHaveLength(5);
    expect(await cells('#nodes')).toEqual(nodes.map((n, i) => [
      String(i + 1), n.address, n.status, String(n.firstHeight), String(n.renewals), String(n.expiryHeight), n.endedHeight === null ? '—' : String(n.endedHeight), coins(n.balance),
    ]));
    expect(await page.$$eval('#nodes thead th', (ths) => ths.map((th) => th.textContent))).toContain('ended at');
    expect(await page.$$eval('#nodes tbody a', (as) => as.map((a) => a.getAttribute('href')))).toEqual(nodes.map((n) => `/node/${n.address}`));
    const colour = (s: string): Promise<string> => page.$eval(`#nodes .badge.${s}`, (b) => getComputedStyle(b).backgroundColor);
    const colours = [await colour('active'), await colour('expired'), await colour('lapsed')];
    expect(new Set(colours).size).toBe(3);
    expect(colours).not.toContain('rgba(0, 0, 0, 0)');
  });

  it('draws active nodes as a step line with a height axis of ticks, and no dots', async () => {
    const { points } = await api<{ points: Array<{ height: number; active: number }> }>('/v1/history/active?points=200');
    expect(points).toHaveLength(200);
    expect(await page.$$('#chart svg circle')).toHaveLength(0);
    const line = (await page.getAttribute('#chart svg polyline', 'points'))!.split(' ').map((p) => p.split(',').map(Number) as [number, number]);
    // A step line: one vertex per point, and one more before each change of height.
    expect(line).toHaveLength(2 * points.length - 1);
    const at = line.filter((_, i) => i % 2 === 0);
    for (let i = 1; i < points.length; i++) {
      expect(at[i]![0]).toBeGreaterThan(at[i - 1]![0]);
      expect(Math.sign(at[i - 1]![1] - at[i]![1])).toBe(Math.sign(points[i]!.active - points[i - 1]!.active));
    }
    const xTicks = await page.$$eval('#chart svg .x-axis text[data-height]', (ts) => ts.map((t) => Number(t.textContent)));
    expect(xTicks.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < xTicks.length; i++) expect(xTicks[i]).toBeGreaterThan(xTicks[i - 1]!);
    expect(xTicks[0]).toBeGreaterThanOrEqual(points[0]!.height);
    expect(xTicks[xTicks.length - 1]).toBeLessThanOrEqual(points[points.length - 1]!.height);
    expect(await page.$$eval('#chart svg .y-axis text[data-value]', (ts) => ts.map((t) => t.textContent))).toEqual(['0', '1', '2', '3', '4']);
  });

  it('searches the whole registry on the server: a node on a later page is found', async () => {
    await page.goto(`${base}/?limit=2`);
    await ready();
    await page.selectOption('#status', 'all');
    await page.waitForFunction(() => document.getElementById('nodes-caption')?.textContent?.includes('page 1'));
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    const erin = nodes[4]!;
    expect((await cells('#nodes')).map((r) => r[1])).toEqual([nodes[0]!.address, nodes[1]!.address]);
    const part = erin.address!.slice(8, 20).toUpperCase();
    await page.fill('#search', part);
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.getElementById('nodes-caption')?.textContent?.includes('across the registry'));
    expect((await cells('#nodes')).map((r) => r[1])).toEqual([erin.address]);
    expect(requested).toContain(`/v1/search?limit=50&q=${encodeURIComponent(part)}`);
    expect(await page.textContent('#nodes-caption')).toBe('1 match across the registry');

    await page.fill('#search', 'zzzz');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.getElementById('message')?.textContent === 'no registration matches');
    expect(await cells('#nodes')).toEqual([]);
    await page.fill('#search', '');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 2);
  });

  it('opens a node page from the table: history rows, forecasts and txid links as the API has them', async () => {
    await page.goto(`${base}/`);
    await ready();
    await page.selectOption('#status', 'all');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 5);
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    const alice = nodes[1]!;
    await Promise.all([page.waitForURL(`${base}/node/${alice.address}`), page.click(`#nodes a[href="/node/${alice.address}"]`)]);
    await ready();
    const info = await api<{ registration: ListedNode; history: HistoryEntry[]; balance: string }>(`/v1/nodes/${alice.address}`);
    expect(info.history.map((h) => h.event)).toEqual(['registered', 'renewed', 'renewed']);
    expect(await page.textContent('#node-address')).toBe(alice.address);
    const rows = await historyRows(alice.address!);
    expect(rows.map((r) => r[1])).toEqual(['registered', 'renewed', 'rejected', 'renewed']);
    expect(rows[2]![3]).toMatch(/^ALREADY_REGISTERED the stake already has a live registration/);
    expect(await cells('#history')).toEqual(rows);
    expect(await page.$$eval('#history a.txid', (as) => as.map((a) => a.getAttribute('href'))))
      .toEqual(rows.map((r) => EXPLORER.replace('{txid}', r[2]!)));
    const r = info.registration;
    expect(await page.textContent('#fact-blocks dd')).toBe(String(r.blocksUntilExpiry));
    expect(await page.textContent('#fact-renew dd')).toBe(String(r.renewBy));
    expect(await page.textContent('#fact-margin dd')).toBe(coins(r.stakeMargin));
    expect(await page.textContent('#fact-expires dd')).toBe(new Date(r.expiresAt! * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'));
    expect(await page.textContent('#fact-ended dd')).toBe('—');

    const { points } = await api<{ points: Array<{ height: number; balance: string }> }>(`/v1/nodes/${alice.address}/balances`);
    expect(points.length).toBeGreaterThan(1);
    expect(points.at(-1)!.balance).toBe(info.balance);
    expect(await page.$$('#balance-chart svg circle')).toHaveLength(0);
    const vertices = (await page.getAttribute('#balance-chart svg polyline', 'points'))!.split(' ');
    expect(vertices).toHaveLength(2 * points.length); // the steps, then held to the tip
    expect((await page.$$('#balance-chart svg .x-axis text[data-height]')).length).toBeGreaterThanOrEqual(3);
    await shot('node-desktop.png');
  });

  it('shows the end of a lapsed node, and links no txid when --explorer-url is unset', async () => {
    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=lapsed');
    const dave = nodes[0]!;
    await page.goto(`${plainBase}/node/${dave.address}`);
    await ready();
    const info = await api<{ history: HistoryEntry[] }>(`/v1/nodes/${dave.address}/history`);
    expect(info.history.map((h) => h.event)).toEqual(['registered', 'renewed', 'lapsed']);
    const rows = await historyRows(dave.address!);
    expect(rows.map((r) => r[1])).toEqual(['registered', 'renewed', 'rejected', 'rejected', 'lapsed']);
    expect(await cells('#history')).toEqual(rows);
    expect(await page.textContent('#fact-ended dd')).toBe(String(dave.endedHeight));
    expect(await page.textContent('#fact-blocks dd')).toBe('—');
    expect(await page.$$('a.txid')).toHaveLength(0);
    expect(await page.$$eval('#history .txid', (ts) => ts.map((t) => t.textContent))).toEqual(rows.map((r) => r[2]).filter((t) => t !== '—'));
  });

  it('lists rejected announcements with reason text, and filters them by reason', async () => {
    await page.goto(`${base}/`);
    await ready();
    const all = await api<{ rejected: RejectedAttempt[] }>('/v1/rejected?limit=25');
    expect(all.rejected).toHaveLength(20);
    const row = (a: RejectedAttempt): string[] => [String(a.height), a.txid, String(a.vout), a.kind ?? 'undecodable', `rejected ${a.reason}${a.reasonText}`];
    expect(await cells('#rejected-table')).toEqual(all.rejected.map(row));
    await page.selectOption('#reason', 'MULTIPLE_ANNOUNCEMENTS');
    await page.waitForFunction(() => document.querySelectorAll('#rejected-table tbody tr').length === 2);
    const some = await api<{ rejected: RejectedAttempt[] }>('/v1/rejected?limit=25&reason=MULTIPLE_ANNOUNCEMENTS');
    expect(await cells('#rejected-table')).toEqual(some.rejected.map(row));
    expect(await page.textContent('#reason-text')).toBe(some.rejected[0]!.reasonText);
  });

  it('computes the payout table of a chosen window through /v1/payouts', async () => {
    await page.fill('#pay-from', '440');
    await page.fill('#pay-to', '445');
    await page.fill('#pay-amount', '1000003');
    await page.click('#payouts-form button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#payouts-table tbody tr').length > 0);
    const t = await api<{ payouts: Array<{ address: string; weight: number; amount: string }>; payoutsHash: string }>('/v1/payouts?from=440&to=445&amount=1000003&weight=uptime');
    expect(await cells('#payouts-table')).toEqual(t.payouts.map((p) => [p.address, String(p.weight), coins(p.amount)]));
    expect(await page.textContent('#payouts-summary')).toContain(t.payoutsHash);
  });

  it('keeps every table inside its card at 390 px wide', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const inside = (): Promise<Array<{ table: string; table_right: number; card_right: number; overflow: number }>> =>
      page.$$eval('table', (ts) => ts.map((t) => {
        const card = t.closest('section')!.getBoundingClientRect();
        const box = t.getBoundingClientRect();
        const wrap = t.parentElement!;
        return { table: t.id, table_right: Math.round(box.right), card_right: Math.round(card.right), overflow: wrap.scrollWidth - wrap.clientWidth };
      }));
    await page.goto(`${base}/`);
    await ready();
    await page.selectOption('#status', 'all');
    await page.waitForFunction(() => document.querySelectorAll('#nodes tbody tr').length === 5);
    await page.fill('#pay-from', '440');
    await page.click('#payouts-form button[type=submit]');
    await page.waitForFunction(() => document.querySelectorAll('#payouts-table tbody tr').length > 0);
    const main = await inside();
    expect(main.map((m) => m.table)).toEqual(['nodes', 'rejected-table', 'payouts-table']);
    for (const m of main) {
      expect(m.table_right).toBeLessThanOrEqual(m.card_right);
      expect(m.overflow).toBe(0);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    // A reason code wraps only after an underscore: each of its words stays on one line.
    await page.waitForFunction(() => document.querySelectorAll('#rejected-table .reason').length > 0);
    const words = await page.$$eval('.reason .word', (ws) => ws.map((w) => ({ text: w.textContent, lines: w.getClientRects().length })));
    expect(words.length).toBeGreaterThan(1);
    expect(words.filter((w) => w.lines !== 1)).toEqual([]);
    await shot('dashboard-390.png');

    const { nodes } = await api<{ nodes: ListedNode[] }>('/v1/nodes?status=all');
    await page.goto(`${base}/node/${nodes[4]!.address}`);
    await ready();
    for (const m of await inside()) {
      expect(m.table_right).toBeLessThanOrEqual(m.card_right);
      expect(m.overflow).toBe(0);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot('node-390.png');
    await page.setViewportSize({ width: 1200, height: 900 });
  });

  // Nothing the chain supplies is free text: addresses are rendered from
  // script templates and reasons come from a closed list. What a visitor or
  // an operator types is, so those are the hostile strings here.
  it('writes hostile input as text, never as markup', async () => {
    const evil = '<img src=x onerror="document.body.dataset.pwned=1">';
    await page.goto(`${base}/node/${encodeURIComponent(evil)}`);
    await ready();
    expect(await page.textContent('#node-address')).toBe(evil);
    expect(await page.textContent('#node-message')).toMatch(/^params\/stake: /);
    expect(await page.$$('main img')).toHaveLength(0);

    await page.goto(`${base}/`);
    await ready();
    await page.fill('#search', evil);
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => document.getElementById('message')?.textContent !== '');
    expect(await page.$$('main img')).toHaveLength(0);

    const odd = await buildServer({ db: idx.db, params: regtest, explorerUrl: 'https://explorer.example/tx/{txid}?x="><b id="pwn">' });
    try {
      const oddBase = (await odd.listen('127.0.0.1', 0)).replace(/\/$/, '');
      await page.goto(`${oddBase}/node/${(await api<{ nodes: ListedNode[] }>('/v1/nodes'))!.nodes[0]!.address}`);
      await ready();
      expect(await page.$$('#pwn')).toHaveLength(0);
      const href = await page.getAttribute('#history a.txid', 'href');
      expect(href).toMatch(/^https:\/\/explorer\.example\/tx\/[0-9a-f]{64}\?x="><b id="pwn">$/);
    } finally {
      await odd.close();
    }
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();
    await expect(buildServer({ db: idx.db, params: regtest, explorerUrl: 'javascript:alert(1)//{txid}' })).rejects.toThrow(/must be an http:\/\/ or https:\/\/ URL/);
    await expect(buildServer({ db: idx.db, params: regtest, explorerUrl: 'https://explorer.example/tx/' })).rejects.toThrow(/must contain \{txid\}/);
  });

  it('fetches nothing from outside the server and logs no errors but the refused lookups', () => {
    expect(foreign).toEqual([]);
    expect(problems.filter((p) => !/status of 400 \(Bad Request\)/.test(p))).toEqual([]);
  });
});
