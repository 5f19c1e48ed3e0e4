// Jest orders suites slowest first by the durations it cached on earlier runs
// of the same checkout. A fresh clone (CI) has no such cache, and Jest then
// orders by file size, which put some of the slowest suites last, running
// alone while the other worker idled. This sequencer gives a suite without a
// cached duration its share measured here instead (suite-seconds.json: a
// `jest --json` run's suite times, scaled to an idle two-core machine's total;
// only their order matters). Add a new suite that takes more than a few seconds.
const Sequencer = require('@jest/test-sequencer').default;
const { basename } = require('node:path');

const MEASURED_S = require('./suite-seconds.json');
/** A suite not in the list: assumed middling, so it neither leads nor trails. */
const UNKNOWN_S = 15;

class MeasuredFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    const byName = (t) => MEASURED_S[basename(t.path)] ?? UNKNOWN_S;
    // Failed suites first, as Jest does; then the longest expected time first.
    return sorted
      .map((t, i) => ({ t, i, failed: this.hasFailed(t), s: t.duration != null ? t.duration / 1000 : byName(t) }))
      .sort((a, b) => (a.failed !== b.failed ? (a.failed ? -1 : 1) : b.s - a.s || a.i - b.i))
      .map((x) => x.t);
  }
}

module.exports = MeasuredFirst;
