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
 */
import { hash } from 'node:crypto';
import { branchHash, EMPTY_HASH, keyBit, KEY_BITS, leafHash, type Sha256 } from './proofrule.js';
import { serializeRootElement, type RootElement } from './root.js';
import type { ProofJson } from './verifyproof.js';

const sha256: Sha256 = (m) => hash('sha256', m, 'buffer');

/** A leaf's key: SHA256(stakeScript). */
export function proofKey(stakeScript: Uint8Array): Buffer {
  return hash('sha256', stakeScript, 'buffer');
}

/** A leaf's value: SHA256 of the registration's §2.6 element. */
export function proofValue(e: RootElement): Buffer {
  return hash('sha256', serializeRootElement(e), 'buffer');
}

interface Leaf {
  readonly leaf: true;
  readonly key: Uint8Array;
  value: Uint8Array;
  hash: Uint8Array | null;
}

interface Branch {
  readonly leaf: false;
  /** Children by the key bit at this branch's depth; null is an empty subtree. */
  readonly kids: [Node | null, Node | null];
  hash: Uint8Array | null;
}

type Node = Leaf | Branch;

/** What a proof needs from the tree: the siblings top first, and the subtree where the key's path ends. */
export interface TreePath {
  readonly siblings: Uint8Array[];
  /** The lone leaf at the end of the path (the key's own, or another that shares its first bits), or null for an empty subtree. */
  readonly terminal: { readonly key: Uint8Array; readonly value: Uint8Array } | null;
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function checkKey(key: Uint8Array): void {
  if (key.length !== 32) throw new RangeError(`a proof tree key is 32 bytes, got ${key.length}`);
}

/** The branches above two leaves that share their first `depth` bits, down to where their keys part. */
function split(a: Leaf, b: Leaf, depth: number): Branch {
  let d = depth;
  while (keyBit(a.key, d) === keyBit(b.key, d)) d++;
  let node: Branch = { leaf: false, kids: keyBit(a.key, d) === 0 ? [a, b] : [b, a], hash: null };
  while (d > depth) {
    d--;
    node = { leaf: false, kids: keyBit(a.key, d) === 0 ? [node, null] : [null, node], hash: null };
  }
  return node;
}

export class ProofTree {
  private top: Node | null = null;
  private count = 0;

  /** A tree holding these leaves. */
  static from(leaves: Iterable<{ key: Uint8Array; value: Uint8Array }>): ProofTree {
    const t = new ProofTree();
    for (const l of leaves) t.insert(l.key, l.value);
    return t;
  }

  get size(): number {
    return this.count;
  }

  /** Puts leaf (key, value) in the tree, replacing the value of a leaf with the same key. */
  insert(key: Uint8Array, value: Uint8Array): void {
    checkKey(key);
    const fresh: Leaf = { leaf: true, key, value, hash: null };
    let parent: Branch | null = null;
    let side = 0;
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      node.hash = null;
      parent = node;
      side = keyBit(key, depth);
      node = node.kids[side];
      depth++;
    }
    let replacement: Node;
    if (node === null) {
      replacement = fresh;
      this.count++;
    } else if (sameKey(node.key, key)) {
      node.value = value;
      node.hash = null;
      return;
    } else {
      replacement = split(node, fresh, depth);
      this.count++;
    }
    if (parent === null) this.top = replacement;
    else parent.kids[side] = replacement;
  }

  /** Takes the leaf with this key out of the tree; false when there is none. */
  remove(key: Uint8Array): boolean {
    checkKey(key);
    const path: Branch[] = [];
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      path.push(node);
      node = node.kids[keyBit(key, depth++)];
    }
    if (node === null || !sameKey(node.key, key)) return false;
    this.count--;
    // Going up, a branch left with one lone leaf below it gives way to that
    // leaf, because a lone leaf sits as high as it can.
    let up: Node | null = null;
    for (let d = path.length - 1; d >= 0; d--) {
      const b = path[d]!;
      b.kids[keyBit(key, d)] = up;
      const other = b.kids[1 - keyBit(key, d)];
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
  get(key: Uint8Array): Uint8Array | null {
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) node = node.kids[keyBit(key, depth++)];
    return node !== null && sameKey(node.key, key) ? node.value : null;
  }

  /** The proof root: 32 zero bytes for an empty tree. */
  root(): Uint8Array {
    return hashOf(this.top);
  }

  rootHex(): string {
    return Buffer.from(this.root()).toString('hex');
  }

  /** The siblings along `key`'s path and the subtree where it ends (docs/spec.md §2.9 "Proof for key k"). */
  prove(key: Uint8Array): TreePath {
    checkKey(key);
    const siblings: Uint8Array[] = [];
    let node = this.top;
    let depth = 0;
    while (node !== null && !node.leaf) {
      if (depth >= KEY_BITS) throw new Error('proof tree deeper than its keys');
      const bit = keyBit(key, depth++);
      siblings.push(hashOf(node.kids[1 - bit]));
      node = node.kids[bit];
    }
    return { siblings, terminal: node === null ? null : { key: node.key, value: node.value } };
  }
}

function hashOf(node: Node | null): Uint8Array {
  if (node === null) return EMPTY_HASH;
  if (node.hash === null) {
    node.hash = node.leaf ? leafHash(sha256, node.key, node.value) : branchHash(sha256, hashOf(node.kids[0]), hashOf(node.kids[1]));
  }
  return node.hash;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/**
 * The JSON proof (docs/spec.md §2.9) for `stakeScript` from the tree of the
 * live set at `height`. `element` is the stake's live registration as §2.6
 * bytes, or null when it has none; it must agree with the tree.
 */
export function proofOf(tree: ProofTree, at: { height: number; tip: string }, stakeScript: Uint8Array, element: Uint8Array | null): ProofJson {
  const key = proofKey(stakeScript);
  const { siblings, terminal } = tree.prove(key);
  const included = terminal !== null && sameKey(terminal.key, key);
  if (included !== (element !== null) || (included && !sameKey(terminal.value, hash('sha256', element!, 'buffer')))) {
    throw new Error(`the proof tree and the registrations disagree about stake ${hex(stakeScript)}`);
  }
  return {
    height: at.height,
    tip: at.tip,
    proofRoot: tree.rootHex(),
    stakeScript: hex(stakeScript),
    key: hex(key),
    included,
    element: element === null ? null : hex(element),
    siblings: siblings.map(hex),
    other: terminal === null || included ? null : { key: hex(terminal.key), valueHash: hex(terminal.value) },
  };
}
