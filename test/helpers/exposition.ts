import { spawnSync } from 'node:child_process';

/**
 * Checks a Prometheus text exposition. `promtool check metrics` (Debian's
 * prometheus package, installed by tools/ensure-promtool.sh) when it is on
 * the PATH; otherwise our own exact check of the rules promtool applies,
 * so the test means the same thing on a machine without it.
 */
export function checkExposition(text: string): { checker: 'promtool' | 'builtin'; problems: string[] } {
  const run = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (run.error && (run.error as NodeJS.ErrnoException).code === 'ENOENT') return { checker: 'builtin', problems: expositionProblems(text) };
  const problems = `${run.stdout}${run.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean);
  if (run.status !== 0 && problems.length === 0) problems.push(`promtool exited ${run.status}`);
  return { checker: 'promtool', problems };
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const SUFFIXES: Record<string, string[]> = { histogram: ['_bucket', '_sum', '_count'], summary: ['_sum', '_count', ''], counter: [''], gauge: [''], untyped: [''] };

function parseLabels(s: string): Array<[string, string]> | null {
  const out: Array<[string, string]> = [];
  const re = /\s*([^=\s]+)\s*=\s*"((?:[^"\\\n]|\\[\\"n])*)"\s*(,|$)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) return null;
    out.push([m[1]!, m[2]!]);
    at = re.lastIndex;
  }
  return out;
}

const number = (v: string): number | null => (/^[+-]?Inf$/.test(v) ? (v.startsWith('-') ? -Infinity : Infinity) : v === 'NaN' ? NaN : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) ? Number(v) : null);

/** The text format's rules and promtool's lint rules, one message per violation. */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const seen = new Set<string>();
  const finished = new Set<string>();
  let current: string | null = null;
  const buckets = new Map<string, Array<{ le: number; value: number }>>();
  const counts = new Map<string, number>();
  const family = (sample: string): string | null => {
    for (const [name, t] of type) for (const suffix of SUFFIXES[t]!) if (sample === name + suffix) return name;
    return null;
  };
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta) {
      const [, kind, name, rest = ''] = meta;
      if (!NAME.test(name!)) problems.push(`${name} invalid metric name`);
      if (name !== current) {
        if (finished.has(name!)) problems.push(`${name} metadata after its family ended`);
        if (current) finished.add(current);
        current = name!;
      }
      if (kind === 'HELP') {
        if (help.has(name!)) problems.push(`${name} second HELP line`);
        help.set(name!, rest);
      } else {
        if (type.has(name!)) problems.push(`${name} second TYPE line`);
        if (!TYPES.has(rest)) problems.push(`${name} unknown type "${rest}"`);
        type.set(name!, rest);
      }
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?$/.exec(line);
    if (!m) {
      problems.push(`unparsable line: ${line}`);
      continue;
    }
    const [, sample, rawLabels = '', value] = m;
    const labels = parseLabels(rawLabels);
    if (labels === null) {
      problems.push(`${sample} unparsable labels {${rawLabels}}`);
      continue;
    }
    for (const [l] of labels) if (!LABEL.test(l) || l.startsWith('__')) problems.push(`${sample} invalid label name ${l}`);
    if (new Set(labels.map(([l]) => l)).size !== labels.length) problems.push(`${sample} repeated label`);
    const v = number(value!);
    if (v === null) problems.push(`${sample} invalid value ${value}`);
    const fam = family(sample!);
    if (fam === null) {
      problems.push(`${sample} sample without a TYPE line`);
      continue;
    }
    if (fam !== current) problems.push(`${sample} sample outside its family's block`);
    const key = `${sample}{${labels.filter(([l]) => l).map(([l, x]) => `${l}=${x}`).sort().join(',')}}`;
    if (seen.has(key)) problems.push(`${key} duplicate series`);
    seen.add(key);
    if (type.get(fam) === 'histogram') {
      const series = `${fam}{${labels.filter(([l]) => l !== 'le').map(([l, x]) => `${l}=${x}`).sort().join(',')}}`;
      if (sample!.endsWith('_bucket')) {
        const le = labels.find(([l]) => l === 'le');
        const bound = le ? number(le[1]) : null;
        if (bound === null) problems.push(`${sample} bucket without a valid le label`);
        else buckets.set(series, [...(buckets.get(series) ?? []), { le: bound, value: v ?? NaN }]);
      } else if (sample!.endsWith('_count')) counts.set(series, v ?? NaN);
    }
  }
  for (const [name, t] of type) {
    if (!help.has(name) || help.get(name) === '') problems.push(`${name} no help text`);
    if (t === 'counter' && !name.endsWith('_total')) problems.push(`${name} counter metrics should have "_total" suffix`);
    if (t !== 'counter' && name.endsWith('_total')) problems.push(`${name} non-counter metrics should not have "_total" suffix`);
    if (/[A-Z]/.test(name)) problems.push(`${name} metric names should be written in 'snake_case' not 'camelCase'`);
  }
  for (const [series, bs] of buckets) {
    const inf = bs.find((b) => b.le === Infinity);
    if (!inf) problems.push(`${series} histogram without a +Inf bucket`);
    const sorted = [...bs].sort((a, b) => a.le - b.le);
    if (sorted.some((b, i) => i > 0 && b.value < sorted[i - 1]!.value)) problems.push(`${series} histogram buckets are not cumulative`);
    if (inf && counts.get(series) !== inf.value) problems.push(`${series} histogram _count differs from its +Inf bucket`);
  }
  return problems;
}
