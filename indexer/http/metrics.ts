import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Indexer } from '../api.js';
import { countByStatus } from '../listing.js';
import { requireTip } from '../queries.js';
import { withSnapshot } from '../snapshot.js';
import type { DB } from '../store.js';

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
  private cachedCounts: { tip: string; counts: Record<string, number> } | null = null;

  constructor(private readonly db: DB, private readonly indexer: Indexer | null) {
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
        for (const [status, n] of Object.entries(await self.statusCounts())) this.set({ status }, n);
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

  /** Counting walks every registration, so it is done once per tip. */
  private async statusCounts(): Promise<Record<string, number>> {
    return withSnapshot(this.db, async (r) => {
      const tip = await requireTip(r).catch(() => null);
      const key = tip ? tip.hash.toString('hex') : '';
      if (this.cachedCounts?.tip !== key) this.cachedCounts = { tip: key, counts: await countByStatus(r) };
      return this.cachedCounts.counts;
    });
  }
}
