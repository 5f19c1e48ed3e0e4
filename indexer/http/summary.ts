import type { RegistrySummary } from '../read/listing.js';
import type { RegistryView } from '../read/source.js';

const EMPTY: RegistrySummary = { counts: { active: 0, expired: 0, lapsed: 0 }, steps: [] };

/**
 * The registry summary (counts by status, active-count steps) of the
 * current tip, shared by /v1/status, /v1/history/active and /metrics. It is
 * computed once per tip: concurrent requests for a new tip wait for the same
 * computation instead of each scanning the event rows.
 */
export class TipSummary {
  private cached: { tip: string; summary: Promise<RegistrySummary> } | null = null;

  /** The summary as of the tip that `r` (the caller's view) sees. */
  async get(r: RegistryView): Promise<RegistrySummary> {
    const tip = await r.tip();
    if (tip === null) return EMPTY;
    const key = tip.hash;
    if (this.cached?.tip !== key) {
      const summary = r.summary();
      this.cached = { tip: key, summary };
      summary.catch(() => {
        if (this.cached?.summary === summary) this.cached = null;
      });
    }
    return this.cached.summary;
  }
}
