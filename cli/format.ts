import type { ExportJson, ExportNode } from '../indexer/read/queries.js';

/** Base units as coins with 8 decimals, trailing zeros trimmed: "42", "41.9999". */
export function coins(units: bigint | string): string {
  const v = BigInt(units);
  const whole = v / 100_000_000n;
  const frac = (v % 100_000_000n).toString().padStart(8, '0').replace(/0+$/, '');
  return frac ? `${whole}.${frac}` : whole.toString();
}

/** Pads columns of strings to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function countByStatus(nodes: ExportNode[]): Record<'active' | 'expired' | 'lapsed', number> {
  const c = { active: 0, expired: 0, lapsed: 0 };
  for (const n of nodes) c[n.status]++;
  return c;
}

export function nodesTable(nodes: ExportNode[], height: number): string {
  if (nodes.length === 0) return '(no registrations)';
  return table(
    ['#', 'status', 'address / stake script', 'first', 'age', 'renewals', 'expires', 'balance'],
    nodes.map((n, i) => [
      String(i + 1), n.status, n.address ?? n.stakeScript, String(n.firstHeight),
      String(height - n.firstHeight), String(n.renewals),
      n.status === 'active' ? String(n.expiryHeight) : `ended ${n.endedHeight}`, coins(n.balance),
    ]),
  );
}

/**
 * The readable form of an export: summary lines, then the table of the first
 * `maxNodes` nodes (FIRST_SEEN order) and how many more there are.
 */
export function summary(e: ExportJson, utxoMuhash: string | null = null, maxNodes = Infinity): string {
  const c = countByStatus(e.nodes);
  const more = e.nodes.length - maxNodes;
  return [
    `network   ${e.network}`,
    `height    ${e.height}`,
    `tip       ${e.tip}`,
    `root      ${e.root}`,
    ...(utxoMuhash ? [`utxo hash ${utxoMuhash} (Core muhash)`] : []),
    `nodes     ${c.active} active, ${c.expired} expired, ${c.lapsed} lapsed`,
    `rejected  ${e.rejected.length} announcement attempt(s)`,
    '',
    nodesTable(more > 0 ? e.nodes.slice(0, maxNodes) : e.nodes, e.height),
    ...(more > 0 ? [`… and ${more} more node(s): --all lists every node, --json prints the whole registry`] : []),
  ].join('\n');
}
