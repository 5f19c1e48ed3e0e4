import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './helpers/cli.js';

/*
 * docs/proofs.md's twenty-line verifier, run as a reader would copy it, on
 * every proof of the fixture table: true for each valid one, false for each
 * tampered one.
 */

interface Table {
  valid: Array<{ description: string; root: string; proof: { proofRoot: string } }>;
  invalid: Array<{ description: string; root?: string; proof: { proofRoot?: string }; malformed: boolean }>;
}

describe('the verification example of docs/proofs.md', () => {
  it('accepts every valid fixture proof and refuses every tampered one', () => {
    const doc = readFileSync(join(ROOT, 'docs', 'proofs.md'), 'utf8');
    const code = /```js\n([\s\S]*?)```/.exec(doc)![1]!;
    expect(code.split('\n').filter((l) => l.trim() !== '').length).toBeLessThanOrEqual(22);
    // The example imports @noble/hashes by name; from a temporary directory, name this checkout's copy.
    const noble = pathToFileURL(createRequire(join(ROOT, 'package.json')).resolve('@noble/hashes/sha2')).href.replace(/\/sha2\.js$/, '/esm/sha2.js');
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-doc-'));
    try {
      writeFileSync(join(dir, 'verify.mjs'), code.replace("'@noble/hashes/sha2'", JSON.stringify(noble)));
      const table = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'proofs', 'proofs.json'), 'utf8')) as Table;
      const cases = [
        ...table.valid.map((v) => ({ description: v.description, proof: v.proof, root: v.root, valid: true })),
        ...table.invalid.filter((v) => !v.malformed).map((v) => ({ description: v.description, proof: v.proof, root: v.root ?? v.proof.proofRoot, valid: false })),
      ];
      writeFileSync(join(dir, 'cases.json'), JSON.stringify(cases));
      const runner = `import { verify } from './verify.mjs'; import { readFileSync } from 'node:fs';
        const cases = JSON.parse(readFileSync(new URL('./cases.json', import.meta.url), 'utf8'));
        console.log(JSON.stringify(cases.map((c) => ({ description: c.description, valid: verify(c.proof, c.root) }))));`;
      writeFileSync(join(dir, 'run.mjs'), runner);
      const res = spawnSync(process.execPath, [join(dir, 'run.mjs')], { encoding: 'utf8', timeout: 60_000 });
      expect(res.stderr).toBe('');
      expect(JSON.parse(res.stdout)).toEqual(cases.map((c) => ({ description: c.description, valid: c.valid })));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
