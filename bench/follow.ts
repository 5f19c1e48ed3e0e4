/**
 * `npm run bench:follow -- [--blocks 1200] [--json]`
 *
 * Loads a chain into a real bcoin regtest node with submitblock (real
 * signatures: bcoin validates everything), then measures in one run the raw
 * pipelined `getblock <hash> 0` fetch rate and the catch-up rate of
 * `nodereg index --until-synced` against the same node, and prints the ratio
 * (DESIGN.md §4 asks for at least 0.8). The catch-up is timed by the
 * daemon's own log, from reaching the node to synced; the rate including
 * process start and exit is printed beside it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { demo } from '../fixtures/generator/scenarios.js';
import { payTo } from '../fixtures/generator/wallet.js';
import { fetchBlocks } from '../indexer/fetch.js';
import { RpcClient } from '../indexer/rpc.js';

const CLI = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'cli', 'main.js');
const BCOIN = join(dirname(createRequire(import.meta.url).resolve('bcoin/package.json')), 'bin', 'node');

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
  const say = (m: string): void => {
    process.stderr.write(m + '\n');
  };

  say(`building the demo chain plus ${extra} blocks of payments (real signatures)…`);
  const c = demo();
  const miner = c.miner;
  const payees = Array.from({ length: 8 }, (_, k) => c.account(`payee${k}`, 'p2wpkh'));
  for (let b = 0; b < extra; b++) {
    for (let t = 0; t < 3; t++) c.wallet.pay(miner, [payTo(payees[(b + t) % payees.length]!, 100_000n)]);
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

    let t = process.hrtime.bigint();
    let n = 0;
    for await (const _ of fetchBlocks(rpc, 0, tip)) n++;
    const fetchSecs = Number(process.hrtime.bigint() - t) / 1e9;
    const fetchRate = n / fetchSecs;
    say(`raw pipelined getblock: ${n} blocks in ${fetchSecs.toFixed(2)} s`);

    t = process.hrtime.bigint();
    let log = '';
    const code = await new Promise<number | null>((resolve) => {
      const ix = spawn(process.execPath, [CLI, 'index', '--network', 'regtest', '--rpc', url, '--rpc-user', 'x', '--rpc-password', key,
        '--db', join(dir, 'index'), '--until-synced', '--log-json', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
      ix.stderr.on('data', (d: Buffer) => { log += d.toString(); });
      ix.on('exit', resolve);
    });
    if (code !== 0) throw new Error(`nodereg index exited ${code}: ${log}`);
    const wholeSecs = Number(process.hrtime.bigint() - t) / 1e9;
    // The catch-up itself, by the daemon's own clock: from reaching the node to synced (last flush included).
    const at = (msg: string): number => {
      const line = log.split('\n').find((l) => l.includes(`"msg":"${msg}"`));
      if (!line) throw new Error(`nodereg index never logged "${msg}"`);
      return Date.parse((JSON.parse(line) as { time: string }).time);
    };
    const indexSecs = (at('synced with node') - at('connected to node')) / 1000;
    const indexRate = (tip + 1) / indexSecs;
    const wholeRate = (tip + 1) / wholeSecs;
    say(`nodereg index --until-synced: ${tip + 1} blocks caught up in ${indexSecs.toFixed(2)} s (${wholeSecs.toFixed(2)} s with process start and exit)`);
    const ratio = indexRate / fetchRate;
    const wholeRatio = wholeRate / fetchRate;
    process.stdout.write(`fetch ${fetchRate.toFixed(0)} blocks/s, index ${indexRate.toFixed(0)} blocks/s, ratio ${ratio.toFixed(3)} (target ≥ 0.8); `
      + `with process start ${wholeRate.toFixed(0)} blocks/s, ratio ${wholeRatio.toFixed(3)}\n`);
    if (json) {
      process.stdout.write(JSON.stringify({
        fetchBlocksPerSec: Math.round(fetchRate), indexBlocksPerSec: Math.round(indexRate), ratio: Math.round(ratio * 1000) / 1000,
        wholeProcessBlocksPerSec: Math.round(wholeRate), wholeProcessRatio: Math.round(wholeRatio * 1000) / 1000,
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
