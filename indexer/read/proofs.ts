import { proofKey, proofLeaf, proofOf, proofOfPath, ProofTree, proveThroughSubtrees, type Hash32, type Subtree } from '../../script/prooftree.js';
import type { NetworkParams } from '../../script/params.js';
import { RegistryRoot, serializeRootElement, type RootElement } from '../../script/root.js';
import type { ProofJson } from '../../script/verifyproof.js';
import { CorruptRecordError, decodeEvent, decodeProofLeaf, decodeRegistration, decodeSubtree, rootElement } from '../store/codec.js';
import { K, P, parse, PROOF_SUBTREE_BITS } from '../store/layout.js';
import { PROOF_HISTORY_META } from '../store/store.js';
import {
  blockHashAt, eventsOf, exportNode, proofRootAt, registrationsAt, replay, resolveHeight, rootAt, rowBatches, stakeBalancesAt, type ExportNode,
} from './queries.js';
import type { ReadDB } from './snapshot.js';
import type { Registration } from '../types.js';

/*
 * Proofs of one registration against the proof root (docs/spec.md §2.9) and
 * diffs between the live sets of two heights. An index that keeps the
 * proof-tree history ('k' and 'n' rows, written by the engine on connect)
 * answers a proof from the summaries of the 256 subtrees under the first
 * key byte at the height asked about and the leaves then of the one subtree
 * the key falls in: a few hundred short reads, not the whole tree. Without
 * that history (an index made before it existed), the tree is rebuilt from
 * the live set of the height. Either way the last subtrees or tree read are
 * kept in memory under their root, so further proofs at that height (or at
 * any height with the same live set) read less or only walk one path.
 */

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/**
 * The registrations live at `height` (after its end-of-block processing), one
 * per stake. Replayed from the event history at the tip too: one scan of the
 * event rows measured faster than reading every open registration's row.
 */
export async function liveAt(db: ReadDB, height: number): Promise<Registration[]> {
  return liveOf(await registrationsAt(db, height));
}

/** The live ones of the registrations as of a height. */
export function liveOf(regs: readonly Registration[]): Registration[] {
  return regs.filter((r) => r.status === 'active');
}

/** The proof tree of a live set. */
export function treeOf(live: Iterable<Registration>): ProofTree {
  const t = new ProofTree();
  for (const r of live) {
    const leaf = proofLeaf(rootElement(r));
    t.insert(leaf.key, leaf.value);
  }
  return t;
}

/** Above this many registrations renewed after the height asked about, one scan of the event rows is cheaper than reading each one's events. */
const LATER_RENEWALS = 2000;

/**
 * The proof tree of the registrations live at `height`: from the registration
 * rows when few were renewed since, else from the event rows. `via` forces a
 * way (tests compare the two); 'registrations' then reads any number of
 * later renewals.
 */
export async function treeAt(db: ReadDB, height: number, via?: 'registrations' | 'events'): Promise<ProofTree> {
  if (via === 'events') return treeFromEvents(db, height);
  return (await treeFromRegistrations(db, height, via === 'registrations' ? Infinity : LATER_RENEWALS)) ?? treeFromEvents(db, height);
}

/**
 * The proof tree at `height` from the registration rows of the registrations
 * begun by then (one range scan, about one row per live registration): a row
 * holds its registration's latest state, which is its state at `height`
 * unless it was renewed later; those few are replayed from their own events.
 * Null when more than `maxLater` were.
 */
async function treeFromRegistrations(db: ReadDB, height: number, maxLater: number): Promise<ProofTree | null> {
  const tree = new ProofTree();
  const later: Buffer[] = [];
  const add = (e: RootElement): void => {
    const leaf = proofLeaf(e);
    tree.insert(leaf.key, leaf.value);
  };
  for await (const rows of rowBatches(db, K.registrationsBegunBy(height))) {
    for (const [, v] of rows) {
      const r = decodeRegistration(v);
      if (r.endedHeight !== null && r.endedHeight <= height) continue;
      if (r.tipHeight <= height) add(rootElement(r));
      else if (later.push(Buffer.from(r.stakeScript)) > maxLater) return null;
    }
  }
  for (const script of later) {
    const regs = replay(script, await eventsOf(db, script), height);
    const r = regs[regs.length - 1];
    if (r === undefined || r.status !== 'active') throw new CorruptRecordError(`registration (stake ${script.toString('hex')}: its row says it was live at height ${height}, its events do not)`);
    add(rootElement(r));
  }
  return tree;
}

/**
 * The proof tree at `height` from one scan of the event rows: each script's
 * events are replayed only as far as its current registration's state at
 * `height` (docs/spec.md §2.4), with no record built for scripts that are
 * not live there.
 */
async function treeFromEvents(db: ReadDB, height: number): Promise<ProofTree> {
  const tree = new ProofTree();
  let script: Buffer | null = null;
  let live = null as RootElement | null;
  let ended = false;
  const flush = (): void => {
    if (live !== null && !ended) {
      const leaf = proofLeaf(live);
      tree.insert(leaf.key, leaf.value);
    }
    live = null;
    ended = false;
  };
  for await (const rows of rowBatches(db, K.all(P.event))) {
    for (const [k, v] of rows) {
      const at = parse.event(k);
      if (script === null || !script.equals(at.script)) {
        flush();
        script = Buffer.from(at.script);
      }
      if (at.height > height) continue;
      const e = decodeEvent(at.height, at.txIndex, at.kind, v);
      if (e.kind === 'registered') {
        live = { stakeScript: script, firstHeight: e.firstHeight, firstTxid: e.txid!, tipHeight: e.height, tipTxid: e.txid!, timestamp: e.timestamp, renewals: 0 };
        ended = false;
      } else if (live === null || live.firstHeight !== e.firstHeight) {
        throw new CorruptRecordError(`event (a ${e.kind} event of stake ${script.toString('hex')} at height ${e.height} for a registration it has not begun)`);
      } else if (e.kind === 'renewed') {
        live = { ...live, tipHeight: e.height, tipTxid: e.txid!, timestamp: e.timestamp, renewals: live.renewals + 1 };
      } else {
        ended = true;
      }
    }
  }
  flush();
  return tree;
}

/** The last tree built, under its root (hex): a tree is the same whatever index or height it came from when its root is. */
let lastTree: { root: string; tree: Promise<ProofTree> } | null = null;

/** The tree of the live set at `height`, whose root is stored as `root`: the kept one when it has that root, else built and kept. */
async function cachedTreeAt(db: ReadDB, height: number, root: string): Promise<ProofTree> {
  if (lastTree?.root === root) return lastTree.tree;
  const tree = treeAt(db, height).then((built) => {
    const derived = built.rootHex();
    if (derived !== root) throw new CorruptRecordError(`per-height state (height ${height}: its live set has proof root ${derived}, but ${root} is stored)`);
    return built;
  });
  const kept = { root, tree };
  lastTree = kept;
  // A tree that could not be built, or has another root, is not kept.
  tree.catch(() => {
    if (lastTree === kept) lastTree = null;
  });
  return tree;
}

/** Forgets the kept tree and subtrees (for measuring the cost of building them, and for tests of every way of building them). */
export function forgetProofTree(): void {
  lastTree = null;
  lastSubtrees = null;
}

/**
 * The proof (docs/spec.md §2.9 JSON form) that `script` is live at `height`
 * (default: the tip), or that it is not: an exclusion is an answer too.
 * From the kept tree when it has the height's root; else from the stored
 * proof-tree history when the index keeps one; else from a tree rebuilt
 * from the registrations and kept. `via` forces a way (tests compare them).
 */
export async function proofAt(db: ReadDB, script: Buffer, height?: number, via?: 'history' | 'tree'): Promise<ProofJson> {
  const h = await resolveHeight(db, height);
  const root = await proofRootAt(db, h);
  const regs = replay(script, await eventsOf(db, script), h);
  const mine = regs.length > 0 && regs[regs.length - 1]!.status === 'active' ? serializeRootElement(rootElement(regs[regs.length - 1]!)) : null;
  const at = { height: h, tip: rpcHex(await blockHashAt(db, h)) };
  const fromHistory = via === 'history' || (via === undefined && lastTree?.root !== root && (await db.get(K.meta(PROOF_HISTORY_META))) !== undefined);
  if (fromHistory) {
    const found = await pathFromHistory(db, h, root, proofKey(script).toString('latin1'));
    const derived = Buffer.from(found.root, 'latin1').toString('hex');
    if (derived !== root) {
      lastSubtrees = null;
      throw new CorruptRecordError(`proof history (height ${h}: its subtrees make proof root ${derived}, but ${root} is stored)`);
    }
    return proofOfPath(found.path, found.root, at, script, mine);
  }
  return proofOf(await cachedTreeAt(db, h, root), at, script, mine);
}

/** The subtrees last read from the proof-tree history, under the root they make: the same whatever height had that root. */
let lastSubtrees: { root: string; subtrees: Promise<Subtree[]> } | null = null;

/** The state at `height`, whose proof root is stored as `root`, of every subtree at depth PROOF_SUBTREE_BITS: each one's last 'n' row up to then. */
function subtreesAt(db: ReadDB, height: number, root: string): Promise<Subtree[]> {
  if (lastSubtrees?.root === root) return lastSubtrees.subtrees;
  const subtrees = Promise.all(Array.from({ length: 2 ** PROOF_SUBTREE_BITS }, async (_, top): Promise<Subtree> => {
    for await (const [, v] of db.iterator({ ...K.proofSubtreeUpTo(top, height), limit: 1 })) return decodeSubtree(v);
    return { kind: 'empty' };
  }));
  const kept = { root, subtrees };
  lastSubtrees = kept;
  // Dropped when the rows cannot be read, or (by the caller) when they make another root.
  subtrees.catch(() => {
    if (lastSubtrees === kept) lastSubtrees = null;
  });
  return subtrees;
}

/**
 * `key`'s path at `height` from the proof-tree history: the state at
 * `height` of every subtree at depth PROOF_SUBTREE_BITS (its last 'n' row
 * up to then), and the leaves then of the one `key` falls in (each of its
 * keys' last 'k' row up to then).
 */
async function pathFromHistory(db: ReadDB, height: number, root: string, key: Hash32): Promise<ReturnType<typeof proveThroughSubtrees>> {
  const subtrees = await subtreesAt(db, height, root);
  const own = new ProofTree();
  let current: Buffer | null = null;
  let value: Hash32 | null = null;
  const settle = (): void => {
    if (current !== null && value !== null) own.insert(current.toString('latin1'), value);
  };
  for await (const rows of rowBatches(db, K.proofLeavesUnder(key.charCodeAt(0)))) {
    for (const [k, v] of rows) {
      const row = parse.proofLeaf(k);
      if (current === null || !current.equals(row.key)) {
        settle();
        current = Buffer.from(row.key);
        value = null;
      }
      if (row.height <= height) value = decodeProofLeaf(v);
    }
  }
  settle();
  try {
    return proveThroughSubtrees(subtrees, PROOF_SUBTREE_BITS, key, own);
  } catch (err) {
    throw new CorruptRecordError(`proof history (height ${height}: ${(err as Error).message})`);
  }
}

/** A proof from rows another store read (the PostgreSQL mirror): the live set of the height, and the height's block hash and stored proof root. */
export function proofFrom(live: readonly Registration[], at: { height: number; tip: string; proofRoot: string }, script: Buffer): ProofJson {
  const mine = live.find((r) => r.stakeScript.equals(script));
  const proof = proofOf(treeOf(live), { height: at.height, tip: at.tip }, script, mine ? serializeRootElement(rootElement(mine)) : null);
  if (proof.proofRoot !== at.proofRoot) throw new CorruptRecordError(`per-height state (height ${at.height}: its live set has proof root ${proof.proofRoot}, but ${at.proofRoot} is stored)`);
  return proof;
}

/** One side of a diff: a height and the commitments to its live set. */
export interface DiffEnd {
  height: number;
  tip: string;
  root: string;
  proofRoot: string;
}

export interface DiffJson {
  from: DiffEnd;
  to: DiffEnd;
  /** Live at `to` and not at `from`, as at `to`. */
  added: ExportNode[];
  /** Stake scripts (hex) live at `from` and not at `to`. */
  removed: string[];
  /** Live at both, with another root element at `to` (renewed, or registered anew), as at `to`. */
  changed: ExportNode[];
}

async function endAt(db: ReadDB, h: number): Promise<DiffEnd> {
  return { height: h, tip: rpcHex(await blockHashAt(db, h)), root: await rootAt(db, h), proofRoot: await proofRootAt(db, h) };
}

const elementHex = (r: Registration): string => serializeRootElement(rootElement(r)).toString('hex');

/** What changed in the live set between two heights, in FIRST_SEEN order of `to`. */
export async function diffBetween(db: ReadDB, params: NetworkParams, from: number, to: number): Promise<DiffJson> {
  const ends = { from: await endAt(db, from), to: await endAt(db, to) };
  return diffOf(await liveAt(db, from), await registrationsAt(db, to), await stakeBalancesAt(db, to), ends, params);
}

/**
 * `diffBetween` from its rows: the live set at `from`, the registrations as
 * of `to` (FIRST_SEEN order), the balances at `to` (latin1 script → balance)
 * and both heights' commitments.
 */
export function diffOf(liveFrom: readonly Registration[], regsTo: readonly Registration[], balances: Map<string, bigint>, ends: { from: DiffEnd; to: DiffEnd }, params: NetworkParams): DiffJson {
  const before = new Map(liveFrom.map((r) => [r.stakeScript.toString('hex'), r]));
  const after = liveOf(regsTo);
  const node = (r: Registration): ExportNode => exportNode(r, balances.get(r.stakeScript.toString('latin1')) ?? 0n, params);
  const added: ExportNode[] = [];
  const changed: ExportNode[] = [];
  const stillLive = new Set<string>();
  for (const r of after) {
    const s = r.stakeScript.toString('hex');
    const old = before.get(s);
    stillLive.add(s);
    if (old === undefined) added.push(node(r));
    else if (elementHex(old) !== elementHex(r)) changed.push(node(r));
  }
  const removed = [...before.keys()].filter((s) => !stillLive.has(s)).sort();
  return { from: ends.from, to: ends.to, added, removed, changed };
}

/** The root element of a node of the interchange format (docs/spec.md §2.7). */
export function nodeElement(n: Pick<ExportNode, 'stakeScript' | 'firstHeight' | 'firstTxid' | 'tipHeight' | 'tipTxid' | 'timestamp' | 'renewals'>): RootElement {
  return {
    stakeScript: Buffer.from(n.stakeScript, 'hex'), firstHeight: n.firstHeight, firstTxid: Buffer.from(n.firstTxid, 'hex').reverse(),
    tipHeight: n.tipHeight, tipTxid: Buffer.from(n.tipTxid, 'hex').reverse(), timestamp: n.timestamp, renewals: n.renewals,
  };
}

/**
 * Applies a diff to the live nodes of its `from` height, as a client holding
 * them would, and says whether the result has `to`'s registry root and proof
 * root; null when it does, else what differs.
 */
export function checkDiff(liveFrom: readonly ExportNode[], diff: DiffJson): string | null {
  const set = new Map(liveFrom.map((n) => [n.stakeScript, n]));
  for (const s of diff.removed) if (!set.delete(s)) return `the diff removes ${s}, which is not live at ${diff.from.height}`;
  for (const n of diff.added) {
    if (set.has(n.stakeScript)) return `the diff adds ${n.stakeScript}, which is already live at ${diff.from.height}`;
    set.set(n.stakeScript, n);
  }
  for (const n of diff.changed) {
    if (!set.has(n.stakeScript)) return `the diff changes ${n.stakeScript}, which is not live at ${diff.from.height}`;
    set.set(n.stakeScript, n);
  }
  const root = new RegistryRoot();
  const tree = new ProofTree();
  for (const n of set.values()) {
    const e = nodeElement(n);
    root.insert(e);
    const leaf = proofLeaf(e);
    tree.insert(leaf.key, leaf.value);
  }
  const r = root.finalize();
  const p = tree.rootHex();
  if (r !== diff.to.root) return `the registry root after applying the diff is ${r}, not ${diff.to.root}`;
  if (p !== diff.to.proofRoot) return `the proof root after applying the diff is ${p}, not ${diff.to.proofRoot}`;
  return null;
}
