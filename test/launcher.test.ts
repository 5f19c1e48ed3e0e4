import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './helpers/cli.js';

/*
 * bin/nodereg, the sh launcher npm installs as the `nodereg` command: it caps
 * glibc's malloc arenas and fixes its mmap threshold unless the caller chose a value, finds the package
 * through npm's symlinks, and execs Node in the same process.
 */

const LAUNCHER = join(ROOT, 'bin', 'nodereg');
const PATH = `${dirname(process.execPath)}:${process.env.PATH ?? ''}`;

interface Seen { arenas: string | null; mmapThreshold: string | null; args: string[]; pid: number }

describe('the nodereg launcher', () => {
  let dir: string;
  let viaLinks: string;

  beforeAll(() => {
    // A package tree with the real launcher and, in place of the CLI, a stand-in that reports what it was given.
    dir = mkdtempSync(join(tmpdir(), 'nodereg-launcher-'));
    mkdirSync(join(dir, 'pkg', 'bin'), { recursive: true });
    mkdirSync(join(dir, 'pkg', 'dist', 'cli'), { recursive: true });
    copyFileSync(LAUNCHER, join(dir, 'pkg', 'bin', 'nodereg'));
    writeFileSync(join(dir, 'pkg', 'dist', 'cli', 'main.js'), [
      'const args = process.argv.slice(2);',
      'process.stdout.write(JSON.stringify({ arenas: process.env.MALLOC_ARENA_MAX ?? null, mmapThreshold: process.env.MALLOC_MMAP_THRESHOLD_ ?? null, args, pid: process.pid }));',
      'process.exitCode = Number(args[0] === "exit" ? args[1] : 0);',
    ].join('\n'));
    // As npm links it: a relative symlink in node_modules/.bin, and a global bin link pointing at that one.
    mkdirSync(join(dir, '.bin'));
    mkdirSync(join(dir, 'global'));
    symlinkSync(join('..', 'pkg', 'bin', 'nodereg'), join(dir, '.bin', 'nodereg'));
    viaLinks = join(dir, 'global', 'nodereg');
    symlinkSync(join(dir, '.bin', 'nodereg'), viaLinks);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; seen: Seen; pid: number | undefined } => {
    const base: NodeJS.ProcessEnv = { ...process.env, PATH };
    delete base.MALLOC_ARENA_MAX;
    delete base.MALLOC_MMAP_THRESHOLD_;
    const res = spawnSync(cmd, args, { encoding: 'utf8', env: { ...base, ...env }, timeout: 60_000 });
    expect(res.stderr).toBe('');
    return { status: res.status, seen: JSON.parse(res.stdout) as Seen, pid: res.pid };
  };

  it('sets two arenas when unset, through chained symlinks, in the same process, passing arguments unchanged', () => {
    const args = ['recount', '--blocks-dir', 'a dir with spaces', "it's", '$HOME', '*', ''];
    const r = run(viaLinks, args);
    expect(r.status).toBe(0);
    expect(r.seen.arenas).toBe('2');
    expect(r.seen.mmapThreshold).toBe('131072');
    expect(r.seen.args).toEqual(args);
    expect(r.seen.pid).toBe(r.pid);
  });

  it("keeps a caller's value, even an empty one", () => {
    expect(run(viaLinks, [], { MALLOC_ARENA_MAX: '6' }).seen.arenas).toBe('6');
    expect(run(viaLinks, [], { MALLOC_ARENA_MAX: '' }).seen.arenas).toBe('');
    expect(run(viaLinks, [], { MALLOC_MMAP_THRESHOLD_: '65536' }).seen).toMatchObject({ arenas: '2', mmapThreshold: '65536' });
    expect(run(viaLinks, [], { MALLOC_MMAP_THRESHOLD_: '' }).seen.mmapThreshold).toBe('');
  });

  it('returns the exit status of the CLI', () => {
    expect(run(viaLinks, ['exit', '3']).status).toBe(3);
    expect(run(join(dir, '.bin', 'nodereg'), ['exit', '2']).status).toBe(2);
  });

  it('runs the real CLI from the repository', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };
    expect(pkg.bin).toEqual({ nodereg: 'bin/nodereg' });
    const version = spawnSync(LAUNCHER, ['--version'], { encoding: 'utf8', env: { ...process.env, PATH }, timeout: 60_000 });
    expect([version.status, version.stdout.trim()]).toEqual([0, pkg.version]);
    const usage = spawnSync(LAUNCHER, ['recount', '--no-such-option'], { encoding: 'utf8', env: { ...process.env, PATH }, timeout: 60_000 });
    expect(usage.status).toBe(2);
  });
});
