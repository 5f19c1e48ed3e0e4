/**
 * Checks one proof of the proof tree (docs/spec.md §2.9) against a root,
 * without trusting whoever served it. Made to run anywhere, a browser
 * included: besides the shared hashing rule (which imports nothing) it uses
 * only `@noble/hashes`' SHA-256, and never Node's Buffer or built-ins.
 *
 *     import { verifyProof } from 'nodereg/verify';
 *     const v = verifyProof(await (await fetch(url)).json(), trustedRoot);
 *     if (!v.valid) throw new Error(v.reason);
 */
import { sha256 } from '@noble/hashes/sha2';
import { foldPath, HASH_BYTES, keyBit, KEY_BITS, leafHash, EMPTY_HASH, type Sha256 } from './proofrule.js';

/** The JSON form of a proof, as the API and the CLI serve it. */
export interface ProofJson {
  height: number;
  /** Block hash at `height`, RPC hex. */
  tip: string;
  proofRoot: string;
  stakeScript: string;
  /** SHA256(stakeScript). */
  key: string;
  included: boolean;
  /** The registration's §2.6 element when included, else null. */
  element: string | null;
  /** Sibling hashes along the key's path, top first. */
  siblings: string[];
  /** The lone leaf where an exclusion's path ends, or null when it ends in an empty subtree. */
  other: { key: string; valueHash: string } | null;
}

/**
 * The verdict. `malformed`: the input is not a proof at all (not an object,
 * a field missing or of the wrong type, bad hex); otherwise it is a
 * well-formed proof that does not hold.
 */
export type ProofVerdict =
  | { readonly valid: true; readonly included: boolean }
  | { readonly valid: false; readonly malformed: boolean; readonly reason: string };

const hashFn: Sha256 = (m) => sha256(m);

/** Bytes in an element after its compactSize-prefixed stake script (docs/spec.md §2.6). */
const ELEMENT_TAIL_BYTES = 4 + 32 + 4 + 32 + 8 + 4;

function hexBytes(s: unknown, bytes?: number): Uint8Array | null {
  if (typeof s !== 'string' || s.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(s)) return null;
  if (bytes !== undefined && s.length !== bytes * 2) return null;
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(s.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const toHex = (b: Uint8Array): string => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The length of the stake script an element starts with, and where it starts; null when the prefix is cut off or not canonical. */
function elementScriptLength(e: Uint8Array): { length: number; at: number } | null {
  if (e.length === 0) return null;
  if (e[0]! < 0xfd) return { length: e[0]!, at: 1 };
  if (e[0] !== 0xfd || e.length < 3) return null; // stake scripts are far below 65 536 bytes
  const n = e[1]! | (e[2]! << 8);
  return n < 0xfd ? null : { length: n, at: 3 };
}

const bad = (reason: string): ProofVerdict => ({ valid: false, malformed: false, reason });
const malformed = (reason: string): ProofVerdict => ({ valid: false, malformed: true, reason });

interface Parsed {
  proofRoot: Uint8Array;
  stakeScript: Uint8Array;
  key: Uint8Array;
  included: boolean;
  element: Uint8Array | null;
  siblings: Uint8Array[];
  other: { key: Uint8Array; valueHash: Uint8Array } | null;
}

function parse(p: unknown): Parsed | string {
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return 'a proof is a JSON object';
  const o = p as Record<string, unknown>;
  if (typeof o.height !== 'number' || !Number.isSafeInteger(o.height) || o.height < 0) return '"height" must be a whole number ≥ 0';
  if (hexBytes(o.tip, 32) === null) return '"tip" must be a block hash: 64 hex digits';
  const proofRoot = hexBytes(o.proofRoot, HASH_BYTES);
  if (proofRoot === null) return '"proofRoot" must be 64 hex digits';
  const stakeScript = hexBytes(o.stakeScript);
  if (stakeScript === null) return '"stakeScript" must be hex';
  const key = hexBytes(o.key, HASH_BYTES);
  if (key === null) return '"key" must be 64 hex digits';
  if (typeof o.included !== 'boolean') return '"included" must be true or false';
  const element = o.element === null ? null : hexBytes(o.element);
  if (element === null && o.element !== null) return '"element" must be hex or null';
  if (!Array.isArray(o.siblings)) return '"siblings" must be an array of hashes';
  const siblings: Uint8Array[] = [];
  for (const [i, s] of o.siblings.entries()) {
    const b = hexBytes(s, HASH_BYTES);
    if (b === null) return `sibling ${i} must be 64 hex digits`;
    siblings.push(b);
  }
  let other: Parsed['other'] = null;
  if (o.other !== null) {
    const x = o.other as Record<string, unknown> | undefined;
    const k = typeof x === 'object' && x !== null ? hexBytes(x.key, HASH_BYTES) : null;
    const v = typeof x === 'object' && x !== null ? hexBytes(x.valueHash, HASH_BYTES) : null;
    if (k === null || v === null) return '"other" must be null or {"key", "valueHash"} of 64 hex digits each';
    other = { key: k, valueHash: v };
  }
  return { proofRoot, stakeScript, key, included: o.included, element, siblings, other };
}

/**
 * Verifies `proof` (the JSON form of docs/spec.md §2.9, parsed or not yet
 * checked) against `root`, the proof root the caller trusts (by default the
 * proof's own `proofRoot`, which then only shows the proof is consistent).
 * Never throws: anything wrong comes back as a one-line reason.
 */
export function verifyProof(proof: unknown, root?: string): ProofVerdict {
  const p = parse(proof);
  if (typeof p === 'string') return malformed(p);
  if (root !== undefined) {
    const trusted = hexBytes(root, HASH_BYTES);
    if (trusted === null) return malformed('the trusted root must be 64 hex digits');
    if (!equal(trusted, p.proofRoot)) return bad(`the proof is against proof root ${toHex(p.proofRoot)}, not the trusted root ${toHex(trusted)}`);
  }
  if (!equal(hashFn(p.stakeScript), p.key)) return bad('the key is not SHA256 of the stake script');
  const n = p.siblings.length;
  if (n > KEY_BITS) return bad(`${n} siblings, but a path is at most ${KEY_BITS} deep`);

  let terminal: Uint8Array;
  if (p.included) {
    if (p.element === null) return bad('an inclusion proof must carry the element');
    if (p.other !== null) return bad('an inclusion proof has no other leaf');
    const s = elementScriptLength(p.element);
    if (s === null || p.element.length !== s.at + s.length + ELEMENT_TAIL_BYTES || !equal(p.element.subarray(s.at, s.at + s.length), p.stakeScript)) {
      return bad('the element is not a registration of this stake script');
    }
    terminal = leafHash(hashFn, p.key, hashFn(p.element));
  } else {
    if (p.element !== null) return bad('an exclusion proof carries no element');
    if (p.other === null) terminal = EMPTY_HASH;
    else {
      if (equal(p.other.key, p.key)) return bad('the other leaf has the proven key itself, so the stake would be included');
      for (let i = 0; i < n; i++) {
        if (keyBit(p.other.key, i) !== keyBit(p.key, i)) return bad(`the other leaf's key leaves the proven key's path at depth ${i}`);
      }
      terminal = leafHash(hashFn, p.other.key, p.other.valueHash);
    }
  }
  const computed = foldPath(hashFn, p.key, terminal, p.siblings);
  if (!equal(computed, p.proofRoot)) return bad(`the path leads to ${toHex(computed)}, not to the proof root ${toHex(p.proofRoot)}`);
  return { valid: true, included: p.included };
}
