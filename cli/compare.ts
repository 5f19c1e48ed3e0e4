import { paramsHash } from '../script/params.js';
import type { ExportNode } from '../indexer/read/queries.js';
import { UserError } from './common.js';
import type { QuerySource, RootAt } from './query-source.js';

/*
 * Finding the first height at which indexers disagree. Each party answers
 * with its block hash, registry root (§2.6) and proof root (§2.9) at a
 * height; two parties agree at h when all three are equal, so a wrong proof
 * root is found as surely as a wrong registry root. Agreement is assumed to hold up to some height and
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
  readonly proofRoot: string;
}

/** What the parties' answers differ in at a height. */
export type Differing = 'block' | 'root' | 'proofRoot';

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
    /** 'chain': their blocks differ there; 'registry': same block, different registry roots; 'proof': same block and registry root, different proof roots. */
    kind: 'chain' | 'registry' | 'proof';
    /** Which of the answers differ between some two parties there. */
    differs: Differing[];
    parties: PartyRoot[];
    /** Registrations whose export differs between parties at `height`. */
    differences: Difference[];
    /** The highest height all parties share. */
    commonTip: number;
  };

/** The answers that differ between some two of `rs`. */
function differing(rs: RootAt[]): Differing[] {
  const out: Differing[] = [];
  if (rs.some((r) => r.tip !== rs[0]!.tip)) out.push('block');
  if (rs.some((r) => r.root !== rs[0]!.root)) out.push('root');
  if (rs.some((r) => r.proofRoot !== rs[0]!.proofRoot)) out.push('proofRoot');
  return out;
}

const agree = (rs: RootAt[]): boolean => differing(rs).length === 0;

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
  const named = (rs: RootAt[]): PartyRoot[] => rs.map((r, i) => ({ label: parties[i]!.label, tip: r.tip, root: r.root, proofRoot: r.proofRoot }));
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
  const differs = differing(roots);
  const kind = differs.includes('block') ? 'chain' : differs.includes('root') ? 'registry' : 'proof';
  return { result: 'divergence', height: hi, kind, differs, parties: named(roots), differences: await differencesAt(parties, hi), commonTip };
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
