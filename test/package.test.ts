import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { ROOT } from './helpers/cli.js';

/*
 * What `npm pack` publishes, and whether the Node versions it claims are the
 * ones its dependencies accept.
 */

interface Packed { files: Array<{ path: string }> }
interface Lock { packages: Record<string, { dev?: boolean; engines?: { node?: string } | string[] }> }

// semver comes with fastify (a dependency); the version of it at the top of node_modules is Babel's older one.
const semver = createRequire(createRequire(import.meta.url).resolve('fastify'))('semver') as {
  satisfies(v: string, range: string): boolean;
  minVersion(range: string): { version: string } | null;
};

describe('the published package', () => {
  it('holds the library, the CLI, the docs and the params files, and no bench, test or fixture-generator code', () => {
    const res = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(res.status).toBe(0);
    const paths = (JSON.parse(res.stdout) as Packed[])[0]!.files.map((f) => f.path);
    for (const needed of ['bin/nodereg', 'dist/cli/main.js', 'dist/indexer/index.js', 'dist/indexer/index.d.ts', 'dist/indexer/chain/chainworker.js', 'dist/indexer/chain/sweepworker.js', 'dist/script/verifyproof.js', 'package.json', 'README.md', 'docs/operations.md']) {
      expect(paths).toContain(needed);
    }
    expect(paths.some((p) => p.startsWith('fixtures/params/'))).toBe(true);
    const unwanted = paths.filter((p) => /^(dist\/)?(bench|test|fixtures\/generator|fixtures\/chains)\//.test(p) || p.startsWith('dist/fixtures/') || p.startsWith('tools/'));
    expect(unwanted).toEqual([]);
  }, 180_000);

  it('serves the proof verifier on its own as nodereg/verify', () => {
    const proof = JSON.stringify((JSON.parse(readFileSync(join(ROOT, 'fixtures/proofs/proofs.json'), 'utf8')) as { valid: Array<{ proof: unknown }> }).valid[3]!.proof);
    const script = `import('nodereg/verify').then((m) => console.log(JSON.stringify(m.verifyProof(${proof}))))`;
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(res.stderr).toBe('');
    expect(JSON.parse(res.stdout)).toEqual({ valid: true, included: true });
  });

  it('declares the Node versions every production dependency accepts, and this Node is one of them', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as Lock;
    const oldest = semver.minVersion(pkg.engines.node)!.version;
    expect(semver.satisfies(process.version, pkg.engines.node)).toBe(true);
    const refusing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      if (path === '' || entry.dev || range === undefined) continue;
      if (!semver.satisfies(oldest, range) || !semver.satisfies(process.version, range)) refusing.push(`${path} wants node ${range}`);
    }
    expect({ oldest, refusing }).toEqual({ oldest, refusing: [] });
  });
});
