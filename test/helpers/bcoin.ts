import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** An error answer from the node's JSON-RPC, with bitcoind's numeric code. */
export class RpcError extends Error {
  constructor(readonly method: string, readonly code: number, message: string) {
    super(`${method}: ${message} (code ${code})`);
    this.name = 'RpcError';
  }
}

/** A running bcoin regtest node owned by a test. Always `stop()` it (afterAll/finally). */
export interface BcoinNode {
  /** bitcoind-compatible JSON-RPC URL; user any, password `apiKey`. */
  readonly url: string;
  readonly port: number;
  readonly apiKey: string;
  readonly pid: number;
  rpc<T = unknown>(method: string, params?: readonly unknown[]): Promise<T>;
  /** Posts a JSON-RPC body as it is, with this Authorization header: for a test's proxy in front of the node. */
  relay(body: string, authorization: string): Promise<{ status: number; text: string }>;
  /** What the node printed so far (warnings and errors), for failure messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartBcoinOptions {
  /** Extra command-line flags, e.g. ['--index-tx=true']. */
  readonly args?: readonly string[];
  /** How long to wait for RPC to answer; 30 s if omitted. */
  readonly readyTimeoutMs?: number;
  /**
   * Keep the chain on disk in this directory (instead of in memory) and leave
   * it there on stop, so a test can restart the same node: pass the same
   * `dataDir`, `port` and `apiKey` again.
   */
  readonly dataDir?: string;
  readonly port?: number;
  readonly apiKey?: string;
  /**
   * Raise regtest's relay floor to this many satoshis per kvB (bcoin's own is
   * 1000), as a node with a high -minrelaytxfee has. bcoin has no flag for it,
   * so a preloaded script edits its network object in the node's process.
   */
  readonly minRelay?: number;
}

const require = createRequire(import.meta.url);
const BCOIN_NODE = join(dirname(require.resolve('bcoin/package.json')), 'bin', 'node');
const MIN_RELAY_PRELOAD = join(dirname(fileURLToPath(import.meta.url)), 'bcoin-minrelay.cjs');

/** Every node a test started and has not stopped: killed if the test process exits without stopping them. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts bcoin 1.0.2 in regtest with an in-memory chain, no wallet, no P2P
 * listener and no worker processes, on a free HTTP port with a random API key,
 * and resolves once its RPC answers. The node is a real full node: blocks
 * submitted to it go through full consensus validation.
 */
export async function startBcoin(opts: StartBcoinOptions = {}): Promise<BcoinNode> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts.port ?? await freePort(), opts);
    } catch (err) {
      lastError = err;
      // Another process may have taken the port between probing and binding: retry on a fresh one.
      if (!(err instanceof Error) || !/EADDRINUSE/.test(err.message)) throw err;
    }
  }
  throw lastError;
}

async function startOnce(port: number, opts: StartBcoinOptions): Promise<BcoinNode> {
  const apiKey = opts.apiKey ?? randomBytes(16).toString('hex');
  const prefix = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'nodereg-bcoin-'));
  const removePrefix = (): void => {
    if (!opts.dataDir) rmSync(prefix, { recursive: true, force: true });
  };
  const env: NodeJS.ProcessEnv = {};
  // bcoin reads BCOIN_* variables as options; a developer's own settings must not leak in.
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('BCOIN_')) env[k] = v;
  if (opts.minRelay !== undefined) env.NODEREG_TEST_MIN_RELAY = String(opts.minRelay);
  const args = [
    ...(opts.minRelay !== undefined ? ['--require', MIN_RELAY_PRELOAD] : []),
    BCOIN_NODE, '--network=regtest', `--memory=${opts.dataDir ? 'false' : 'true'}`, '--workers=false', '--listen=false', '--no-wallet',
    // --listen=false does not stop outgoing connections: point the peer list nowhere,
    // so a test node never syncs from whatever listens on regtest's default port.
    '--only=127.0.0.1:1', '--seeds=127.0.0.1:1',
    '--log-level=warning', `--prefix=${prefix}`, '--http-host=127.0.0.1', `--http-port=${port}`, `--api-key=${apiKey}`,
    ...(opts.args ?? []),
  ];
  const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
  const url = `http://127.0.0.1:${port}/`;
  const auth = `Basic ${Buffer.from(`x:${apiKey}`).toString('base64')}`;
  let nextId = 0;

  // node:http with kept-alive connections, not fetch: a test submits hundreds of
  // blocks one call each, and fetch costs this process several times the CPU per call.
  const agent = new HttpAgent({ keepAlive: true });
  const postOnce = (body: string, authorization: string): Promise<{ status: number; text: string; reused: boolean }> => new Promise((resolve, reject) => {
    const req = httpRequest({
      host: '127.0.0.1', port, method: 'POST', path: '/', agent,
      headers: { Authorization: authorization, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.on('error', (err: NodeJS.ErrnoException) => reject(Object.assign(err, { reused: req.reusedSocket })));
    req.end(body);
  });
  const post = async (body: string, authorization = auth): Promise<{ status: number; text: string }> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const { status, text } = await postOnce(body, authorization);
        return { status, text };
      } catch (err) {
        // bcoin closes idle kept-alive sockets; a call may pick one at that moment (a
        // test that ran the CLI synchronously for a while) and fail before an answer.
        // Only a call on a reused connection is retried: nothing else can be such a race.
        const e = err as NodeJS.ErrnoException & { reused?: boolean };
        if (!e.reused || !['ECONNRESET', 'EPIPE'].includes(e.code ?? '') || attempt === 3) throw err;
      }
    }
  };

  const rpc = async <T>(method: string, params: readonly unknown[] = []): Promise<T> => {
    const res = await post(JSON.stringify({ method, params, id: ++nextId }));
    const text = res.text;
    let body: { result?: unknown; error?: { code?: number; message?: string } | null };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new RpcError(method, res.status, `HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (body.error) throw new RpcError(method, body.error.code ?? -1, body.error.message ?? 'unknown error');
    return body.result as T;
  };

  const stop = async (): Promise<void> => {
    agent.destroy();
    if (live.has(child)) {
      child.kill('SIGTERM');
      if (!(await waitForExit(child, 5000))) {
        child.kill('SIGKILL');
        await waitForExit(child, 5000);
      }
      live.delete(child);
    }
    removePrefix();
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      live.delete(child);
      removePrefix();
      throw new Error(`bcoin exited before answering RPC (code ${child.exitCode}):\n${out}`);
    }
    try {
      await rpc('getblockcount');
      break;
    } catch (err) {
      if (err instanceof RpcError) break; // it answered, even if with an error
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`bcoin did not answer RPC on port ${port} within the timeout:\n${out}`);
    }
    await sleep(100);
  }

  return { url, port, apiKey, pid: child.pid!, rpc, relay: post, output: () => out, stop };
}

/** A chain a node holds on disk, kept once per suite: see {@link bcoinSnapshot}. */
export interface BcoinSnapshot {
  /** A new node on a copy of the chain, as if the blocks had just been submitted to it; `stop()` removes the copy. */
  start(opts?: Omit<StartBcoinOptions, 'dataDir'>): Promise<BcoinNode>;
  /** Removes the kept chain (afterAll). */
  remove(): void;
}

/**
 * Gives `fill` a node keeping its chain on disk, stops it, and keeps the
 * directory: each case of a suite then starts its own node on a copy. A copy
 * starts in about the time of an empty node, where submitting the same
 * hundreds of blocks again costs every case many times that.
 */
export async function bcoinSnapshot(fill: (node: BcoinNode) => Promise<void>): Promise<BcoinSnapshot> {
  const dir = mkdtempSync(join(tmpdir(), 'nodereg-bcoin-snap-'));
  const node = await startBcoin({ dataDir: dir });
  try {
    await fill(node);
  } finally {
    // A clean stop: bcoin writes its chain state out before it exits.
    await node.stop();
  }
  return {
    async start(opts = {}) {
      const copy = mkdtempSync(join(tmpdir(), 'nodereg-bcoin-'));
      cpSync(dir, copy, { recursive: true });
      let started: BcoinNode;
      try {
        started = await startBcoin({ ...opts, dataDir: copy });
      } catch (err) {
        rmSync(copy, { recursive: true, force: true });
        throw err;
      }
      return {
        ...started,
        stop: async () => {
          await started.stop();
          rmSync(copy, { recursive: true, force: true });
        },
      };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
