import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Indexer } from '../api.js';
import type { DataSource } from '../read/source.js';
import type { EventHub } from './events.js';
import type { TipSummary } from './summary.js';

/**
 * Prometheus metrics of one server. A registry of its own (not prom-client's
 * global one), so several servers can live in one process, e.g. in tests.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new Histogram({
    name: 'nodereg_http_request_duration_seconds', help: 'HTTP request latency by route',
    labelNames: ['route', 'status'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  private readonly blocks = new Counter({ name: 'nodereg_blocks_processed_total', help: 'blocks connected by this process', registers: [this.registry] });
  private readonly txs = new Counter({ name: 'nodereg_transactions_processed_total', help: 'transactions in connected blocks', registers: [this.registry] });
  private readonly reorgs = new Counter({ name: 'nodereg_reorgs_total', help: 'chain reorganisations handled', registers: [this.registry] });
  private readonly rpcErrors = new Counter({ name: 'nodereg_rpc_errors_total', help: 'failed RPC calls (each retry counts)', registers: [this.registry] });

  constructor(private readonly source: DataSource, indexer: Indexer | null, private readonly summary: TipSummary, events?: EventHub) {
    const self = this;
    if (events) {
      new Gauge({ name: 'nodereg_event_streams', help: 'open /v1/events streams', registers: [this.registry], collect() { this.set(events.clientCount); } });
      let seen = 0;
      new Counter({
        name: 'nodereg_event_streams_dropped_total', help: 'event streams dropped for not reading', registers: [this.registry],
        collect() {
          if (events.droppedTotal > seen) this.inc(events.droppedTotal - seen);
          seen = events.droppedTotal;
        },
      });
    }
    collectDefaultMetrics({ register: this.registry });
    // prom-client also sums these by-type gauges into gauges named `…_total`, which the
    // exposition rules reserve for counters (promtool rejects them); the by-type ones stay.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'nodereg_tip_height', help: 'height of the index tip', registers: [this.registry],
      async collect() {
        const tip = await self.source.read((v) => v.tip());
        this.set(tip?.height ?? -1);
      },
    });
    new Gauge({
      name: 'nodereg_registrations', help: 'each stake\'s current registration, by status', labelNames: ['status'], registers: [this.registry],
      async collect() {
        const { counts } = await self.source.read((v) => self.summary.get(v));
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    if (indexer) {
      // The listener keeps running totals; a counter only moves forward, by the difference.
      const total = (name: string, help: string, read: () => number): void => {
        let seen = 0;
        new Counter({
          name, help, registers: [this.registry],
          collect() {
            const now = read();
            if (now > seen) this.inc(now - seen);
            seen = now;
          },
        });
      };
      total('nodereg_zmq_garbage_total', 'ZMQ messages dropped as malformed', () => indexer.zmqCounters?.garbage ?? 0);
      total('nodereg_zmq_gaps_total', 'ZMQ sequence gaps and publisher restarts seen', () => (indexer.zmqCounters?.gaps ?? 0) + (indexer.zmqCounters?.restarts ?? 0));
      new Gauge({
        name: 'nodereg_node_tip_height', help: 'height of the followed node\'s best block as last seen (-1 before the first answer)', registers: [this.registry],
        collect() { this.set(indexer.nodeTip()?.height ?? -1); },
      });
      new Gauge({
        name: 'nodereg_sync_lag_blocks', help: 'blocks the index is behind the followed node (-1 while either tip is unknown)', registers: [this.registry],
        async collect() {
          const node = indexer.nodeTip();
          const tip = await self.source.read((v) => v.tip());
          this.set(node && tip ? Math.max(0, node.height - tip.height) : -1);
        },
      });
      let lastBlockAt = Date.now();
      new Gauge({
        name: 'nodereg_seconds_since_last_block', help: 'seconds since this process connected a block (since it started, before the first)', registers: [this.registry],
        collect() { this.set((Date.now() - lastBlockAt) / 1000); },
      });
      indexer.on('block', () => { lastBlockAt = Date.now(); });
      indexer.on('block', (b) => {
        this.blocks.inc();
        this.txs.inc(b.txCount);
      });
      indexer.on('reorg', () => this.reorgs.inc());
      indexer.on('rpcError', () => this.rpcErrors.inc());
    }
  }

}

/** What `nodereg index --webhook` reports (indexer/notify/webhooks.ts keeps the counts). */
export interface WebhookStats {
  readonly queued: number;
  readonly delivered: number;
  readonly retried: number;
  readonly failed: number;
  /** Events waiting in the queue now. */
  readonly pending: number;
}

/** Adds the webhook counters to a server's metrics (docs/api.md, /metrics). */
export function webhookMetrics(m: Metrics, stats: () => WebhookStats): void {
  const registers = [m.registry];
  const total = (name: string, help: string, read: (s: WebhookStats) => number): void => {
    let seen = 0;
    new Counter({
      name, help, registers,
      collect() {
        const now = read(stats());
        if (now > seen) this.inc(now - seen);
        seen = now;
      },
    });
  };
  total('nodereg_webhook_events_queued_total', 'webhook events queued by this process', (s) => s.queued);
  total('nodereg_webhook_deliveries_total', 'webhook events delivered (answered 2xx)', (s) => s.delivered);
  total('nodereg_webhook_retries_total', 'failed webhook attempts that will be retried', (s) => s.retried);
  total('nodereg_webhook_failures_total', 'webhook events given up (refused, or retries spent)', (s) => s.failed);
  new Gauge({ name: 'nodereg_webhook_queue_length', help: 'webhook events waiting for delivery', registers, collect() { this.set(stats().pending); } });
}
