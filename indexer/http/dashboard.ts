/**
 * The dashboard at GET /: one HTML page and one script (GET /dashboard.js),
 * both plain text in this module, so there is no build step and nothing is
 * fetched from elsewhere. The script reads only the public API: /v1/status
 * (tip, counts), /v1/root, /v1/history/active (the chart, drawn as inline
 * SVG) and /v1/nodes (the table), and refreshes on /v1/events.
 */

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2430;background:#f6f7f9}
header{display:flex;flex-wrap:wrap;gap:1.5em;align-items:baseline;padding:.8em 1.2em;background:#1d2430;color:#fff}
header h1{font-size:1.2em;margin:0}
main{max-width:1100px;margin:0 auto;padding:1em}
section{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:.8em 1em;margin-bottom:1em}
h2{font-size:1em;margin:0 0 .6em}
.mono{font-family:ui-monospace,monospace;word-break:break-all}
.counts{display:flex;gap:1em}
.count{flex:1;text-align:center;padding:.4em;border-radius:4px;background:#f0f2f5}
.count b{display:block;font-size:1.6em}
.active b{color:#137333}.expired b{color:#8a6d00}.lapsed b{color:#b3261e}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #eceef1;white-space:nowrap}
td.addr{white-space:normal}
.controls{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:.6em;align-items:center}
.controls input[type=search]{flex:1;min-width:18em}
#message{color:#b3261e}
svg text{font-size:11px;fill:#5f6b7a}
`;

/** The page; `network` is the only server-side value in it. */
export function dashboardHtml(network: string): string {
  const net = escapeHtml(network);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,"><title>nodereg · ${net}</title><style>${STYLE}</style></head>
<body>
<header><h1>nodereg · <span id="network">${net}</span></h1>
<span>tip <b id="tip-height">…</b> <span id="tip-hash" class="mono"></span></span>
<span>sync <b id="sync">…</b></span><span id="live"></span></header>
<main>
<section><h2>Registry root at the tip</h2><div id="root" class="mono">…</div></section>
<section><h2>Registrations by status</h2><div class="counts">
<div class="count active"><b id="count-active">…</b>active</div>
<div class="count expired"><b id="count-expired">…</b>expired</div>
<div class="count lapsed"><b id="count-lapsed">…</b>lapsed</div></div></section>
<section><h2>Active nodes by height</h2><div id="chart"></div></section>
<section><h2>Registry (FIRST_SEEN order)</h2>
<form id="search-form" class="controls">
<input id="search" type="search" placeholder="address or stake script hex; Enter looks it up" autocomplete="off">
<select id="status"><option value="all">all</option><option value="active">active</option><option value="expired">expired</option><option value="lapsed">lapsed</option></select>
<button id="prev" type="button">◀ prev</button><button id="next" type="button">next ▶</button>
</form>
<div id="message"></div>
<table id="nodes"><thead><tr><th>#</th><th>address</th><th>status</th><th>first height</th><th>age</th><th>renewals</th><th>expiry height</th><th>balance</th></tr></thead><tbody></tbody></table>
</section>
<p>API: <a href="/v1/openapi.json">/v1/openapi.json</a> · <a href="/metrics">/metrics</a></p>
</main>
<script src="/dashboard.js" defer></script>
</body></html>`;
}

/** The page's script: plain ES2020, no template literals (it lives in one). */
export const DASHBOARD_JS = String.raw`'use strict';
(function () {
  var PAGE = 100;
  var $ = function (id) { return document.getElementById(id); };
  var state = { cursors: [null], page: 0, next: null, rows: [] };

  function getJson(path) {
    return fetch(path, { headers: { accept: 'application/json' } }).then(function (res) {
      return res.json().then(function (body) { return { status: res.status, body: body }; });
    });
  }
  function text(id, value) { $(id).textContent = String(value); }
  function coins(units) {
    var s = String(units).padStart(9, '0');
    return s.slice(0, -8) + '.' + s.slice(-8);
  }
  function el(tag, attrs, children) {
    var ns = tag === 'svg' || attrs.svg ? 'http://www.w3.org/2000/svg' : null;
    var e = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
    Object.keys(attrs).forEach(function (k) { if (k !== 'svg') e.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }

  function loadSummary() {
    return Promise.all([getJson('/v1/status'), getJson('/v1/root')]).then(function (r) {
      var st = r[0].body;
      text('tip-height', st.tip ? st.tip.height : 'empty');
      text('tip-hash', st.tip ? st.tip.hash : '');
      text('sync', st.sync);
      text('count-active', st.counts.active);
      text('count-expired', st.counts.expired);
      text('count-lapsed', st.counts.lapsed);
      text('root', r[1].status === 200 ? r[1].body.root : '—');
    });
  }

  function drawChart(points) {
    var W = 720, H = 220, L = 48, R = 12, T = 12, B = 28;
    var first = points[0].height, last = points[points.length - 1].height;
    var max = Math.max(1, Math.max.apply(null, points.map(function (p) { return p.active; })));
    var x = function (h) { return L + (last === first ? 0 : (h - first) / (last - first)) * (W - L - R); };
    var y = function (n) { return H - B - (n / max) * (H - T - B); };
    var line = points.map(function (p, i) {
      var prev = i === 0 ? p : points[i - 1];
      return (i === 0 ? '' : x(p.height).toFixed(1) + ',' + y(prev.active).toFixed(1) + ' ') + x(p.height).toFixed(1) + ',' + y(p.active).toFixed(1);
    }).join(' ');
    var svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': 'active registrations by height', 'data-max': max }, [
      el('line', { svg: 1, x1: L, y1: H - B, x2: W - R, y2: H - B, stroke: '#9aa4b1' }),
      el('line', { svg: 1, x1: L, y1: T, x2: L, y2: H - B, stroke: '#9aa4b1' }),
      el('text', { svg: 1, x: L - 6, y: y(max) + 4, 'text-anchor': 'end' }, [String(max)]),
      el('text', { svg: 1, x: L - 6, y: H - B + 4, 'text-anchor': 'end' }, ['0']),
      el('text', { svg: 1, x: L, y: H - 8 }, ['height ' + first]),
      el('text', { svg: 1, x: W - R, y: H - 8, 'text-anchor': 'end' }, ['height ' + last]),
      el('polyline', { svg: 1, points: line, fill: 'none', stroke: '#1a73e8', 'stroke-width': 2 }),
    ]);
    points.forEach(function (p) {
      svg.appendChild(el('circle', { svg: 1, cx: x(p.height).toFixed(1), cy: y(p.active).toFixed(1), r: 2, fill: '#1a73e8', 'data-height': p.height, 'data-active': p.active },
        [el('title', { svg: 1 }, ['height ' + p.height + ': ' + p.active + ' active'])]));
    });
    $('chart').replaceChildren(svg);
  }

  function loadChart() {
    return getJson('/v1/history/active?points=200').then(function (r) {
      if (r.status === 200) drawChart(r.body.points);
      else $('chart').textContent = r.body.message;
    });
  }

  function row(n, i) {
    return el('tr', { 'data-script': n.stakeScript, 'data-address': n.address || '' }, [
      el('td', {}, [String(i)]),
      el('td', { class: 'addr mono' }, [n.address || n.stakeScript]),
      el('td', {}, [n.status]),
      el('td', {}, [String(n.firstHeight)]),
      el('td', {}, [String(n.age)]),
      el('td', {}, [String(n.renewals)]),
      el('td', {}, [String(n.expiryHeight)]),
      el('td', {}, [coins(n.balance)]),
    ]);
  }

  function render(rows, offset) {
    $('nodes').tBodies[0].replaceChildren.apply($('nodes').tBodies[0], rows.map(function (n, i) { return row(n, offset + i + 1); }));
    filter();
  }

  /** Typing narrows the rows on screen to those whose address or script contains the text. */
  function filter() {
    var q = $('search').value.trim().toLowerCase();
    Array.prototype.forEach.call($('nodes').tBodies[0].rows, function (tr) {
      var hit = !q || tr.dataset.address.toLowerCase().indexOf(q) >= 0 || tr.dataset.script.indexOf(q) >= 0;
      tr.hidden = !hit;
    });
  }

  function loadPage() {
    var q = '/v1/nodes?limit=' + PAGE + '&status=' + $('status').value;
    var cursor = state.cursors[state.page];
    if (cursor) q += '&cursor=' + encodeURIComponent(cursor);
    return getJson(q).then(function (r) {
      if (r.status !== 200) { text('message', r.body.message); return; }
      text('message', '');
      state.next = r.body.nextCursor;
      state.rows = r.body.nodes;
      render(state.rows, state.page * PAGE);
      $('prev').disabled = state.page === 0;
      $('next').disabled = !state.next;
    });
  }

  /** Enter looks the text up as an address or script: the table shows that registration alone. */
  function lookup(ev) {
    ev.preventDefault();
    var q = $('search').value.trim();
    if (!q) { loadPage(); return; }
    getJson('/v1/nodes/' + encodeURIComponent(q)).then(function (r) {
      if (r.status === 200) {
        text('message', '');
        render([r.body.registration], 0);
      } else {
        text('message', r.body.message);
        render([], 0);
      }
    });
  }

  function refresh() {
    return Promise.all([loadSummary(), loadChart(), loadPage()]);
  }

  $('search').addEventListener('input', filter);
  $('search-form').addEventListener('submit', lookup);
  $('status').addEventListener('change', function () { state.cursors = [null]; state.page = 0; loadPage(); });
  $('next').addEventListener('click', function () {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page++;
    loadPage();
  });
  $('prev').addEventListener('click', function () { if (state.page > 0) { state.page--; loadPage(); } });

  var pending = null;
  if (window.EventSource) {
    var es = new EventSource('/v1/events');
    es.onopen = function () { text('live', '● live'); };
    es.onerror = function () { text('live', ''); };
    var soon = function () {
      if (pending) return;
      pending = setTimeout(function () { pending = null; loadSummary(); loadChart(); if (state.page === 0 && !$('search').value) loadPage(); }, 1000);
    };
    ['block', 'reorg', 'reset'].forEach(function (t) { es.addEventListener(t, soon); });
  }
  refresh().then(function () { document.body.dataset.ready = 'true'; });
})();
`;
