import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { join } from 'node:path';
import { format } from 'node:util';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'cli', 'main.js');

/** Runs the built CLI (npm test builds dist/ first) and returns its output. */
export function nodereg(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, timeout: 120_000 });
}

/**
 * Like `nodereg`, but without blocking the test's event loop: needed when the
 * CLI talks to a server running inside the test process.
 */
export function noderegAsync(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** What a run of the CLI printed and its exit status, spawned or in-process alike. */
export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** The built CLI's entry without the process around it (dist/cli/run.js). */
const RUN = join(ROOT, 'dist', 'cli', 'run.js');
let inProcessBusy = false;
/**
 * Node's one-time notice that Jest's ESM support uses an experimental API: it
 * belongs to the test process (the binary never prints it) and may land
 * during a run, so it is dropped from what the run printed.
 */
const VM_MODULES_WARNING = /\(node:\d+\) ExperimentalWarning: VM Modules is an experimental feature and might change at any time\n\(Use `node --trace-warnings \.\.\.` to show where the warning was created\)\n/;

/**
 * Runs the built CLI's `runCli` inside this process: the same yargs set-up,
 * commands and error lines as the binary, without the ~0.3 s CPU of starting
 * another node and loading the CLI again. For tests about what a command
 * prints or answers; tests about the process itself (signals, exit on crash,
 * stdin, a TTY, logs, the daemon) spawn it with `nodereg`/`noderegAsync`.
 *
 * While it runs, process.stdout/stderr writes (and console, where yargs
 * prints --help) are captured and `env` is applied to process.env; all are
 * restored afterwards. One run at a time: two would mix their output.
 */
export async function noderegIn(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<CliRun> {
  const { runCli } = (await import(RUN)) as typeof import('../../cli/run.js');
  if (inProcessBusy) throw new Error('noderegIn: another in-process run is going on; spawn with noderegAsync to run two at once');
  inProcessBusy = true;
  let stdout = '';
  let stderr = '';
  const capture = (append: (s: string) => void) => (chunk: unknown, enc?: unknown, cb?: unknown): boolean => {
    append(typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof enc === 'string' ? enc as BufferEncoding : 'utf8'));
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') process.nextTick(done as () => void);
    return true;
  };
  const toOut = (s: string) => { stdout += s; };
  const toErr = (s: string) => { stderr += s; };
  const saved = { out: process.stdout.write, err: process.stderr.write, log: console.log, error: console.error, warn: console.warn, exitCode: process.exitCode };
  const savedEnv = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    savedEnv.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  process.stdout.write = capture(toOut) as typeof process.stdout.write;
  process.stderr.write = capture(toErr) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => toOut(format(...a) + '\n');
  console.error = console.warn = (...a: unknown[]) => toErr(format(...a) + '\n');
  process.exitCode = undefined;
  try {
    const { status } = await runCli(args);
    return { status, stdout, stderr: stderr.replace(VM_MODULES_WARNING, '') };
  } finally {
    process.stdout.write = saved.out;
    process.stderr.write = saved.err;
    console.log = saved.log;
    console.error = saved.error;
    console.warn = saved.warn;
    process.exitCode = saved.exitCode;
    for (const [k, v] of savedEnv) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    inProcessBusy = false;
  }
}
