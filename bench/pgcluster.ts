/**
 * A throwaway PostgreSQL cluster for one test suite (or a benchmark run): Debian's server binaries
 * (tools/ensure-postgres.sh installs them), a data directory in a temporary
 * folder, no TCP listener, a Unix socket in that folder, and durability off
 * (fsync, full-page writes, synchronous commit) since the cluster is thrown
 * away. PostgreSQL refuses to run as root, so a root test runs the server as
 * the `postgres` system user the package creates.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PgCluster {
  /** The socket directory (also the connection "host"). */
  readonly dir: string;
  /** A connection URL for database `name` (the one made by `startPostgres` by default). */
  url(name?: string): string;
  /** Creates another empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown), keeping its data: `start()` brings the same cluster back. */
  halt(): void;
  start(): void;
  /** Stops the server at once and removes the cluster. Safe to call twice. */
  stop(): void;
}

function binDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))) : [];
  if (versions.length === 0) throw new Error('PostgreSQL server binaries are missing: run `bash tools/ensure-postgres.sh` (as root) or `sudo apt-get install postgresql`');
  versions.sort((a, b) => Number(b) - Number(a));
  return join(root, versions[0]!, 'bin');
}

const asRoot = userInfo().uid === 0;

/** Runs a server binary, as `postgres` when we are root. */
function run(bin: string, args: string[]): void {
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', bin, ...args]] : [bin, args];
  const r = spawnSync(cmd, argv, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
}

/** Starts a fresh cluster with one database, `nodereg`. Always `stop()` it (afterAll). */
export async function startPostgres(): Promise<PgCluster> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-pg-'));
  const data = join(dir, 'data');
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const user = asRoot ? 'postgres' : userInfo().username;
  const options = `-k ${dir} -c listen_addresses= -c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=40 -c shared_buffers=16MB`;
  let stopped = false;
  const cluster: PgCluster = {
    dir,
    url: (name = 'nodereg') => `postgresql://${user}@localhost/${name}?host=${encodeURIComponent(dir)}`,
    async createDatabase(name) {
      const c = new pg.Client({ connectionString: cluster.url('postgres') });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
      } finally {
        await c.end();
      }
      return cluster.url(name);
    },
    halt: () => run(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'fast', '-w']),
    start: () => run(join(bin, 'pg_ctl'), ['start', '-D', data, '-w', '-s', '-l', join(dir, 'log'), '-o', options]),
    stop() {
      if (stopped) return;
      stopped = true;
      try {
        run(join(bin, 'pg_ctl'), ['stop', '-D', data, '-m', 'immediate', '-w']);
      } catch {
        // Not running (a test halted it): removing the directory is all that is left.
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    run(join(bin, 'initdb'), ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8', '--locale=C']);
    cluster.start();
    await cluster.createDatabase('nodereg');
  } catch (err) {
    cluster.stop();
    throw err;
  }
  return cluster;
}
