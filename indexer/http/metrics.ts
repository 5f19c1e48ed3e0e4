import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Indexer } from '../api.js';
import { requireTip } from '../read/queries.js';
import { withSnapshot } from '../read/snapshot.js';
import type { DB } from '../store/store.js';
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

  constructor(private readonly db: DB, indexer: Indexer | null, private readonly summary: TipSummary) {
    const self = this;
    new Gauge({
      name: 'nodereg_tip_height', help: 'height of the index tip', registers: [this.registry],
      async collect() {
        const tip = await withSnapshot(self.db, (r) => requireTip(r).catch(() => null));
        this.set(tip?.height ?? -1);
      },
    });
    new Gauge({
      name: 'nodereg_registrations', help: 'each stake\'s current registration, by status', labelNames: ['status'], registers: [this.registry],
      async collect() {
        const { counts } = await withSnapshot(self.db, (r) => self.summary.get(r));
        for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
      },
    });
    if (indexer) {
      new Gauge({
        name: 'nodereg_zmq_garbage_total', help: 'ZMQ messages dropped as malformed', registers: [this.registry],
        collect() { this.set(indexer.zmqCounters?.garbage ?? 0); },
      });
      new Gauge({
        name: 'nodereg_zmq_gaps_total', help: 'ZMQ sequence gaps and publisher restarts seen', registers: [this.registry],
        collect() { this.set((indexer.zmqCounters?.gaps ?? 0) + (indexer.zmqCounters?.restarts ?? 0)); },
      });
      indexer.on('block', (b) => {
        this.blocks.inc();
        this.txs.inc(b.txCount);
      });
      indexer.on('reorg', () => this.reorgs.inc());
      indexer.on('rpcError', () => this.rpcErrors.inc());
    }
  }

}
