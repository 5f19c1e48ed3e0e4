import { REASON_CODES, REASON_TEXT } from '../../script/reasons.js';
import { escapeHtml, pageFrame } from './page-kit.js';

/**
 * The dashboard at GET /: the registry's state, a chart of active nodes,
 * the registry table (rows link to /node/<address>; the search asks the
 * server across the whole registry), the rejected announcements by reason,
 * and a payout table for a chosen window. Its script (GET /dashboard.js)
 * reads only the JSON API: /v1/status, /v1/root, /v1/history/active,
 * /v1/nodes, /v1/search, /v1/rejected and /v1/payouts.
 */

const reasonOptions = REASON_CODES.map((c) => `<option value="${c}" title="${escapeHtml(REASON_TEXT[c])}">${c}</option>`).join('');

const BODY = `
<section aria-labelledby="h-root"><h2 id="h-root">Registry root at the tip</h2><div id="root" class="mono">…</div></section>
<section aria-labelledby="h-counts"><h2 id="h-counts">Registrations by status</h2><div class="counts">
<div class="count active"><b id="count-active">…</b>active</div>
<div class="count expired"><b id="count-expired">…</b>expired</div>
<div class="count lapsed"><b id="count-lapsed">…</b>lapsed</div></div></section>
<section aria-labelledby="h-chart"><h2 id="h-chart">Active nodes by height</h2><div id="chart"></div></section>
<section id="registry" aria-labelledby="h-registry"><h2 id="h-registry">Registry</h2>
<form id="search-form" class="controls" role="search">
<label class="grow">Search the whole registry<input id="search" type="search" placeholder="part of an address or stake script" autocomplete="off" maxlength="120"></label>
<label>Status<select id="status"><option value="all">all</option><option value="active">active</option><option value="expired">expired</option><option value="lapsed">lapsed</option></select></label>
<button id="prev" type="button">◀ prev</button><button id="next" type="button">next ▶</button>
</form>
<div id="message" class="message" role="status" aria-live="polite"></div>
<div class="table-wrap" id="nodes-wrap"><table id="nodes"><caption id="nodes-caption">FIRST_SEEN order</caption>
<thead><tr><th scope="col" class="num opt">#</th><th scope="col">address</th><th scope="col">status</th><th scope="col" class="num opt">first height</th><th scope="col" class="num opt">renewals</th><th scope="col" class="num">expiry height</th><th scope="col" class="num">ended at</th><th scope="col" class="num opt">balance</th></tr></thead>
<tbody></tbody></table></div>
</section>
<section id="rejected" aria-labelledby="h-rejected"><h2 id="h-rejected">Rejected announcements</h2>
<form id="rejected-form" class="controls">
<label>Reason<select id="reason"><option value="">all reasons</option>${reasonOptions}</select></label>
<button id="rejected-more" type="button">older ▶</button>
</form>
<p id="reason-text" class="note"></p>
<div id="rejected-message" class="message" role="status" aria-live="polite"></div>
<div class="table-wrap"><table id="rejected-table"><caption class="sr-only">rejected announcement attempts, newest first</caption>
<thead><tr><th scope="col" class="num">height</th><th scope="col">transaction</th><th scope="col" class="num opt">output</th><th scope="col" class="opt">kind</th><th scope="col">reason</th></tr></thead>
<tbody></tbody></table></div>
</section>
<section id="payouts" aria-labelledby="h-payouts"><h2 id="h-payouts">Payouts</h2>
<form id="payouts-form" class="controls">
<label>From height<input id="pay-from" type="number" min="0" step="1" required></label>
<label>To height<input id="pay-to" type="number" min="0" step="1" required></label>
<label>Amount (base units)<input id="pay-amount" type="text" inputmode="numeric" pattern="[0-9]+" value="100000000" required></label>
<label>Weight<select id="pay-weight"><option value="uptime">uptime</option><option value="age">age</option></select></label>
<button type="submit">Compute</button>
</form>
<div id="payouts-message" class="message" role="status" aria-live="polite"></div>
<p id="payouts-summary" class="note">Pick a window of blocks and an amount: the table shares it by weight, as <span class="mono">nodereg payouts</span> does.</p>
<div class="table-wrap" id="payouts-wrap" hidden><table id="payouts-table"><caption class="sr-only">payout table</caption>
<thead><tr><th scope="col">address</th><th scope="col" class="num">weight</th><th scope="col" class="num">amount</th></tr></thead>
<tbody></tbody></table></div>
</section>`;

/** The page; only the network and the explorer template are server-side values in it, both escaped. */
export function dashboardHtml(network: string, explorerUrl: string | null = null): string {
  return pageFrame({ network, title: 'registry', explorerUrl, body: BODY, scripts: ['/dashboard.js'] });
}

/** The page's script: plain ES2020, no template literals (it lives in one). */
export const DASHBOARD_JS = String.raw`'use strict';
(function () {
  var NR = window.NR, $ = NR.$, el = NR.el, td = NR.td, text = NR.text;
  var asked = Number(new URLSearchParams(location.search).get('limit'));
  var PAGE = asked >= 1 && asked <= 1000 ? Math.floor(asked) : 100;
  var state = { cursors: [null], page: 0, next: null, searching: '' };
  var rejected = { cursor: null };

  function loadSummary() {
    return Promise.all([NR.loadStatus(), NR.getJson('/v1/root')]).then(function (r) {
      var st = r[0];
      text('count-active', st.counts.active);
      text('count-expired', st.counts.expired);
      text('count-lapsed', st.counts.lapsed);
      text('root', r[1].status === 200 ? r[1].body.root : '—');
      if (st.tip && !$('pay-to').value) {
        $('pay-to').value = st.tip.height;
        $('pay-from').value = Math.max(0, st.tip.height - 143);
      }
    });
  }

  function loadChart() {
    return NR.getJson('/v1/history/active?points=200').then(function (r) {
      if (r.status !== 200) { $('chart').textContent = r.body.message; return; }
      var pts = r.body.points.map(function (p) { return { x: p.height, y: p.active }; });
      NR.stepChart($('chart'), pts, { label: 'active registrations by block height', zero: true, whole: true, minMax: 1, yLabel: 'active' });
    });
  }

  function row(n, i) {
    return el('tr', { 'data-script': n.stakeScript }, [
      td([i === null ? '' : String(i)], 'num opt'),
      td([el('a', { href: NR.nodeHref(n), class: 'mono' }, [n.address || n.stakeScript])], 'addr'),
      td([NR.badge(n.status)]),
      td([String(n.firstHeight)], 'num opt'),
      td([String(n.renewals)], 'num opt'),
      td([String(n.expiryHeight)], 'num'),
      td([NR.dash(n.endedHeight)], 'num'),
      td([NR.coins(n.balance)], 'num opt'),
    ]);
  }

  function render(rows, offset) {
    var body = $('nodes').tBodies[0];
    body.replaceChildren.apply(body, rows.map(function (n, i) { return row(n, offset === null ? null : offset + i + 1); }));
  }

  function loadPage() {
    var q = '/v1/nodes?limit=' + PAGE + '&status=' + $('status').value;
    var cursor = state.cursors[state.page];
    if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
    return NR.getJson(q).then(function (r) {
      if (state.searching) return;
      if (r.status !== 200) { text('message', r.body.message); return; }
      text('message', '');
      state.next = r.body.nextCursor;
      render(r.body.nodes, state.page * PAGE);
      text('nodes-caption', 'FIRST_SEEN order, page ' + (state.page + 1) + ' (' + PAGE + ' a page)');
      $('prev').disabled = state.page === 0;
      $('next').disabled = !state.next;
    });
  }

  /** The search asks the server, which scans the whole registry; an empty box returns to the pages. */
  var timer = null;
  function search() {
    clearTimeout(timer);
    var q = $('search').value.trim();
    state.searching = q;
    if (!q) { text('message', ''); loadPage(); return; }
    NR.getJson('/v1/search?limit=50&q=' + encodeURIComponent(q)).then(function (r) {
      if (state.searching !== q) return;
      $('prev').disabled = true;
      $('next').disabled = true;
      if (r.status !== 200) { text('message', r.body.message); render([], 0); return; }
      var n = r.body.nodes.length;
      text('message', n === 0 ? 'no registration matches' : '');
      text('nodes-caption', n + (r.body.more ? '+' : '') + ' match' + (n === 1 ? '' : 'es') + ' across the registry' + (r.body.more ? ' (the first ' + n + ' shown)' : ''));
      render(r.body.nodes, null);
    });
  }

  function loadRejected(more) {
    var reason = $('reason').value;
    var q = '/v1/rejected?limit=25' + (reason ? '&reason=' + reason : '') + (more && rejected.cursor ? '&cursor=' + encodeURIComponent(rejected.cursor) : '');
    text('reason-text', reason ? $('reason').selectedOptions[0].title : '');
    return NR.getJson(q).then(function (r) {
      if (r.status !== 200) { text('rejected-message', r.body.message); return; }
      text('rejected-message', r.body.rejected.length === 0 ? 'no rejected announcement' + (reason ? ' with this reason' : '') : '');
      rejected.cursor = r.body.nextCursor;
      $('rejected-more').disabled = !rejected.cursor;
      var body = $('rejected-table').tBodies[0];
      var rows = r.body.rejected.map(function (a) {
        return el('tr', { 'data-reason': a.reason }, [
          td([String(a.height)], 'num'), td([NR.txLink(a.txid)], 'addr'), td([String(a.vout)], 'num opt'), td([a.kind || 'undecodable'], 'opt'),
          td([NR.badge('rejected'), ' ', NR.reason(a.reason), el('div', { class: 'muted' }, [a.reasonText])]),
        ]);
      });
      body.replaceChildren.apply(body, rows);
    });
  }

  function computePayouts(ev) {
    ev.preventDefault();
    var q = '/v1/payouts?from=' + encodeURIComponent($('pay-from').value) + '&to=' + encodeURIComponent($('pay-to').value) +
      '&amount=' + encodeURIComponent($('pay-amount').value.trim()) + '&weight=' + $('pay-weight').value;
    text('payouts-message', '');
    text('payouts-summary', 'computing…');
    NR.getJson(q).then(function (r) {
      var body = $('payouts-table').tBodies[0];
      $('payouts-wrap').hidden = r.status !== 200;
      if (r.status !== 200) { text('payouts-message', r.body.message); text('payouts-summary', ''); body.replaceChildren(); return; }
      var t = r.body;
      text('payouts-summary', t.payouts.length + ' payee' + (t.payouts.length === 1 ? '' : 's') + ' for blocks ' + t.from + '–' + t.to +
        ', ' + NR.coins(t.amount) + ' by ' + t.weight + '; table hash ' + t.payoutsHash);
      body.replaceChildren.apply(body, t.payouts.map(function (p) {
        return el('tr', {}, [
          td([el('a', { href: NR.nodeHref(p), class: 'mono' }, [p.address || p.stakeScript])], 'addr'),
          td([String(p.weight)], 'num'), td([NR.coins(p.amount)], 'num'),
        ]);
      }));
    });
  }

  $('search').addEventListener('input', function () { clearTimeout(timer); timer = setTimeout(search, 250); });
  $('search-form').addEventListener('submit', function (ev) { ev.preventDefault(); search(); });
  $('status').addEventListener('change', function () { state.cursors = [null]; state.page = 0; $('search').value = ''; state.searching = ''; loadPage(); });
  $('next').addEventListener('click', function () {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page++;
    loadPage();
  });
  $('prev').addEventListener('click', function () { if (state.page > 0) { state.page--; loadPage(); } });
  $('reason').addEventListener('change', function () { rejected.cursor = null; loadRejected(false); });
  $('rejected-more').addEventListener('click', function () { loadRejected(true); });
  $('payouts-form').addEventListener('submit', computePayouts);

  loadSummary().then(function () {
    return Promise.all([loadChart(), loadPage(), loadRejected(false)]);
  }).then(function () {
    document.body.dataset.ready = 'true';
    NR.follow(function () { loadSummary(); loadChart(); if (state.page === 0 && !state.searching) loadPage(); });
  });
})();
`;
