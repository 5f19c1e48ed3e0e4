import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demo } from '../fixtures/generator/scenarios.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { submitAll } from './helpers/chains.js';
import { ROOT } from './helpers/cli.js';

/** The first ```js block of docs/embedding.md, exactly as a reader would copy it. */
function docExample(): string {
  const md = readFileSync(join(ROOT, 'docs', 'embedding.md'), 'utf8');
  const m = /```js\n([\s\S]*?)```/.exec(md);
  if (!m) throw new Error('docs/embedding.md has no js example');
  return m[1]!;
}

let node: BcoinNode;
let dir: string;
beforeAll(async () => {
  node = await startBcoin();
  dir = mkdtempSync(join(tmpdir(), 'nodereg-embed-'));
});
afterAll(async () => {
  await node.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('runs the example of docs/embedding.md against a real node and prints the registry it followed', async () => {
  await submitAll(node, demo().bestChain().slice(1));
  // Inside the repository, so that `import … from 'nodereg'` resolves to this package by name.
  const file = join(ROOT, `.embed-example-${process.pid}.mjs`);
  writeFileSync(file, docExample());
  try {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [file], {
        env: { ...process.env, NODEREG_DB: join(dir, 'db'), NODE_RPC_URL: node.url, NODE_RPC_PASSWORD: node.apiKey, NODE_RPC_USER: 'x' },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
      child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    const expected = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'chains', 'demo', 'expected.json'), 'utf8')) as { root: string; nodes: Array<{ status: string }> };
    const lines = out.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('registered ')).length).toBe(5);
    expect(lines.filter((l) => l.startsWith('expired ')).length).toBe(1);
    expect(lines.filter((l) => l.startsWith('lapsed ')).length).toBe(1);
    expect(lines.filter((l) => l.startsWith('rejected ')).length).toBe(20);
    const active = expected.nodes.filter((n) => n.status === 'active').length;
    expect(out.stdout).toContain(`${active} active nodes at height 450, root ${expected.root}`);
  } finally {
    rmSync(file, { force: true });
  }
});
