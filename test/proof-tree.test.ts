import fc from 'fast-check';
import { proofKey, proofOf, ProofTree, proveThroughSubtrees, type Hash32 } from '../script/prooftree.js';
import { verifyProof } from '../script/verifyproof.js';
import { refHash, refProof, sha, sortLeaves as sortList, type RefLeaf } from './helpers/reftree.js';

/** The test's own §2.6 element: compactSize(len) ‖ script ‖ 84 bytes of fields (random here). */
const elementOf = (script: Buffer, fields: Buffer): Buffer => Buffer.concat([Buffer.of(script.length), script, fields]);
/** The tree's own form of a leaf: latin1 strings. */
const latin = (l: RefLeaf): { key: Hash32; value: Hash32 } => ({ key: l.key.toString('latin1'), value: l.value.toString('latin1') });
const sortLeaves = (m: Map<string, RefLeaf>): RefLeaf[] => sortList(m.values());

const arbScript = fc.uint8Array({ minLength: 22, maxLength: 34 }).map((b) => Buffer.from(b));
const arbFields = fc.uint8Array({ minLength: 84, maxLength: 84 }).map((b) => Buffer.from(b));

describe('proof tree', () => {
  it('proves every member and random non-members of random sets, as an independent builder does', () => {
    fc.assert(fc.property(fc.array(fc.tuple(arbScript, arbFields), { maxLength: 40 }), fc.array(arbScript, { maxLength: 5 }), (regs, strangers) => {
      const live = new Map<string, { script: Buffer; element: Buffer }>();
      for (const [script, fields] of regs) live.set(script.toString('hex'), { script, element: elementOf(script, fields) });
      const ref = new Map<string, RefLeaf>();
      for (const [h, r] of live) ref.set(h, { key: sha(r.script), value: sha(r.element) });
      const sorted = sortLeaves(ref);
      const tree = ProofTree.from([...ref.values()].map(latin));
      const root = refHash(sorted, 0).toString('hex');
      expect(tree.rootHex()).toBe(root);
      expect(tree.size).toBe(live.size);

      const check = (script: Buffer, element: Buffer | null): void => {
        const proof = proofOf(tree, { height: 7, tip: '00'.repeat(32) }, script, element);
        const expected = refProof(sorted, sha(script));
        expect(proof.siblings).toEqual(expected.siblings);
        expect(proof.included).toBe(element !== null);
        expect(proof.other).toEqual(element !== null || expected.end === null ? null : { key: expected.end.key.toString('hex'), valueHash: expected.end.value.toString('hex') });
        expect(verifyProof(proof, root)).toEqual({ valid: true, included: element !== null });
      };
      for (const r of live.values()) check(r.script, r.element);
      for (const s of strangers) if (!live.has(s.toString('hex'))) check(s, null);
    }), { numRuns: 60 });
  });

  it('keeps the root of a rebuild through random inserts, renewals and removals', () => {
    const op = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 30 }), fc.uint8Array({ minLength: 32, maxLength: 32 }));
    fc.assert(fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const tree = new ProofTree();
      const ref = new Map<string, RefLeaf>();
      for (const [kind, n, v] of ops) {
        const key = sha(Buffer.of(n));
        const value = Buffer.from(v);
        if (kind === 2) {
          expect(tree.remove(key.toString('latin1'))).toBe(ref.delete(String(n)));
        } else {
          tree.insert(key.toString('latin1'), value.toString('latin1'));
          ref.set(String(n), { key, value });
        }
        expect(tree.rootHex()).toBe(refHash(sortLeaves(ref), 0).toString('hex'));
        expect(tree.size).toBe(ref.size);
      }
    }), { numRuns: 60 });
  });

  it('holds keys that share long prefixes, down to the last bit', () => {
    const base = Buffer.alloc(32, 0x5a);
    const keys = [base, Buffer.from(base), Buffer.from(base), Buffer.from(base)];
    keys[1]![31] ^= 1;
    keys[2]![31] ^= 2;
    keys[3]![0] ^= 0x80;
    const leaves = keys.map((key, i) => ({ key, value: sha(Buffer.of(i)) }));
    const tree = ProofTree.from(leaves.map(latin));
    expect(tree.rootHex()).toBe(refHash([...leaves].sort((a, b) => Buffer.compare(a.key, b.key)), 0).toString('hex'));
    expect(tree.prove(keys[1]!.toString('latin1')).siblings).toHaveLength(256);
    for (const k of keys) expect(tree.remove(k.toString('latin1'))).toBe(true);
    expect(tree.rootHex()).toBe('00'.repeat(32));
  });

  it('gives the same root and paths from the subtrees at a depth and one subtree\'s own leaves as from the whole tree (the stored history\'s way)', () => {
    fc.assert(fc.property(fc.array(fc.tuple(arbScript, arbFields), { maxLength: 40 }), fc.array(arbScript, { maxLength: 4 }), fc.constantFrom(0, 1, 3, 8), (regs, strangers, depth) => {
      const leaves = new Map<string, RefLeaf>(regs.map(([script, fields]) => [script.toString('hex'), { key: sha(script), value: sha(elementOf(script, fields)) }]));
      const sorted = sortLeaves(leaves);
      const tree = ProofTree.from(sorted.map(latin));
      const prefixed = (i: number): Hash32 => {
        const k = Buffer.alloc(32);
        k.writeUInt16BE(depth === 0 ? 0 : i << (16 - depth), 0);
        return k.toString('latin1');
      };
      const subtrees = Array.from({ length: 2 ** depth }, (_, i) => tree.subtree(prefixed(i), depth));
      for (const key of [...sorted.map((l) => l.key), ...strangers.map((x) => sha(x))]) {
        const k = key.toString('latin1');
        const own = ProofTree.from(sorted.filter((l) => l.key.subarray(0, 2).readUInt16BE(0) >> (16 - depth) === key.readUInt16BE(0) >> (16 - depth)).map(latin));
        const { root, path } = proveThroughSubtrees(subtrees, depth, k, own);
        const expected = refProof(sorted, key);
        expect(Buffer.from(root, 'latin1').toString('hex')).toBe(refHash(sorted, 0).toString('hex'));
        expect(path.siblings.map((x) => Buffer.from(x, 'latin1').toString('hex'))).toEqual(expected.siblings);
        expect(path.terminal?.key ?? null).toBe(expected.end === null ? null : expected.end.key.toString('latin1'));
        // Another subtree's leaves in place of the key's own are refused.
        if (own.size > 0 && sorted.length > own.size) expect(() => proveThroughSubtrees(subtrees, depth, k, ProofTree.from([]))).toThrow(/do not make the subtree stored/);
      }
    }), { numRuns: 150 });
  });

  it('keys a stake by SHA256 of its script', () => {
    const s = Buffer.from('0014751e76e8199196d454941c45d1b3a323f1433bd6', 'hex');
    expect(proofKey(s)).toEqual(sha(s));
  });
});
