/**
 * `npm run bench:follow -- [--blocks 1200] [--payments 3] [--runs 1] [--json]`
 *
 * Loads a chain into a real bcoin regtest node with submitblock (real
 * signatures: bcoin validates everything), then measures in one run the raw
 * pipelined `getblock <hash> 0` fetch rate and the catch-up rate of
 * `nodereg index --until-synced` against the same node, and prints the ratio
 * (docs/spec.md §4 asks for at least 0.8). The catch-up is timed by the
 * daemon's own log, from reaching the node to synced; the rate including
 * process start and exit is printed beside it. The JSON also gives the CPU
 * per block of the fetcher, the node and the indexer (on Linux), which the
 * machine's load skews far less than rates. With `--runs N` the batched
 * fetch and the catch-up are measured N times, alternated, and each figure is
 * the median. BENCH_INDEX_NODE_ARGS passes node flags to the indexer alone
 * (NODE_OPTIONS refuses --cpu-prof); BENCH_INDEX_ARGS adds arguments to
 * `nodereg index`; BENCH_INDEX_CLI runs another build's dist/cli/main.js as the
 * indexer, to compare builds on the same node and chain.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { fetchBlocks } from '../indexer/node/fetch.js';
import { RpcClient } from '../indexer/node/rpc.js';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'cli', 'main.js');
const BCOIN = join(dirname(createRequire(import.meta.url).resolve('bcoin/package.json')), 'bin', 'node');

/**
 * CPU ms (user + system) a process has used so far, from /proc on Linux;
 * NaN elsewhere or once it has exited. Rates swing with the machine's load;
 * CPU per block much less, so the JSON carries both.
 */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
  } catch {
    return NaN;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const json = argv.includes('--json');
  const i = argv.indexOf('--blocks');
  const extra = i >= 0 && /^\d+$/.test(argv[i + 1] ?? '') ? Number(argv[i + 1]) : 1200;
  const j = argv.indexOf('--payments');
  const perBlock = j >= 0 && /^\d+$/.test(argv[j + 1] ?? '') ? Number(argv[j + 1]) : 3;
  const k = argv.indexOf('--runs');
  const runs = k >= 0 && /^[1-9]\d*$/.test(argv[k + 1] ?? '') ? Number(argv[k + 1]) : 1;
  const say = (m: string): void => {
    process.stderr.write(m + '\n');
  };

  say(`building the demo chain plus ${extra} blocks of ${perBlock} payments (real signatures)…`);
  const c = demo();
  const miner = c.miner;
  const payees = Array.from({ length: 8 }, (_, k) => c.account(`payee${k}`, 'p2wpkh'));
  for (let b = 0; b < extra; b++) {
    for (let t = 0; t < perBlock; t++) c.wallet.pay(miner, [payTo(payees[(b + t) % payees.length]!, 100_000n)]);
    c.mine();
  }
  const blocks = c.bestChain().slice(1);

  const dir = mkdtempSync(join(tmpdir(), 'nodereg-bench-follow-'));
  const port = await freePort();
  const key = randomBytes(16).toString('hex');
  const node: ChildProcess = spawn(process.execPath, [BCOIN, '--network=regtest', '--memory=true', '--workers=false', '--listen=false',
    '--no-wallet', '--only=127.0.0.1:1', '--seeds=127.0.0.1:1', '--log-level=warning', `--prefix=${dir}`,
    '--http-host=127.0.0.1', `--http-port=${port}`, `--api-key=${key}`], { stdio: 'ignore' });
  try {
    const url = `http://127.0.0.1:${port}`;
    const rpc = new RpcClient({ url, user: 'x', password: key, retries: 40, backoffMs: 250, maxBackoffMs: 500 });
    await rpc.getBestBlockHash();
    say(`submitting ${blocks.length} blocks to bcoin…`);
    for (const b of blocks) {
      const answer = await rpc.call<string | null>('submitblock', [Buffer.from(b.raw).toString('hex')]);
      if (answer !== null) throw new Error(`bcoin refused block ${b.height}: ${answer}`);
    }
    const tip = blocks.length;

    // The node's raw rate as docs/spec.md §4 defines it: one `getblock <hash> 0`
    // per request, eight in flight.
    const hashes = await rpc.getBlockHashes(0, tip);
    const t = process.hrtime.bigint();
    let n = 0;
    let cursor = 0;
    const worker = async (): Promise<void> => {
      while (cursor < hashes.length) {
        await rpc.getBlockRaw(hashes[cursor++]!);
        n++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const fetchSecs = Number(process.hrtime.bigint() - t) / 1e9;
    const fetchRate = n / fetchSecs;
    say(`raw pipelined getblock (one block per request, 8 in flight): ${n} blocks in ${fetchSecs.toFixed(2)} s`);
    // Extra node flags for the indexer only, e.g. BENCH_INDEX_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile the catch-up.
    const indexNodeArgs = (process.env.BENCH_INDEX_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
    // Another build's CLI for the indexer (e.g. an old dist/cli/main.js), to compare builds against the same node and chain.
    const indexCli = process.env.BENCH_INDEX_CLI ?? CLI;
    // Extra arguments for `nodereg index`, e.g. BENCH_INDEX_ARGS="--memory-mib 1" for a catch-up that commits and reads through often.
    const indexArgs = (process.env.BENCH_INDEX_ARGS ?? '').split(' ').filter((a) => a !== '');

    // What the indexer's own fetcher gets: small blocks batched, as in catch-up.
    const batched = async (): Promise<{ rate: number; fetcherUs: number; nodeUs: number }> => {
      const t0 = process.hrtime.bigint();
      const nodeCpu0 = cpuMs(node.pid);
      const ownCpu0 = process.cpuUsage();
      let m = 0;
      for await (const _ of fetchBlocks(rpc, 0, tip)) m++;
      const secs = Number(process.hrtime.bigint() - t0) / 1e9;
      const ownCpu = process.cpuUsage(ownCpu0);
      say(`batched getblock (the indexer's fetcher): ${m} blocks in ${secs.toFixed(2)} s`);
      return { rate: m / secs, fetcherUs: (ownCpu.user + ownCpu.system) / m, nodeUs: ((cpuMs(node.pid) - nodeCpu0) * 1000) / m };
    };

    const catchUp = async (run: number): Promise<{ rate: number; wholeRate: number; indexUs: number; nodeUs: number }> => {
      const t0 = process.hrtime.bigint();
      const db = join(dir, `index-${run}`);
      let log = '';
      // CPU of the indexer and of the node, read as the daemon logs reaching the node and being synced (10 ms ticks).
      const cpuAt: Record<'start' | 'end', { index: number; node: number } | null> = { start: null, end: null };
      const code = await new Promise<number | null>((resolve) => {
        const ix = spawn(process.execPath, [...indexNodeArgs, indexCli, 'index', '--network', 'regtest', '--rpc', url, '--rpc-user', 'x', '--rpc-password', key,
          '--db', db, '--until-synced', '--log-json', '--log-level', 'info', ...indexArgs], { stdio: ['ignore', 'ignore', 'pipe'] });
        ix.stderr.on('data', (d: Buffer) => {
          log += d.toString();
          if (cpuAt.start === null && log.includes('"msg":"connected to node"')) cpuAt.start = { index: cpuMs(ix.pid), node: cpuMs(node.pid) };
          if (cpuAt.end === null && log.includes('"msg":"synced with node"')) cpuAt.end = { index: cpuMs(ix.pid), node: cpuMs(node.pid) };
        });
        ix.on('exit', resolve);
      });
      rmSync(db, { recursive: true, force: true });
      if (code !== 0) throw new Error(`nodereg index exited ${code}: ${log}`);
      const wholeSecs = Number(process.hrtime.bigint() - t0) / 1e9;
      // The catch-up itself, by the daemon's own clock: from reaching the node to synced (last flush included).
      const at = (msg: string): number => {
        const line = log.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
        if (!line) throw new Error(`nodereg index never logged "${msg}"`);
        return Date.parse((JSON.parse(line) as { time: string }).time);
      };
      const indexSecs = (at('synced with node') - at('connected to node')) / 1000;
      say(`nodereg index --until-synced: ${tip + 1} blocks caught up in ${indexSecs.toFixed(2)} s (${wholeSecs.toFixed(2)} s with process start and exit)`);
      const perBlock = (k: 'index' | 'node'): number => (cpuAt.start && cpuAt.end ? ((cpuAt.end[k] - cpuAt.start[k]) * 1000) / (tip + 1) : NaN);
      return { rate: (tip + 1) / indexSecs, wholeRate: (tip + 1) / wholeSecs, indexUs: perBlock('index'), nodeUs: perBlock('node') };
    };

    // Alternated, so that a change in the machine's load hits both alike; each figure is the median of the runs.
    const fetches: Array<Awaited<ReturnType<typeof batched>>> = [];
    const catchUps: Array<Awaited<ReturnType<typeof catchUp>>> = [];
    for (let run = 0; run < runs; run++) {
      fetches.push(await batched());
      catchUps.push(await catchUp(run));
    }
    const median = (xs: number[]): number => {
      const sorted = xs.filter(Number.isFinite).sort((a, b) => a - b);
      if (sorted.length === 0) return NaN;
      const mid = sorted.length >> 1;
      return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    };
    const batchedRate = median(fetches.map((f) => f.rate));
    const indexRate = median(catchUps.map((c) => c.rate));
    const wholeRate = median(catchUps.map((c) => c.wholeRate));
    const r3 = (x: number): number => Math.round(x * 1000) / 1000;
    const orNull = (x: number): number | null => (Number.isFinite(x) ? Math.round(x) : null);
    const ratio = indexRate / fetchRate;
    process.stdout.write(`raw fetch ${fetchRate.toFixed(0)} blocks/s, index ${indexRate.toFixed(0)} blocks/s, ratio ${ratio.toFixed(3)}\n`
      + `  against batched fetching (${batchedRate.toFixed(0)} blocks/s): ${(indexRate / batchedRate).toFixed(3)} (target ≥ 0.8); `
      + `with process start and exit (${wholeRate.toFixed(0)} blocks/s): ${(wholeRate / fetchRate).toFixed(3)}`
      + `${runs > 1 ? ` (medians of ${runs} runs)` : ''}\n`);
    if (json) {
      process.stdout.write(JSON.stringify({
        fetchBlocksPerSec: Math.round(fetchRate), indexBlocksPerSec: Math.round(indexRate), ratio: r3(ratio),
        batchedFetchBlocksPerSec: Math.round(batchedRate), batchedRatio: r3(indexRate / batchedRate),
        wholeProcessBlocksPerSec: Math.round(wholeRate), wholeProcessRatio: r3(wholeRate / fetchRate),
        // CPU µs per block: of this process's batched fetcher, of the node serving it, of the indexer
        // and of the node during the catch-up (null where /proc is not there).
        cpuUsPerBlock: {
          fetcher: orNull(median(fetches.map((f) => f.fetcherUs))), nodeWhileBatched: orNull(median(fetches.map((f) => f.nodeUs))),
          index: orNull(median(catchUps.map((c) => c.indexUs))), nodeWhileIndexing: orNull(median(catchUps.map((c) => c.nodeUs))),
        },
        runs,
        load: loadavg().map((x) => Math.round(x * 100) / 100),
      }) + '\n');
    }
  } finally {
    node.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:follow: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
