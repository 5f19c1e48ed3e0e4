import { readFileSync } from 'node:fs';
import { verifyProof, type ProofJson } from '../script/verifyproof.js';

interface Table {
  valid: Array<{ description: string; root: string; proof: ProofJson }>;
  invalid: Array<{ description: string; root?: string; proof: unknown; malformed: boolean; reason: string }>;
}
const table = JSON.parse(readFileSync('fixtures/proofs/proofs.json', 'utf8')) as Table;

describe('verifyProof against the fixture table', () => {
  it.each(table.valid.map((v) => [v.description, v] as const))('accepts a valid proof: %s', (_, v) => {
    expect(verifyProof(v.proof, v.root)).toEqual({ valid: true, included: v.proof.included });
    expect(verifyProof(v.proof)).toEqual({ valid: true, included: v.proof.included });
  });

  it.each(table.invalid.map((v) => [v.description, v] as const))('refuses a tampered or malformed proof: %s', (_, v) => {
    const verdict = verifyProof(v.proof, v.root);
    expect(verdict.valid).toBe(false);
    if (verdict.valid) return;
    expect(verdict.malformed).toBe(v.malformed);
    expect(verdict.reason).toContain(v.reason);
    expect(verdict.reason).not.toMatch(/\n/);
  });

  it('covers every field of a proof with a tamper', () => {
    const what = table.invalid.filter((v) => !v.malformed).map((v) => v.description).join('\n');
    for (const field of ['sibling changed', 'sibling dropped', 'sibling added', 'key changed', 'element changed', 'other leaf key changed',
      'other leaf value changed', 'included flag cleared', 'included flag set', 'proof root changed', 'another trusted root']) {
      expect(what).toContain(field);
    }
  });

  it('never throws, whatever it is given', () => {
    for (const junk of [null, undefined, 42, 'proof', [], {}, { siblings: null }, { other: 5 }, { ...table.valid[1]!.proof, siblings: [7] }]) {
      const v = verifyProof(junk);
      expect(v).toMatchObject({ valid: false, malformed: true });
    }
  });
});

describe('the verifier runs in a browser', () => {
  // What it imports, followed through relative imports: only noble's SHA-256 may come from outside.
  function importsOf(file: string, seen = new Set<string>()): string[] {
    if (seen.has(file)) return [];
    seen.add(file);
    const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
    expect(src).not.toMatch(/\bBuffer\b|\bprocess\.|\brequire\(/);
    const out: string[] = [];
    for (const m of src.matchAll(/^import\s[^'"]*['"]([^'"]+)['"]/gm)) {
      const spec = m[1]!;
      if (spec.startsWith('./')) out.push(...importsOf(`script/${spec.slice(2).replace(/\.js$/, '.ts')}`, seen));
      else out.push(spec);
    }
    return out;
  }

  it('imports nothing but @noble/hashes, and no Node built-in or Buffer', () => {
    expect(importsOf('script/verifyproof.ts')).toEqual(['@noble/hashes/sha2']);
  });
});
