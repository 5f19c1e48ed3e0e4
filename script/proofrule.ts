/**
 * The proof tree's hashing rule (docs/spec.md §2.9): the node tags, the empty
 * hash, the key's bit order and how a proof's path folds into a root. It
 * imports nothing and takes the SHA-256 to use, so the verifier a browser
 * runs shares it without pulling in Node built-ins. The indexer's tree
 * (prooftree.ts) hashes the same tags and layout on latin1 strings for speed;
 * the tests hold both to an independent builder.
 */

/** SHA-256 of one message, 32 bytes out. */
export type Sha256 = (message: Uint8Array) => Uint8Array;

/** Bytes in a key, a value hash and every node hash. */
export const HASH_BYTES = 32;

/** Bits in a key: the deepest a tree can go. */
export const KEY_BITS = 256;

/** The first byte hashed for a subtree holding one leaf, and for one holding more. */
export const LEAF_TAG = 0x00;
export const BRANCH_TAG = 0x01;

/** The hash of an empty subtree. */
export const EMPTY_HASH: Uint8Array = new Uint8Array(HASH_BYTES);

/** Bit `i` of a key, most significant bit of byte 0 first. */
export function keyBit(key: Uint8Array, i: number): number {
  return (key[i >> 3]! >> (7 - (i & 7))) & 1;
}

/** The hash of a subtree holding exactly one leaf: SHA256(0x00 ‖ k ‖ v). */
export function leafHash(sha256: Sha256, key: Uint8Array, value: Uint8Array): Uint8Array {
  const m = new Uint8Array(1 + 2 * HASH_BYTES);
  m[0] = LEAF_TAG;
  m.set(key, 1);
  m.set(value, 1 + HASH_BYTES);
  return sha256(m);
}

/** The hash of a subtree holding two leaves or more: SHA256(0x01 ‖ left ‖ right). */
export function branchHash(sha256: Sha256, left: Uint8Array, right: Uint8Array): Uint8Array {
  const m = new Uint8Array(1 + 2 * HASH_BYTES);
  m[0] = BRANCH_TAG;
  m.set(left, 1);
  m.set(right, 1 + HASH_BYTES);
  return sha256(m);
}

/**
 * Folds a proof's siblings (top first) over the hash of the subtree at depth
 * `siblings.length` on `key`'s path, giving the root they imply.
 */
export function foldPath(sha256: Sha256, key: Uint8Array, terminal: Uint8Array, siblings: readonly Uint8Array[]): Uint8Array {
  let h = terminal;
  for (let i = siblings.length - 1; i >= 0; i--) {
    h = keyBit(key, i) === 0 ? branchHash(sha256, h, siblings[i]!) : branchHash(sha256, siblings[i]!, h);
  }
  return h;
}
