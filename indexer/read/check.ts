import { MuHash3072 } from '../../script/muhash.js';
import { proofLeaf, ProofTree, type Subtree } from '../../script/prooftree.js';
import { RegistryRoot } from '../../script/root.js';
import { rootElement } from '../engine/registry.js';
import { utxoElement } from '../engine/utxohash.js';
import { decodeCoin, decodeProofLeaf, decodeRegistration, decodeSubtree, encodeSubtree } from '../store/codec.js';
import { createHash } from 'node:crypto';
import { K, OPEN, P, parse, PROOF_SUBTREE_BITS, regId } from '../store/layout.js';
import { PROOF_HISTORY_META } from '../store/store.js';
import { blockHashAt, proofRootAt, registrationsAt, requireTip, rootAt, utxoHashAt } from './queries.js';
import type { ReadDB } from './snapshot.js';
import type { Registration } from '../types.js';

/*
 * `nodereg check`: every accumulator stored per height is re-derived from the
 * rows it summarises and compared at the tip. Table checksums are verified
 * when the index is opened (store/tablecheck.ts); this catches what a
 * checksum cannot: a row that was written wrong, or rewritten, with valid
 * checksums around it. The derived index rows are checked too: the lifetime
 * rows ('l') against the registration rows, and the block-time rows ('t'),
 * which nothing else stored repeats, for one well-formed row per block. So
 * is the proof-tree history ('k' and 'n'): as of the tip, its leaves and
 * subtrees must be those of the tree of the live registration rows.
 */

export interface CheckItem {
  /** What was compared, e.g. "registry root from the registration rows". */
  readonly what: string;
  readonly stored: string;
  readonly derived: string;
  readonly ok: boolean;
  /** How many rows went into the derived value. */
  readonly rows: number;
}

export interface CheckReport {
  readonly height: number;
  /** Block hash at the tip, RPC order. */
  readonly tip: string;
  readonly items: CheckItem[];
  /** The first disagreement, in one line, or null when all agree. */
  readonly mismatch: string | null;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');
const regName = (r: Registration): string => `registration ${r.firstHeight}:${r.firstIndex} of stake ${r.stakeScript.toString('hex')}`;

function sameRegistration(a: Registration, b: Registration): string | null {
  const fields: Array<[string, unknown, unknown]> = [
    ['stake script', a.stakeScript.toString('hex'), b.stakeScript.toString('hex')],
    ['first txid', rpcHex(a.firstTxid), rpcHex(b.firstTxid)],
    ['tip height', a.tipHeight, b.tipHeight], ['tip txid', rpcHex(a.tipTxid), rpcHex(b.tipTxid)],
    ['timestamp', a.timestamp, b.timestamp], ['renewals', a.renewals, b.renewals],
    ['expiry height', a.expiryHeight, b.expiryHeight], ['status', a.status, b.status],
  ];
  for (const [name, x, y] of fields) if (x !== y) return `${name} ${String(x)} in its row, ${String(y)} from its event history`;
  return null;
}

/**
 * Re-derives the registry root from the registration rows and from the event
 * history, and the UTXO-set MuHash (if the index keeps one) from the coin
 * rows, and compares each with the value stored for the tip.
 */
export async function checkIndex(db: ReadDB): Promise<CheckReport> {
  const tip = await requireTip(db);
  const h = tip.height;
  const items: CheckItem[] = [];
  let mismatch: string | null = null;

  // The registration rows ('g'): what the live indexer works from.
  const rows = new Map<string, Registration>();
  const fromRows = new RegistryRoot();
  for await (const [k, v] of db.iterator(K.all(P.registration))) {
    const r = decodeRegistration(v);
    const filed = parse.registration(k).firstHeight;
    if (filed !== r.firstHeight) mismatch ??= `the row of ${regName(r)} is filed under first height ${filed}`;
    rows.set(`${r.firstHeight}:${r.firstIndex}`, r);
    if (r.status === 'active') fromRows.insert(rootElement(r));
  }
  // The event history ('e'): what exports and past heights are rebuilt from.
  const fromEvents = new RegistryRoot();
  const replayed = await registrationsAt(db, h);
  for (const r of replayed) {
    const row = rows.get(`${r.firstHeight}:${r.firstIndex}`);
    const diff = row === undefined ? 'it has no registration row' : sameRegistration(row, r);
    if (diff !== null) mismatch ??= `${regName(r)} at height ${h}: ${diff}`;
    if (r.status === 'active') fromEvents.insert(rootElement(r));
  }
  const storedRoot = await rootAt(db, h);
  const active = [...rows.values()].filter((r) => r.status === 'active').length;
  for (const [what, root, n] of [
    ['registry root from the registration rows', fromRows, active],
    ['registry root from the event history', fromEvents, replayed.filter((r) => r.status === 'active').length],
  ] as const) {
    const derived = root.finalize();
    items.push({ what, stored: storedRoot, derived, ok: derived === storedRoot, rows: n });
    if (derived !== storedRoot) mismatch ??= `the ${what} (${n} live) is ${derived}, but the root stored for height ${h} is ${storedRoot}`;
  }

  // The proof root (docs/spec.md §2.9) over the same live registrations, both ways.
  const storedProof = await proofRootAt(db, h);
  const treeOf = (regs: Iterable<Registration>): ProofTree =>
    ProofTree.from([...regs].filter((r) => r.status === 'active').map((r) => proofLeaf(rootElement(r))));
  for (const [what, regs, n] of [
    ['proof root from the registration rows', rows.values(), active],
    ['proof root from the event history', replayed, replayed.filter((r) => r.status === 'active').length],
  ] as const) {
    const derived = treeOf(regs).rootHex();
    items.push({ what, stored: storedProof, derived, ok: derived === storedProof, rows: n });
    if (derived !== storedProof) mismatch ??= `the ${what} (${n} live) is ${derived}, but the proof root stored for height ${h} is ${storedProof}`;
  }

  if ((await db.get(K.meta(PROOF_HISTORY_META))) !== undefined) {
    const history = await checkProofHistory(db, h, treeOf(rows.values()));
    items.push(history.item);
    mismatch ??= history.mismatch;
  }

  const lifetimes = await checkLifetimes(db, rows.values());
  items.push(lifetimes.item);
  mismatch ??= lifetimes.mismatch;
  const times = await checkBlockTimes(db, h);
  items.push(times.item);
  mismatch ??= times.mismatch;

  const storedUtxo = await utxoHashAt(db, h);
  if (storedUtxo !== null) {
    const m = new MuHash3072();
    let coins = 0;
    for await (const [k, v] of db.iterator(K.all(P.coin))) {
      const { txid, vout } = parse.coin(k);
      const el = utxoElement(txid, vout, decodeCoin(v));
      if (el) m.insert(el);
      coins++;
    }
    const derived = m.finalize().reverse().toString('hex');
    const what = 'UTXO-set MuHash from the coin rows';
    items.push({ what, stored: storedUtxo, derived, ok: derived === storedUtxo, rows: coins });
    if (derived !== storedUtxo) mismatch ??= `the ${what} (${coins} coins) is ${derived}, but the hash stored for height ${h} is ${storedUtxo}`;
  }
  return { height: h, tip: rpcHex(await blockHashAt(db, h)), items, mismatch };
}

/** SHA-256 over rows (key ‖ value, length-prefixed) in key order: one line for a report instead of a set. */
function digestOf(rows: Iterable<[Buffer, Buffer]>): string {
  const d = createHash('sha256');
  const len = Buffer.alloc(4);
  for (const [k, v] of rows) {
    len.writeUInt32BE(k.length);
    d.update(len).update(k);
    len.writeUInt32BE(v.length);
    d.update(len).update(v);
  }
  return d.digest('hex');
}

const lifetimeName = (k: Buffer): string => {
  const l = parse.lifetime(k);
  return `the lifetime row of registration ${l.firstHeight}:${l.firstIndex} (ended ${l.endedHeight === OPEN ? 'never' : l.endedHeight})`;
};

/**
 * The lifetime rows ('l', docs/schema.md) re-derived from the registration
 * rows: one per registration, under the block it ended in (OPEN while
 * live), holding its stake script.
 */
async function checkLifetimes(db: ReadDB, regs: Iterable<Registration>): Promise<{ item: CheckItem; mismatch: string | null }> {
  const expected = new Map<string, [Buffer, Buffer]>();
  for (const r of regs) {
    const k = K.lifetime(r.endedHeight ?? OPEN, regId(r.firstHeight, r.firstIndex));
    expected.set(k.toString('latin1'), [k, Buffer.from(r.stakeScript)]);
  }
  const stored: Array<[Buffer, Buffer]> = [];
  let mismatch: string | null = null;
  for await (const [k, v] of db.iterator(K.all(P.lifetime))) {
    stored.push([k, v]);
    const want = expected.get(k.toString('latin1'));
    if (want === undefined) mismatch ??= `${lifetimeName(k)} has no registration row to match it`;
    else if (!want[1].equals(v)) mismatch ??= `${lifetimeName(k)} names stake ${v.toString('hex')}, but its registration row ${want[1].toString('hex')}`;
  }
  const storedKeys = new Set(stored.map(([k]) => k.toString('latin1')));
  for (const [key, [k]] of expected) if (!storedKeys.has(key)) mismatch ??= `${lifetimeName(k)} is missing, though its registration row says so`;
  const derivedRows = [...expected.values()].sort(([a], [b]) => Buffer.compare(a, b));
  const what = 'lifetime rows from the registration rows';
  const item = { what, stored: digestOf(stored), derived: digestOf(derivedRows), ok: mismatch === null, rows: stored.length };
  return { item, mismatch: mismatch === null ? null : `the ${what}: ${mismatch}` };
}

/**
 * The block-time rows ('t'): a header's time is stored nowhere else, so only
 * their shape can be checked: one 4-byte row for each block 0..tip, none
 * above it.
 */
async function checkBlockTimes(db: ReadDB, tip: number): Promise<{ item: CheckItem; mismatch: string | null }> {
  let next = 0;
  let mismatch: string | null = null;
  let rows = 0;
  for await (const [k, v] of db.iterator(K.all(P.blockTime))) {
    rows++;
    const h = parse.height(k).height;
    if (k.length !== 5 || v.length !== 4) mismatch ??= `the block-time row of height ${h} is malformed (key ${k.length} bytes, value ${v.length}; 5 and 4 expected)`;
    else if (h > tip) mismatch ??= `there is a block-time row for height ${h}, above the tip ${tip}`;
    else if (h !== next) mismatch ??= `the block-time row of height ${next} is missing`;
    next = h + 1;
  }
  if (next <= tip) mismatch ??= `the block-time rows stop at height ${next - 1}, below the tip ${tip}`;
  const what = 'block-time rows, one per block';
  return { item: { what, stored: `${rows} rows`, derived: `${tip + 1} blocks`, ok: mismatch === null, rows }, mismatch: mismatch === null ? null : `the ${what}: ${mismatch}` };
}

const hexOf = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

/**
 * The proof-tree history ('k' and 'n' rows, docs/schema.md) as of the tip:
 * each key's latest leaf row must be its leaf in `tree` (the tree of the
 * live registration rows) or empty when it has none, each subtree's latest
 * row must be that subtree of `tree`, and no row may lie above the tip.
 */
async function checkProofHistory(db: ReadDB, tip: number, tree: ProofTree): Promise<{ item: CheckItem; mismatch: string | null }> {
  let mismatch: string | null = null;
  let rows = 0;
  let leaves = 0;
  let key: string | null = null;
  let latest: string | null = null;
  const settle = (): void => {
    if (key === null) return;
    const want = tree.get(key);
    if (want !== latest) mismatch ??= `key ${hexOf(key)}: its latest leaf row says ${latest === null ? 'no leaf' : hexOf(latest)}, the live registrations ${want === null ? 'no leaf' : hexOf(want)}`;
    if (latest !== null) leaves++;
  };
  for await (const [k, v] of db.iterator(K.all(P.proofLeaf))) {
    rows++;
    const row = parse.proofLeaf(k);
    if (row.height > tip) mismatch ??= `a leaf row of key ${row.key.toString('hex')} is for height ${row.height}, above the tip ${tip}`;
    const name = row.key.toString('latin1');
    if (name !== key) {
      settle();
      key = name;
    }
    latest = decodeProofLeaf(v);
  }
  settle();
  if (leaves !== tree.size) mismatch ??= `the leaf rows hold ${leaves} leaves as of the tip, the live registrations ${tree.size}`;
  const prefix = Buffer.alloc(32);
  let seen = -1;
  for await (const [k, v] of db.iterator(K.all(P.proofSubtree))) {
    rows++;
    const row = parse.proofSubtree(k);
    if (row.height > tip) mismatch ??= `a subtree row of subtree ${row.top} is for height ${row.height}, above the tip ${tip}`;
    for (let top = seen + 1; top <= row.top; top++) {
      // The first row of each subtree is its latest; one with no rows has never held a leaf.
      prefix[0] = top;
      const want = encodeSubtreeHex(tree.subtree(prefix.toString('latin1'), PROOF_SUBTREE_BITS));
      const got = top === row.top ? encodeSubtreeHex(decodeSubtree(v)) : encodeSubtreeHex({ kind: 'empty' });
      if (got !== want) mismatch ??= `subtree ${top}: its latest row is ${got}, the tree of the live registrations has ${want}`;
    }
    seen = Math.max(seen, row.top);
  }
  for (let top = seen + 1; top < 2 ** PROOF_SUBTREE_BITS; top++) {
    prefix[0] = top;
    if (tree.subtree(prefix.toString('latin1'), PROOF_SUBTREE_BITS).kind !== 'empty') mismatch ??= `subtree ${top} has no rows, but the live registrations have leaves under it`;
  }
  const what = 'proof-tree history (leaf and subtree rows) as of the tip';
  const item = { what, stored: `${leaves} leaves`, derived: `${tree.size} leaves`, ok: mismatch === null, rows };
  return { item, mismatch: mismatch === null ? null : `the ${what}: ${mismatch}` };
}

const encodeSubtreeHex = (t: Subtree): string => encodeSubtree(t).toString('hex');
