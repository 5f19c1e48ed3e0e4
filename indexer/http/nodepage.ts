import { pageFrame } from './page-kit.js';

/**
 * The page of one stake at GET /node/<address or script hex>: its current
 * registration with the renewal forecasts, its balance over time and the
 * full history of every registration. The stake is read from the URL by the
 * script (GET /node.js), never written into the HTML by the server.
 */

const BODY = `
<p><a href="/#registry">← registry</a></p>
<section aria-labelledby="h-node"><h2 id="h-node">Node <span id="node-status"></span></h2>
<div id="node-address" class="mono">…</div>
<div id="node-message" class="message" role="status" aria-live="polite"></div>
<dl class="facts" id="facts"></dl>
</section>
<section aria-labelledby="h-balance"><h2 id="h-balance">Balance over time</h2><div id="balance-chart"></div><p id="balance-note" class="note"></p></section>
<section aria-labelledby="h-history"><h2 id="h-history">History</h2>
<div class="table-wrap"><table id="history"><caption class="sr-only">every event of every registration of this stake, and the rejected attempts that named it, oldest first</caption>
<thead><tr><th scope="col" class="num">height</th><th scope="col">event</th><th scope="col">transaction</th><th scope="col">details</th></tr></thead>
<tbody></tbody></table></div>
<p class="note" id="history-note"></p>
</section>`;

export function nodePageHtml(network: string, explorerUrl: string | null = null): string {
  return pageFrame({ network, title: 'node', explorerUrl, body: BODY, scripts: ['/node.js'] });
}

/** The page's script: plain ES2020, no template literals (it lives in one). */
export const NODE_JS = String.raw`'use strict';
(function () {
  var NR = window.NR, $ = NR.$, el = NR.el, td = NR.td, text = NR.text;
  var raw = location.pathname.replace(/^\/node\//, ''), stake = raw;
  try { stake = decodeURIComponent(raw); } catch (e) { /* left as typed: the API names what is wrong with it */ }
  var path = '/v1/nodes/' + encodeURIComponent(stake);

  function fact(label, value, id, wide) {
    return el('div', { id: id || null, class: wide ? 'wide' : null }, [el('dt', {}, [label]), el('dd', {}, [value])]);
  }
  function when(unix) {
    return unix === null ? '—' : new Date(unix * 1000).toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function showNode(r) {
    if (r.status !== 200) {
      text('node-address', stake);
      text('node-message', r.body.message);
      return false;
    }
    var n = r.body.registration;
    document.title = (n.address || n.stakeScript) + ' · ' + document.title.replace(/^[^·]*· /, '');
    text('node-address', n.address || n.stakeScript);
    text('node-message', '');
    $('node-status').replaceChildren(NR.badge(n.status));
    $('facts').replaceChildren(
      fact('stake script', el('span', { class: 'mono' }, [n.stakeScript]), null, true),
      fact('balance', NR.coins(r.body.balance)),
      fact('stake margin (balance − minimum stake)', NR.coins(n.stakeMargin), 'fact-margin'),
      fact('blocks until expiry', NR.dash(n.blocksUntilExpiry), 'fact-blocks'),
      fact('renew by height', NR.dash(n.renewBy), 'fact-renew'),
      fact('expires at (estimated)', when(n.expiresAt), 'fact-expires'),
      fact('expiry height', String(n.expiryHeight)),
      fact('ended at height', NR.dash(n.endedHeight), 'fact-ended'),
      fact('first seen', String(n.firstHeight) + ' (age ' + n.age + ' blocks)'),
      fact('renewals', String(n.renewals)),
      fact('first transaction', NR.txLink(n.firstTxid), null, true),
      fact('latest announcement', NR.txLink(n.tipTxid), null, true)
    );
    return true;
  }

  /** Events and rejections by height; within a block, end-of-block expiry and lapse last. */
  function showHistory(history, rejected) {
    var late = { expired: 1, lapsed: 1 };
    var rows = history.map(function (h) { return { height: h.height, late: late[h.event] ? 1 : 0, event: h };
    }).concat(rejected.map(function (a) { return { height: a.height, late: 0, rejected: a }; }));
    rows.forEach(function (x, i) { x.i = i; });
    rows.sort(function (a, b) { return a.height - b.height || a.late - b.late || a.i - b.i; });
    var body = $('history').tBodies[0];
    body.replaceChildren.apply(body, rows.map(function (x) {
      if (x.rejected) {
        var a = x.rejected;
        return el('tr', { 'data-event': 'rejected' }, [
          td([String(a.height)], 'num'), td([NR.badge('rejected')]), td([NR.txLink(a.txid)], 'addr'),
          td([NR.reason(a.reason), ' ', el('span', { class: 'muted' }, [a.reasonText])]),
        ]);
      }
      var h = x.event;
      return el('tr', { 'data-event': h.event }, [
        td([String(h.height)], 'num'), td([NR.badge(h.event)]), td([NR.txLink(h.txid)], 'addr'),
        td(['registration ' + h.registration + ', expiry height ' + h.expiryHeight]),
      ]);
    }));
  }

  function showBalances(r, status) {
    if (r.status !== 200) { text('balance-note', r.body.message); return; }
    var pts = r.body.points.map(function (p) { return { x: p.height, y: Number(p.balance) / 1e8 }; });
    if (pts.length === 0) { text('balance-note', 'no balance change recorded while registered'); $('balance-chart').replaceChildren(); return; }
    var min = Number(status.params.minStake) / 1e8;
    NR.stepChart($('balance-chart'), pts, {
      label: 'balance in coins by block height', toX: status.tip ? status.tip.height : 0, left: 52,
      yLabel: 'coins', refLine: min, refLabel: 'minimum stake ' + min
    });
    text('balance-note', pts.length + ' balance change' + (pts.length === 1 ? '' : 's') + ' recorded since the stake first registered' + (r.body.truncated ? ' (the latest shown)' : '') + '; the dashed line is the minimum stake.');
  }

  function load() {
    return NR.loadStatus().then(function (status) {
      return NR.getJson(path).then(function (r) {
        if (!showNode(r)) return;
        return Promise.all([NR.getJson(path + '/balances'), NR.getJson(path + '/rejected')]).then(function (more) {
          showBalances(more[0], status);
          var rej = more[1].status === 200 ? more[1].body : { recorded: false, rejected: [] };
          showHistory(r.body.history, rej.rejected);
          text('history-note', rej.recorded
            ? 'Rejected attempts are those that named this stake; an attempt too malformed to name one is listed only under rejected announcements.'
            : 'This index was created before rejected attempts were kept by stake, so some may be missing here; rebuilding the index lists them all.');
        });
      });
    });
  }

  load().then(function () {
    document.body.dataset.ready = 'true';
    NR.follow(load);
  });
})();
`;
