/**
 * What the dashboard's pages share: the style sheet, the page frame (header
 * with tip and sync state, navigation) and one script of helpers served as
 * GET /common.js. Plain text, no build step. Nothing from the chain or the
 * request is written into the HTML: the scripts fetch the JSON API and set
 * textContent and attributes, so no chain-derived string can become markup.
 */

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

export const STYLE = `
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d2430;background:#f4f5f7}
a{color:#1558b0}
header{display:flex;flex-wrap:wrap;gap:.4em 1.4em;align-items:baseline;padding:.7em 1.2em;background:#1d2430;color:#fff}
header a{color:#fff;text-decoration:none}
header h1{font-size:1.15em;margin:0}
header nav{display:flex;gap:1em;margin-left:auto}
header nav a{color:#c9d3e0}
header nav a:hover{color:#fff;text-decoration:underline}
.tiphash{display:inline-block;max-width:12em;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;vertical-align:bottom;color:#aab4c2;overflow-wrap:normal}
.sync{display:inline-flex;gap:.35em;align-items:baseline}
.sync .dot{color:#34c759}.sync .dot.behind{color:#f5b400}
main{max-width:1100px;margin:0 auto;padding:1em}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:.8em 1em;margin-bottom:1em;min-width:0}
h2{font-size:1.02em;margin:0 0 .6em}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.93em;overflow-wrap:anywhere}
.reason{overflow-wrap:normal}.reason .word{display:inline-block}
.muted{color:#5f6b7a}
.counts{display:flex;gap:.8em}
.count{flex:1;text-align:center;padding:.4em;border-radius:6px;background:#f0f2f5}
.count b{display:block;font-size:1.6em}
.count.active b{color:#137333}.count.expired b{color:#8a6d00}.count.lapsed b{color:#b3261e}
.table-wrap{max-width:100%;overflow-x:auto}
table{border-collapse:collapse;width:100%}
caption{text-align:left;color:#5f6b7a;padding-bottom:.3em}
th,td{text-align:left;padding:.35em .5em;border-bottom:1px solid #eceef1;vertical-align:top}
th{font-weight:600;color:#3c4653;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.addr{min-width:10em}
tbody tr:hover{background:#f7f9fc}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:.88em;font-weight:600;white-space:nowrap}
.badge.active,.badge.registered{background:#e6f4ea;color:#137333}
.badge.renewed{background:#e8f0fe;color:#1a56b3}
.badge.expired{background:#fef7e0;color:#7a5d00}
.badge.lapsed,.badge.rejected{background:#fce8e6;color:#b3261e}
form.controls{display:flex;flex-wrap:wrap;gap:.5em .8em;margin-bottom:.6em;align-items:end}
form.controls label{display:flex;flex-direction:column;font-size:.88em;color:#3c4653;gap:.15em}
form.controls label.grow{flex:1 1 16em}
input,select,button{font:inherit;padding:.3em .5em;border:1px solid #b8c0cc;border-radius:5px;background:#fff}
button{cursor:pointer;background:#f0f2f5}
button:disabled{cursor:default;opacity:.5}
.message{color:#b3261e;min-height:1.2em}
.note{color:#5f6b7a;margin:.4em 0;overflow-wrap:anywhere}
dl.facts{display:grid;grid-template-columns:repeat(auto-fill,minmax(15em,1fr));gap:.6em 1.2em;margin:0}
dl.facts div{min-width:0}
dl.facts div.wide{grid-column:1/-1}
dl.facts dt{font-size:.85em;color:#5f6b7a}
dl.facts dd{margin:0;overflow-wrap:anywhere}
svg text{font-size:11px;fill:#5f6b7a}
.sr-only{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
@media (max-width:640px){
  main{padding:.5em}
  section{padding:.6em .6em}
  .opt{display:none}
  th,td{padding:.3em .3em}
  th,th.num{white-space:normal}
  td.addr{min-width:7em}
  .reason{font-size:.85em}
  header nav{margin-left:0}
}
`;

/** The frame every page shares; `body` is the page's own markup, `scripts` its script paths after /common.js. */
export function pageFrame(opts: { network: string; title: string; explorerUrl: string | null; body: string; scripts: string[] }): string {
  const net = escapeHtml(opts.network);
  const explorer = opts.explorerUrl === null ? '' : `<meta name="nodereg-explorer" content="${escapeHtml(opts.explorerUrl)}">\n`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
${explorer}<link rel="icon" href="data:,"><title>${escapeHtml(opts.title)} · nodereg · ${net}</title><style>${STYLE}</style></head>
<body>
<header><h1><a href="/">nodereg · <span id="network">${net}</span></a></h1>
<span>tip <b id="tip-height">…</b> <span id="tip-hash" class="mono tiphash"></span></span>
<span class="sync" id="sync-state"><span id="live" aria-hidden="true"></span><span>sync <b id="sync">…</b></span><span id="lag" class="muted"></span></span>
<nav aria-label="views"><a href="/#registry">Registry</a><a href="/#rejected">Rejected</a><a href="/#payouts">Payouts</a></nav>
</header>
<main>
${opts.body}
<p class="muted">API: <a href="/v1/openapi.json">/v1/openapi.json</a> · <a href="/metrics">/metrics</a></p>
</main>
${['/common.js', ...opts.scripts].map((s) => `<script src="${s}" defer></script>`).join('\n')}
</body></html>`;
}

/** Helpers of both pages, as `window.NR`: plain ES2020, no template literals (it lives in one). */
export const COMMON_JS = String.raw`'use strict';
window.NR = (function () {
  var $ = function (id) { return document.getElementById(id); };
  var SVG = 'http://www.w3.org/2000/svg';
  var meta = document.querySelector('meta[name="nodereg-explorer"]');
  var explorer = meta && /^https?:\/\//.test(meta.content) ? meta.content : null;

  function getJson(path) {
    return fetch(path, { headers: { accept: 'application/json' } }).then(function (res) {
      return res.json().then(function (body) { return { status: res.status, body: body }; });
    });
  }
  function text(id, value) { $(id).textContent = String(value); }
  /** Base units as coins with 8 decimals; exact (string arithmetic), negative too. */
  function coins(units) {
    var s = String(units), neg = s.charAt(0) === '-';
    if (neg) s = s.slice(1);
    s = s.padStart(9, '0');
    return (neg ? '−' : '') + s.slice(0, -8) + '.' + s.slice(-8);
  }
  function el(tag, attrs, children) {
    var svg = attrs && attrs.svg;
    var e = svg ? document.createElementNS(SVG, tag) : document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k !== 'svg' && attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, String(attrs[k])); });
    (children || []).forEach(function (c) { if (c !== null && c !== undefined) e.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c); });
    return e;
  }
  function td(children, cls) { return el('td', cls ? { class: cls } : {}, children); }
  /** A txid, linked through --explorer-url when the server has one. */
  function txLink(txid) {
    if (!txid) return el('span', { class: 'muted' }, ['—']);
    if (!explorer || !/^[0-9a-f]{64}$/.test(txid)) return el('span', { class: 'mono txid' }, [txid]);
    return el('a', { class: 'mono txid', href: explorer.split('{txid}').join(txid), rel: 'noopener noreferrer' }, [txid]);
  }
  function nodeHref(n) { return '/node/' + encodeURIComponent(n.address || n.stakeScript); }
  function badge(word) { return el('span', { class: 'badge ' + word }, [word]); }
  /** A reason code: it may wrap after an underscore, never inside a word (each word is one unbreakable box). */
  function reason(code) {
    var parts = [];
    String(code).split('_').forEach(function (w, i, all) {
      parts.push(el('span', { class: 'word' }, [w + (i < all.length - 1 ? '_' : '')]));
      if (i < all.length - 1) parts.push(el('wbr'));
    });
    return el('span', { class: 'mono reason' }, parts);
  }
  function dash(v) { return v === null || v === undefined ? '—' : String(v); }

  /** About 'count' round steps (1, 2 or 5 × 10^k; whole numbers when 'whole') within lo..hi, and the step. */
  function ticks(lo, hi, count, whole) {
    if (hi <= lo) return [lo];
    var raw = (hi - lo) / count, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    var step = (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * p;
    if (whole) step = Math.max(1, Math.round(step));
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.round(v * 1e8) / 1e8);
    return { values: out, step: step };
  }

  /**
   * A step line over block heights: x is the height axis (ticks at round
   * heights), y the value axis (from 0 with opts.zero, else around the
   * values; round ticks beyond both ends). No markers on the line; each value is held until
   * the next point. points: [{x: height, y: number}]. The drawing is as wide
   * as its container, so its labels keep their size on a phone.
   */
  function stepChart(container, points, opts) {
    var W = Math.max(300, Math.round(container.clientWidth || 720)), H = 230, L = opts.left || 44, R = 14, T = opts.yLabel ? 26 : 14, B = 38;
    var first = points[0].x, last = Math.max(points[points.length - 1].x, opts.toX || 0);
    var ys = points.map(function (p) { return p.y; }).concat(opts.refLine === undefined ? [] : [opts.refLine]);
    var max = Math.max(opts.minMax || 0, Math.max.apply(null, ys));
    // From 0 for counts; around the values (and the reference line) for amounts, so a change shows.
    var lo = opts.zero ? 0 : Math.min.apply(null, ys);
    var pad = opts.zero ? 0 : ((max - lo) || Math.abs(max) * 0.05 || 1) * 0.15;
    var yt = ticks(Math.max(0, lo - pad), max + pad, 4, opts.whole);
    while (yt.values[0] > Math.max(0, lo - pad) + 1e-9) yt.values.unshift(Math.round((yt.values[0] - yt.step) * 1e8) / 1e8);
    while (yt.values[yt.values.length - 1] < max + pad - 1e-9) yt.values.push(Math.round((yt.values[yt.values.length - 1] + yt.step) * 1e8) / 1e8);
    var bottom = yt.values[0], top = yt.values[yt.values.length - 1];
    var x = function (h) { return L + (last === first ? 0 : (h - first) / (last - first)) * (W - L - R); };
    var y = function (n) { return H - B - (top === bottom ? 0 : (n - bottom) / (top - bottom)) * (H - T - B); };
    var parts = [];
    points.forEach(function (p, i) {
      if (i > 0) parts.push(x(p.x).toFixed(1) + ',' + y(points[i - 1].y).toFixed(1));
      parts.push(x(p.x).toFixed(1) + ',' + y(p.y).toFixed(1));
    });
    var end = points[points.length - 1];
    if (last > end.x) parts.push(x(last).toFixed(1) + ',' + y(end.y).toFixed(1));
    var svg = el('svg', { svg: 1, viewBox: '0 0 ' + W + ' ' + H, width: '100%', role: 'img', 'aria-label': opts.label, 'data-max': max, 'data-first': first, 'data-last': last }, [
      el('title', { svg: 1 }, [opts.label]),
    ]);
    var yAxis = el('g', { svg: 1, class: 'y-axis' });
    yt.values.forEach(function (v) {
      yAxis.appendChild(el('line', { svg: 1, x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: v === bottom ? '#9aa4b1' : '#eceef1' }));
      yAxis.appendChild(el('text', { svg: 1, x: L - 6, y: y(v) + 4, 'text-anchor': 'end', 'data-value': v }, [String(v)]));
    });
    var xAxis = el('g', { svg: 1, class: 'x-axis' }, [el('line', { svg: 1, x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: '#9aa4b1' })]);
    ticks(first, last, Math.max(2, Math.floor((W - L - R) / 90)), true).values.forEach(function (h) {
      xAxis.appendChild(el('line', { svg: 1, x1: x(h), x2: x(h), y1: H - B, y2: H - B + 5, stroke: '#9aa4b1' }));
      xAxis.appendChild(el('text', { svg: 1, x: x(h), y: H - B + 17, 'text-anchor': 'middle', 'data-height': h }, [String(h)]));
    });
    xAxis.appendChild(el('text', { svg: 1, x: W - R, y: H - 3, 'text-anchor': 'end' }, ['block height']));
    if (opts.yLabel) yAxis.appendChild(el('text', { svg: 1, x: 2, y: 11 }, [opts.yLabel]));
    svg.appendChild(yAxis);
    svg.appendChild(xAxis);
    if (opts.refLine !== undefined) {
      svg.appendChild(el('line', { svg: 1, class: 'ref', x1: L, x2: W - R, y1: y(opts.refLine), y2: y(opts.refLine), stroke: '#b3261e', 'stroke-dasharray': '4 4' }));
      svg.appendChild(el('text', { svg: 1, x: L + 6, y: y(opts.refLine) + 14 }, [opts.refLabel || '']));
    }
    svg.appendChild(el('polyline', { svg: 1, points: parts.join(' '), fill: 'none', stroke: '#1a73e8', 'stroke-width': 2, 'stroke-linejoin': 'round' }));
    container.replaceChildren(svg);
    return svg;
  }

  /**
   * The header: tip and an honest sync state. A static index (nodereg
   * serve) says so and shows no live dot; a following server shows the dot
   * only while its event stream is open, amber when behind the node.
   */
  var status = null, streamOpen = false;
  function paintSync() {
    if (!status) return;
    var following = status.sync !== 'not-following';
    text('sync', following ? status.sync : 'static index');
    var lag = following && status.nodeTip && status.tip ? Math.max(0, status.nodeTip.height - status.tip.height) : null;
    text('lag', lag === null ? (following ? '' : 'not following a node') : lag === 0 ? 'at the node tip' : lag + ' block' + (lag === 1 ? '' : 's') + ' behind the node');
    var live = $('live');
    live.replaceChildren();
    if (following && streamOpen && status.sync !== 'node-unreachable') {
      live.appendChild(el('span', { class: 'dot' + (lag ? ' behind' : ''), title: 'receiving live updates' }, ['●']));
      live.appendChild(document.createTextNode(' live'));
    }
  }
  function loadStatus() {
    return getJson('/v1/status').then(function (r) {
      status = r.body;
      text('tip-height', status.tip ? status.tip.height : 'empty');
      text('tip-hash', status.tip ? status.tip.hash : '');
      $('tip-hash').title = status.tip ? status.tip.hash : '';
      paintSync();
      return status;
    });
  }
  /** Calls onBlock (at most once a second) on new blocks; only on a following server. */
  function follow(onBlock) {
    if (!status || status.sync === 'not-following' || !window.EventSource) return;
    var es = new EventSource('/v1/events'), pending = null;
    es.onopen = function () { streamOpen = true; paintSync(); };
    es.onerror = function () { streamOpen = false; paintSync(); };
    var soon = function () {
      if (pending) return;
      pending = setTimeout(function () { pending = null; loadStatus().then(onBlock); }, 1000);
    };
    ['block', 'reorg', 'reset'].forEach(function (t) { es.addEventListener(t, soon); });
  }

  return { $: $, getJson: getJson, text: text, coins: coins, el: el, td: td, txLink: txLink, nodeHref: nodeHref, badge: badge, reason: reason, dash: dash,
    stepChart: stepChart, loadStatus: loadStatus, follow: follow, explorer: explorer };
})();
`;
