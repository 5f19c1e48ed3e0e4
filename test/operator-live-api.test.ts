import { spawn, type ChildProcess } from 'node:child_process';
import type { Account } from '../fixtures/generator/keys.js';
import { freePort } from './helpers/bcoin.js';
import { CLI } from './helpers/cli.js';
import { json, PARAMS_FILE, RegtestLab, SEGWIT_HEIGHT } from './helpers/operator.js';

/*
 * The operator CLI against the real read API of a running daemon
 * (`nodereg index --serve`), not a fake: announce --wait, status, renew --wait.
 */

let lab: RegtestLab;
let stake: Account;
let daemon: ChildProcess;
let api: string;
let log = '';

async function waitForLog(re: RegExp, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!re.test(log)) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${re}:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  lab = await RegtestLab.start('operator-live-api');
  stake = lab.account('stake-live', 'p2wpkh');
  await lab.fundByCoinbase(stake);
  await lab.mine(SEGWIT_HEIGHT + 4 - (await lab.height()));
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  daemon = spawn(process.execPath, [CLI, 'index', '--params', PARAMS_FILE, ...lab.rpcArgs(), '--db', lab.db, '--serve', `127.0.0.1:${port}`, '--poll-interval', '100', '--log-json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  daemon.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
  await waitForLog(/"msg":"serving the read API"/);
  await waitForLog(new RegExp(`"msg":"synced with node","height":${await lab.height()}`));
}, 90_000);

afterAll(async () => {
  daemon?.kill('SIGTERM');
  await new Promise((r) => daemon?.once('exit', r));
  await lab?.stop();
});

it('announces, reports and renews a node through a running daemon\'s read API', async () => {
  const via = ['--rpc', lab.node.url, '--rpc-user', 'x', '--rpc-password', lab.node.apiKey, '--params', PARAMS_FILE, '--api', api];
  const announced = await lab.runMining(['announce', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...via, '--wait', '--json']);
  expect(announced.stderr).toBe('');
  expect(announced.status).toBe(0);
  const a = json<{ registration: { status: string; renewals: number } }>(announced);
  expect(a.registration).toMatchObject({ status: 'active', renewals: 0 });

  const status = await lab.runMining(['status', '--stake', stake.address, '--params', PARAMS_FILE, '--api', api, '--json']);
  expect(status.status).toBe(0);
  expect(JSON.stringify(JSON.parse(status.stdout))).toContain('"status":"active"');

  const renewed = await lab.runMining(['renew', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...via, '--wait', '--json']);
  expect(renewed.stderr).toBe('');
  expect(renewed.status).toBe(0);
  expect(json<{ registration: { renewals: number } }>(renewed).registration.renewals).toBe(1);
  expect(log).toMatch(/"msg":"renewed"/);
});
