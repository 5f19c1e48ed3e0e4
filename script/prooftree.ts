/**
 * The proof tree (docs/spec.md §2.9): a sparse Merkle tree over the live
 * registrations, keyed by SHA256(stakeScript), so that one registration, or
 * its absence, can be checked against a 32-byte root.
 *
 * Branches exist only where a subtree holds two leaves or more, and a lone
 * leaf sits as high as it can, which is exactly the tree §2.9 hashes. Hashes
 * are cached per node and dropped along the path an insert or remove walks,
 * so a change costs O(depth) hashes at the next `root()`, and filling an
 * empty tree costs one hash per node however many leaves go in.
 *
 * Keys, values and hashes are 32-byte latin1 strings (one char per byte):
 * a native digest returned as a string costs a third of one returned as a
 * Buffer, and a 100 000-leaf tree is rebuilt for every past-height proof.
 */
import { hash } from 'node:crypto';
import { BRANCH_TAG, HASH_BYTES, KEY_BITS, LEAF_TAG } from './proofrule.js';
import { serializeRootElement, type RootElement } from './root.js';
import type { ProofJson } from './verifyproof.js';

/** 32 bytes as a latin1 string. */
export type Hash32 = string;

const EMPTY: Hash32 = '\0'.repeat(HASH_BYTES);
/** Node accepts 'latin1' as a digest's output encoding; its types list only the text ones. */
const sha256 = (data: Uint8Array): Hash32 => hash('sha256', data, 'latin1' as 'hex');
const scratch = Buffer.alloc(1 + 2 * HASH_BYTES);

/** SHA256(tag ‖ a ‖ b), the one shape of every node hash (docs/spec.md §2.9). */
function nodeHash(tag: number, a: Hash32, b: Hash32): Hash32 {
  scratch[0] = tag;
  scratch.write(a, 1, 'latin1');
  scratch.write(b, 1 + HASH_BYTES, 'latin1');
  return sha256(scratch);
}

/** Bit `i` of a key, most significant bit of byte 0 first. */
const bitOf = (key: Hash32, i: number): number => (key.charCodeAt(i >> 3) >> (7 - (i & 7))) & 1;

/** A leaf's key: SHA256(stakeScript). */
export function proofKey(stakeScript: Uint8Array): Buffer {
  return hash('sha256', stakeScript, 'buffer');
}

/** The leaf of a live registration: key SHA256(stakeScript), value SHA256 of its §2.6 element. */
export function proofLeaf(e: RootElement): { key: Hash32; value: Hash32 } {
  return { key: sha256(e.stakeScript), value: sha256(serializeRootElement(e)) };
}

interface Leaf {
  readonly leaf: true;
  readonly key: Hash32;
  value: Hash32;
  hash: Hash32 | null;
}

interface Branch {
  readonly leaf: false;
  /** Children by the key bit at this branch's depth; null is an empty subtree. */
  readonly kids: [Node | null, Node | null];
  hash: Hash32 | null;
}

type Node = Leaf | Branch;

/** What a subtree comes to for the tree above it: nothing, a lone leaf (which may rise), or a branch of two leaves or more. */
export type Subtree =
  | { readonly kind: 'empty' }
  | { readonly kind: 'leaf'; readonly key: Hash32; readonly value: Hash32 }
  | { readonly kind: 'branch'; readonly hash: Hash32 };

/** What a proof needs from the tree: the siblings top first, and the subtree where the key's path ends. */
export interface TreePath {
  readonly siblings: Hash32[];
  /** The lone leaf at the end of the path (the key's own, or another that shares its first bits), or null for an empty subtree. */
  readonly terminal: { readonly key: Hash32; readonly value: Hash32 } | null;
}

function checkKey(key: Hash32): void {
  if (key.length !== HASH_BYTES) throw new RangeError(`a proof tree key is ${HASH_BYTES} bytes, got ${key.length}`);
}

/** The branches above two leaves that share their first `depth` bits, down to where their keys part. */
function split(a: Leaf, b: Leaf, depth: number): Branch {
  let d = depth;
  while (bitOf(a.key, d) === bitOf(b.key, d)) d++;
  let node: Branch = { leaf: false, kids: bitOf(a.key, d) === 0 ? [a, b] : [b, a], hash: null };
  while (d > depth) {
    d--;
    node = { leaf: false, kids: bitOf(a.key, d) === 0 ? [node, null] : [null, node], hash: null };
  }
  return node;
}

function hashOf(node: Node | null): Hash32 {
  if (node === null) return EMPTY;
  if (node.hash === null) {
    if (node.leaf) node.hash = nodeHash(LEAF_TAG, node.key, node.value);
    else {
      const left = hashOf(node.kids[0]);
      node.hash = nodeHash(BRANCH_TAG, left, hashOf(node.kids[1]));
    }
  }
  return node.hash;
}

export class ProofTree {
  private top: Node | null = null;
  private count = 0;

  /** A tree holding these leaves. */
  static from(leaves: Iterable<{ key: Hash32; value: Hash32 }>): ProofTree {
    const t = new ProofTree();
    for (const l of leaves) t.insert(l.key, l.value);
    return t;
  }

  get size(): number {
    return this.count;
  }

  /** Puts leaf (key, value) in the tree, replacing the value of a leaf with the same key. */
  insert(key: Hash32, value: Hash32): void {
    checkKey(key);
    const fresh: Leaf = { leaf: true, key, value, hash: null };
    let parent: Branch | null = null;
    let side = 0;
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      node.hash = null;
      parent = node;
      side = bitOf(key, depth++);
      node = node.kids[side];
    }
    let replacement: Node;
    if (node === null) replacement = fresh;
    else if (node.key === key) {
      node.value = value;
      node.hash = null;
      return;
    } else replacement = split(node, fresh, depth);
    this.count++;
    if (parent === null) this.top = replacement;
    else parent.kids[side] = replacement;
  }

  /** Takes the leaf with this key out of the tree; false when there is none. */
  remove(key: Hash32): boolean {
    const path: Branch[] = [];
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      path.push(node);
      node = node.kids[bitOf(key, depth++)];
    }
    if (node === null || node.key !== key) return false;
    this.count--;
    // Going up, a branch left with one lone leaf below it gives way to that
    // leaf, because a lone leaf sits as high as it can.
    let up: Node | null = null;
    for (let d = path.length - 1; d >= 0; d--) {
      const b = path[d]!;
      b.kids[bitOf(key, d)] = up;
      const other = b.kids[1 - bitOf(key, d)];
      if ((up === null && (other === null || other.leaf)) || (up !== null && up.leaf && other === null)) {
        up = up ?? other;
        continue;
      }
      for (let i = 0; i <= d; i++) path[i]!.hash = null;
      return true;
    }
    this.top = up;
    return true;
  }

  /** The value stored under `key`, or null. */
  get(key: Hash32): Hash32 | null {
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) node = node.kids[bitOf(key, depth++)];
    return node !== null && node.key === key ? node.value : null;
  }

  /** The proof root: 32 zero bytes for an empty tree. */
  root(): Buffer {
    return Buffer.from(hashOf(this.top), 'latin1');
  }

  /** The proof root as 32 latin1 characters (`root` without the buffer). */
  rootLatin1(): string {
    return hashOf(this.top);
  }

  rootHex(): string {
    return this.root().toString('hex');
  }

  /** The subtree at `depth` whose keys share their first `depth` bits with `prefix` (any key), as the tree above it sees it. */
  subtree(prefix: Hash32, depth: number): Subtree {
    checkKey(prefix);
    let node = this.top;
    let d = 0;
    while (node !== null && !node.leaf && d < depth) node = node.kids[bitOf(prefix, d++)];
    if (node === null) return { kind: 'empty' };
    if (node.leaf) return samePrefix(node.key, prefix, depth) ? { kind: 'leaf', key: node.key, value: node.value } : { kind: 'empty' };
    return { kind: 'branch', hash: hashOf(node) };
  }

  /** The siblings along `key`'s path and the subtree where it ends (docs/spec.md §2.9 "Proof for key k"). */
  prove(key: Hash32): TreePath {
    checkKey(key);
    const siblings: Hash32[] = [];
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      if (depth >= KEY_BITS) throw new Error('proof tree deeper than its keys');
      const bit = bitOf(key, depth++);
      siblings.push(hashOf(node.kids[1 - bit]));
      node = node.kids[bit];
    }
    return { siblings, terminal: node === null ? null : { key: node.key, value: node.value } };
  }
}

const hex = (s: Hash32): string => Buffer.from(s, 'latin1').toString('hex');

/**
 * The JSON proof (docs/spec.md §2.9) for `stakeScript` from the tree of the
 * live set at `height`. `element` is the stake's live registration as §2.6
 * bytes, or null when it has none; it must agree with the tree.
 */
export function proofOf(tree: ProofTree, at: { height: number; tip: string }, stakeScript: Uint8Array, element: Uint8Array | null): ProofJson {
  return proofOfPath(tree.prove(sha256(stakeScript)), tree.root().toString('latin1'), at, stakeScript, element);
}

/** As `proofOf`, from the key's path and the root (found without a whole tree in memory, as `proveThroughSubtrees` does). */
export function proofOfPath(path: TreePath, root: Hash32, at: { height: number; tip: string }, stakeScript: Uint8Array, element: Uint8Array | null): ProofJson {
  const key = sha256(stakeScript);
  const { siblings, terminal } = path;
  const included = terminal !== null && terminal.key === key;
  if (included !== (element !== null) || (included && terminal.value !== sha256(element!))) {
    throw new Error(`the proof tree and the registrations disagree about stake ${Buffer.from(stakeScript).toString('hex')}`);
  }
  return {
    height: at.height,
    tip: at.tip,
    proofRoot: hex(root),
    stakeScript: Buffer.from(stakeScript).toString('hex'),
    key: hex(key),
    included,
    element: element === null ? null : Buffer.from(element).toString('hex'),
    siblings: siblings.map(hex),
    other: terminal === null || included ? null : { key: hex(terminal.key), valueHash: hex(terminal.value) },
  };
}

/** Whether two keys share their first `bits` bits. */
function samePrefix(a: Hash32, b: Hash32, bits: number): boolean {
  for (let i = 0; i < bits; i++) if (bitOf(a, i) !== bitOf(b, i)) return false;
  return true;
}

/** The hash a subtree contributes to the branch above it. */
export function subtreeHash(s: Subtree): Hash32 {
  return s.kind === 'empty' ? EMPTY : s.kind === 'leaf' ? nodeHash(LEAF_TAG, s.key, s.value) : s.hash;
}

/** The subtree holding two sibling subtrees: a lone leaf rises past an empty sibling (§2.9). */
export function joinSubtrees(left: Subtree, right: Subtree): Subtree {
  if (right.kind === 'empty' && left.kind !== 'branch') return left;
  if (left.kind === 'empty' && right.kind !== 'branch') return right;
  return { kind: 'branch', hash: nodeHash(BRANCH_TAG, subtreeHash(left), subtreeHash(right)) };
}

const sameSubtree = (a: Subtree, b: Subtree): boolean => subtreeHash(a) === subtreeHash(b) && a.kind === b.kind;

/**
 * The root of a tree given by its 2^`depth` subtrees at `depth` (in key
 * order), and `key`'s path in it, whose part below `depth` comes from
 * `own`: a tree of the leaves of the subtree `key` falls in. Throws when
 * `own` does not have that subtree's summary.
 */
export function proveThroughSubtrees(subtrees: readonly Subtree[], depth: number, key: Hash32, own: ProofTree): { root: Hash32; path: TreePath } {
  checkKey(key);
  if (depth < 0 || depth > 16 || subtrees.length !== 2 ** depth) throw new RangeError(`expected 2^${depth} subtrees, got ${subtrees.length}`);
  const levels: Subtree[][] = [];
  levels[depth] = [...subtrees];
  for (let d = depth - 1; d >= 0; d--) {
    const below = levels[d + 1]!;
    levels[d] = Array.from({ length: 2 ** d }, (_, i) => joinSubtrees(below[2 * i]!, below[2 * i + 1]!));
  }
  let idx = 0;
  for (let d = 0; d < depth; d++) idx = idx * 2 + bitOf(key, d);
  const mine = subtrees[idx]!;
  if (!sameSubtree(own.subtree(key, depth), mine)) throw new Error(`the leaves under the first ${depth} bits of key ${hex(key)} do not make the subtree stored for them`);
  const root = subtreeHash(levels[0]![0]!);
  const siblings: Hash32[] = [];
  for (let d = 0; ; d++) {
    const at = idx >> (depth - d);
    const node = levels[d]![at]!;
    if (node.kind === 'empty') return { root, path: { siblings, terminal: null } };
    if (node.kind === 'leaf') return { root, path: { siblings, terminal: { key: node.key, value: node.value } } };
    if (d === depth) {
      const below = own.prove(key);
      return { root, path: { siblings: siblings.concat(below.siblings.slice(depth)), terminal: below.terminal } };
    }
    const bit = bitOf(key, d);
    siblings.push(subtreeHash(levels[d + 1]![2 * at + 1 - bit]!));
  }
}
