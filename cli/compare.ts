import { paramsHash } from '../script/params.js';
import type { ExportNode } from '../indexer/read/queries.js';
import { UserError } from './common.js';
import type { QuerySource, RootAt } from './query-source.js';

/*
 * Finding the first height at which indexers disagree. Each party answers
 * with its block hash and registry root at a height; two parties agree at h
 * when both are equal. Agreement is assumed to hold up to some height and
 * not after (a shared chain prefix and a shared history): the bisection then
 * finds that height with about log2(tip) questions per party.
 */

export interface Party {
  readonly label: string;
  readonly source: QuerySource;
}

export interface PartyRoot {
  readonly label: string;
  readonly tip: string;
  readonly root: string;
}

export interface Difference {
  readonly stakeScript: string;
  /** Each party's node of the export at the height (docs/spec.md §2.7), null where it has none. */
  readonly nodes: Array<ExportNode | null>;
}

export type Comparison =
  | { result: 'agree'; height: number; parties: PartyRoot[] }
  | {
    result: 'divergence';
    /** The first height at which some party disagrees. */
    height: number;
    /** 'chain': their blocks differ there; 'registry': same block, different roots. */
    kind: 'chain' | 'registry';
    parties: PartyRoot[];
    /** Registrations whose export differs between parties at `height`. */
    differences: Difference[];
    /** The highest height all parties share. */
    commonTip: number;
  };

const agree = (rs: RootAt[]): boolean => rs.every((r) => r.tip === rs[0]!.tip && r.root === rs[0]!.root);

/** Compares every party at their common heights; see the module comment. */
export async function compareParties(parties: readonly Party[]): Promise<Comparison> {
  const first = parties[0]!;
  for (const p of parties.slice(1)) {
    if (paramsHash(p.source.params) !== paramsHash(first.source.params)) {
      throw new UserError(`${p.label} indexes "${p.source.params.name}" with other params than ${first.label} ("${first.source.params.name}"): they cannot agree; compare indexes of one chain`);
    }
  }
  const tips = await Promise.all(parties.map((p) => p.source.root()));
  const commonTip = Math.min(...tips.map((t) => t.height));
  const cache = new Map<number, RootAt[]>();
  const at = async (h: number): Promise<RootAt[]> => {
    let rs = cache.get(h);
    if (rs === undefined) {
      rs = await Promise.all(parties.map((p) => p.source.root(h)));
      cache.set(h, rs);
    }
    return rs;
  };
  const named = (rs: RootAt[]): PartyRoot[] => rs.map((r, i) => ({ label: parties[i]!.label, tip: r.tip, root: r.root }));
  if (agree(await at(commonTip))) return { result: 'agree', height: commonTip, parties: named(await at(commonTip)) };
  // Invariant: all agree at lo (or lo = -1), some disagree at hi.
  let lo = -1;
  let hi = commonTip;
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2);
    if (agree(await at(mid))) lo = mid;
    else hi = mid;
  }
  const roots = await at(hi);
  const kind = roots.every((r) => r.tip === roots[0]!.tip) ? 'registry' : 'chain';
  return { result: 'divergence', height: hi, kind, parties: named(roots), differences: await differencesAt(parties, hi), commonTip };
}

/** The registrations on which the parties' exports at `height` differ, in stake script order. */
async function differencesAt(parties: readonly Party[], height: number): Promise<Difference[]> {
  const exports = await Promise.all(parties.map((p) => p.source.export(height)));
  const byScript = new Map<string, Array<ExportNode | null>>();
  exports.forEach((e, i) => {
    for (const n of e.nodes) {
      let row = byScript.get(n.stakeScript);
      if (row === undefined) byScript.set(n.stakeScript, row = parties.map(() => null));
      row[i] = n;
    }
  });
  const out: Difference[] = [];
  for (const [stakeScript, nodes] of [...byScript].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const shown = nodes.map((n) => JSON.stringify(n));
    if (shown.some((s) => s !== shown[0])) out.push({ stakeScript, nodes });
  }
  return out;
}
