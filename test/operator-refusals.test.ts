import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ecc from '@bitcoinerlab/secp256k1';
import { networks, payments } from 'bitcoinjs-lib';
import { ECPairFactory } from 'ecpair';
import { carrier, carrierAround, newNode } from '../fixtures/generator/announce.js';
import type { Account } from '../fixtures/generator/keys.js';
import type { SigningInput } from '../fixtures/generator/sign.js';
import { nodereg, noderegIn } from './helpers/cli.js';
import { closedUrl, expectOneLineError, json, PARAMS_FILE, RegtestLab, SEGWIT_HEIGHT, type CliResult } from './helpers/operator.js';

/*
 * Every way the operator commands refuse: the preflight's reasons (nothing
 * is sent, and --force overrides with a warning), and every bad input, each
 * in one line with a non-zero exit. One bcoin node and one index serve all.
 */

let lab: RegtestLab;
let live: Account;
let fresh: Account;
let expiring: Account;
let exact: Account;
let empty: Account;
let immature: Account;
let spare: SigningInput;
let liveTimestamp: number;
let expiringTxid: string;

const now = (): number => Math.floor(Date.now() / 1000);

/** Announces with a transaction the test signs itself (no CLI), and mines it. */
async function announceDirectly(coin: SigningInput, acct: Account, timestamp: number): Promise<string> {
  const tx = lab.pay([coin], [carrier(newNode(acct, timestamp)), { script: acct.script, value: coin.value - 10_000n }]);
  await lab.rpc('sendrawtransaction', [tx.toHex()]);
  await lab.mine(1);
  return tx.getId();
}

beforeAll(async () => {
  lab = await RegtestLab.start('operator-refusals');
  live = lab.account('live', 'p2wpkh');
  fresh = lab.account('fresh', 'p2wpkh');
  expiring = lab.account('expiring', 'p2wpkh');
  exact = lab.account('exact', 'p2wpkh');
  empty = lab.account('empty', 'p2wpkh');
  immature = lab.account('immature', 'p2wpkh');
  const liveCoin = await lab.fundByCoinbase(live);
  await lab.fundByCoinbase(fresh);
  const expiringCoin = await lab.fundByCoinbase(expiring);
  spare = await lab.fundByCoinbase(lab.account('spare', 'p2wpkh'));
  await lab.fillFaucet(1);
  await lab.mine(SEGWIT_HEIGHT + 8 - (await lab.height()));
  await lab.fund(exact.script, 4_200_000_000n);
  expiringTxid = await announceDirectly(expiringCoin, expiring, now());
  await lab.mine(144);
  liveTimestamp = now();
  await announceDirectly(liveCoin, live, liveTimestamp);
  await lab.fundByCoinbase(immature);
  lab.indexUntilSynced();
}, 60_000);

afterAll(async () => {
  await lab?.stop();
});

/** The operator commands run in-process (what they answer is tested); the test of keys never echoed spawns the binary. */
const run = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> => noderegIn(args, { env });
const spawned = (args: string[], env: NodeJS.ProcessEnv = {}): CliResult => nodereg(args, { env });
const announce = (acct: Account, extra: string[] = [], cmd = 'announce'): Promise<CliResult> =>
  run([cmd, '--stake', acct.address, '--key-file', lab.keyFile(acct), ...lab.common(), ...extra]);

async function expectNothingSent(): Promise<void> {
  expect(await lab.mempool()).toEqual([]);
}

describe('the preflight refuses an announcement the indexer would reject, and sends nothing', () => {
  it('refuses INSUFFICIENT_STAKE with the balance the stake would have after the fee', async () => {
    const res = await announce(exact);
    expectOneLineError(res, /INSUFFICIENT_STAKE: balance after this transaction would be 41\.9999\d* < 42; send at least 0\.0000\d+ more to rb1/);
    await expectNothingSent();
  });

  it('refuses TIMESTAMP_IN_FUTURE for a timestamp beyond the 2-hour tolerance', async () => {
    const res = await announce(fresh, ['--timestamp', String(now() + 3 * 3600)]);
    expectOneLineError(res, /TIMESTAMP_IN_FUTURE: timestamp \d+ is 10[78]\d\d s after the expected block time \d+ \(at most 7200 s allowed\)/);
    await expectNothingSent();
  });

  it('refuses TIMESTAMP_STALE for a timestamp more than a day old', async () => {
    const res = await announce(fresh, ['--timestamp', String(now() - 2 * 86400)]);
    expectOneLineError(res, /TIMESTAMP_STALE: timestamp \d+ is 1728\d\d s before the expected block time/);
    await expectNothingSent();
  });

  it('refuses ALREADY_REGISTERED for a stake whose registration is live, and points to renew', async () => {
    const res = await announce(live);
    expectOneLineError(res, /ALREADY_REGISTERED: rb1\w+ already has a live registration \(expires at height \d+, in 14\d blocks\): keep it alive with "nodereg renew"/);
    await expectNothingSent();
  });

  it('refuses UNKNOWN_NODE when renewing a stake that was never registered, with or without --prev', async () => {
    expectOneLineError(await announce(fresh, [], 'renew'), /UNKNOWN_NODE: rb1\w+ has never been registered: announce it with "nodereg announce"/);
    expectOneLineError(await announce(fresh, ['--prev', expiringTxid, '--dry-run'], 'renew'), /UNKNOWN_NODE: rb1\w+ has never been registered/);
    await expectNothingSent();
  });

  it('refuses NOT_LIVE when renewing an expired registration', async () => {
    const res = await announce(expiring, [], 'renew');
    expectOneLineError(res, /NOT_LIVE: the registration of rb1\w+ expired at height \d+: announce it again/);
    await expectNothingSent();
  });

  it('refuses NOT_TIP when --prev names another transaction than the registration\'s tip', async () => {
    const res = await announce(live, ['--prev', expiringTxid], 'renew');
    expectOneLineError(res, new RegExp(`NOT_TIP: previous txid ${expiringTxid} is not the registration's tip [0-9a-f]{64}`));
    await expectNothingSent();
  });

  it('refuses TIMESTAMP_NOT_INCREASING for a renewal no later than the tip\'s timestamp', async () => {
    const res = await announce(live, ['--timestamp', String(liveTimestamp)], 'renew');
    expectOneLineError(res, new RegExp(`TIMESTAMP_NOT_INCREASING: timestamp ${liveTimestamp} is not after the tip's timestamp ${liveTimestamp}`));
    await expectNothingSent();
  });

  it('refuses to broadcast MULTIPLE_ANNOUNCEMENTS or a flawed carrier, and an unchecked announcement without an index', async () => {
    const two = lab.pay([spare], [carrier(newNode(fresh, now())), carrier(newNode(fresh, now())), { script: spare.script, value: spare.value - 10_000n }]);
    expectOneLineError(await run(['broadcast', two.toHex(), ...lab.common()]), /MULTIPLE_ANNOUNCEMENTS: output 0: /);
    const flawed = lab.pay([spare], [carrierAround(Buffer.of(0xc0)), { script: spare.script, value: spare.value - 10_000n }]);
    expectOneLineError(await run(['broadcast', flawed.toHex(), ...lab.common()]), /STACK_MISMATCH: output 0: /);
    const one = lab.pay([spare], [carrier(newNode(fresh, now())), { script: spare.script, value: spare.value - 10_000n }]);
    expectOneLineError(await run(['broadcast', one.toHex(), ...lab.rpcArgs()]), /checked against the index before sending: pass --db <dir> or --api <url> \(or --force/);
    await expectNothingSent();
  });

  it('still refuses in a dry run, which shows the verdict instead of a transaction', async () => {
    expectOneLineError(await announce(live, ['--dry-run']), /^nodereg: ALREADY_REGISTERED: /m);
  });

  it('sends a doomed announcement with --force after a loud warning, and the indexer rejects it as predicted', async () => {
    const res = await lab.runMining(['announce', '--stake', live.address, '--key-file', lab.keyFile(live), ...lab.common(), '--force', '--wait']);
    expect(res.stderr).toMatch(/^WARNING: --force: the indexer will reject this announcement and the fee is wasted: ALREADY_REGISTERED: /m);
    expect(res.stdout).toMatch(/preflight\s+REFUSED, sent anyway with --force: ALREADY_REGISTERED/);
    expect(res.stdout).toMatch(/newnode at height \d+: rejected, ALREADY_REGISTERED/);
    expectOneLineError(res, /the indexer rejected the announcement: ALREADY_REGISTERED/);
  });
});

describe('bad input ends in one clear line and a non-zero exit', () => {
  it('rejects an address of another network', async () => {
    const core = payments.p2wpkh({ pubkey: fresh.key.publicKey, network: networks.regtest }).address!;
    expectOneLineError(await run(['announce', '--stake', core, '--key-file', lab.keyFile(fresh), ...lab.common()]),
      /--stake: "bcrt1\w+" looks like a bech32 address of another network; bcoin-regtest addresses start with "rb1"/, 2);
  });

  it('rejects a malformed address', async () => {
    expectOneLineError(await run(['announce', '--stake', 'rb1qnotanaddress', '--key-file', lab.keyFile(fresh), ...lab.common()]), /--stake: "rb1qnotanaddress" is not a valid bech32 address/, 2);
    expectOneLineError(await run(['status', '--stake', 'hello', '--params', PARAMS_FILE, '--db', lab.db]), /--stake: "hello" is not a valid address/, 2);
  });

  it('reports an unknown stake: status of a stake that was never registered is "not live", exit 4', async () => {
    const res = await run(['status', '--stake', fresh.address, '--params', PARAMS_FILE, '--db', lab.db]);
    expect(res.status).toBe(4);
    expect(res.stdout).toMatch(/^status\s+never registered$/m);
    expect(res.stderr).toMatch(/^WARNING: rb1\w+ has never been registered \(balance 50 at height \d+\): announce it/m);
  });

  it('rejects a key that does not control the stake, naming what it does control', async () => {
    const res = await run(['announce', '--stake', fresh.address, '--key-file', lab.keyFile(live), ...lab.common()]);
    expectOneLineError(res, new RegExp(`the key file .*live\\.wif does not control ${fresh.address}: it controls ${live.address} \\(p2wpkh\\), R\\w+ \\(p2pkh\\), rb1p\\w+ \\(p2tr\\), G\\w+ \\(p2sh-p2wpkh\\)`));
  });

  it('refuses a key file that other users can read, as ssh does', async () => {
    const file = lab.keyFile(fresh, 0o644, lab.dir);
    const res = await run(['announce', '--stake', fresh.address, '--key-file', file, ...lab.common()]);
    expectOneLineError(res, /key file .*fresh\.wif is readable by other users \(permissions 0644 are too open\); run: chmod 600 /);
  });

  it('refuses a key of another network without printing it', async () => {
    const wif = ECPairFactory(ecc).fromPrivateKey(fresh.key.privateKey!, { network: networks.bitcoin }).toWIF();
    const file = join(lab.dir, 'mainnet.wif');
    writeFileSync(file, `${wif}\n`, { mode: 0o600 });
    const res = await run(['announce', '--stake', fresh.address, '--key-file', file, ...lab.common()]);
    expectOneLineError(res, /the key in key file .*mainnet\.wif belongs to another network/);
    expect(res.stderr).not.toContain(wif);
  });

  it('never accepts a key on the command line, and never echoes one (the spawned binary)', () => {
    const wif = fresh.key.toWIF();
    for (const args of [[wif], ['--wif', wif], ['--key-file', wif]]) {
      const res = spawned(['announce', '--stake', fresh.address, ...lab.common(), ...args]);
      expectOneLineError(res, /never|looks like a private key/, 2);
      expect(res.stderr + res.stdout).not.toContain(wif);
    }
    const asStake = spawned(['status', '--stake', wif, '--params', PARAMS_FILE, '--db', lab.db]);
    expectOneLineError(asStake, /--stake looks like a private key, not an address/, 2);
    expect(asStake.stderr).not.toContain(wif);
    const both = spawned(['announce', '--stake', fresh.address, '--key-file', lab.keyFile(fresh), ...lab.common()], { NODEREG_WIF: wif });
    expectOneLineError(both, /both --key-file and NODEREG_WIF are set/, 2);
  });

  it('reports an unreachable RPC', async () => {
    const url = await closedUrl();
    const res = await run(['announce', '--stake', fresh.address, '--key-file', lab.keyFile(fresh), '--rpc', url, '--params', PARAMS_FILE, '--db', lab.db]);
    expectOneLineError(res, new RegExp(`cannot reach the node at ${url} \\(ECONNREFUSED\\): is it running, and is --rpc right\\?`));
  });

  it('rejects a fee rate of 0 and an absurd one', async () => {
    expectOneLineError(await announce(fresh, ['--fee-rate', '0']), /--fee-rate must be a positive number of sat\/vB, got 0/, 2);
    expectOneLineError(await announce(fresh, ['--fee-rate', '5000']), /--fee-rate 5000 sat\/vB is absurd \(the limit is 1000 sat\/vB\)/, 2);
  });

  it('reports a stake with no unspent outputs, and one whose only coins are immature coinbase outputs', async () => {
    expectOneLineError(await announce(empty), /rb1\w+ has no unspent outputs in the index: fund it, wait for a confirmation, and try again/);
    expectOneLineError(await announce(immature), /rb1\w+ has only immature coinbase outputs; the first can be spent in a block at height \d+/);
  });

  it('asks for a key, a PSBT file or a dry run, and for exactly one index source', async () => {
    expectOneLineError(await run(['announce', '--stake', fresh.address, ...lab.common()]), /no key to sign with: give --key-file <file> or NODEREG_WIF, or write a PSBT with --psbt-out <file>/, 2);
    expectOneLineError(await run(['status', '--stake', fresh.address, '--params', PARAMS_FILE]), /give --db <dir> \(no daemon running\) or --api <url>/, 2);
    expectOneLineError(await run(['status', '--stake', fresh.address, '--db', lab.db, '--api', 'http://127.0.0.1:1']), /mutually exclusive/, 2);
  });
});

describe('renew --all', () => {
  it('skips registrations that are not due within --within blocks', async () => {
    const dir = join(lab.dir, 'due');
    mkdirSync(dir, { mode: 0o700 });
    lab.keyFile(live, 0o600, dir);
    lab.keyFile(expiring, 0o600, dir);
    const res = await run(['renew', '--all', '--key-dir', dir, '--within', '10', ...lab.common()]);
    expect(res.stderr).toMatch(/^WARNING: rb1\w+: expired at height \d+; announce it again/m);
    expect(res.stdout).toMatch(new RegExp(`^not-due\\s+${live.address}: expires in 14\\d blocks`, 'm'));
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^0 renewed, 1 not due, 1 ended, 0 failed$/m);
  });

  it('renews every due registration whose key is in the directory, reports each node and keeps going past a bad key file', async () => {
    const dir = join(lab.dir, 'bulk');
    mkdirSync(dir, { mode: 0o700 });
    lab.keyFile(live, 0o600, dir);
    lab.keyFile(fresh, 0o600, dir);
    const open = lab.keyFile(exact, 0o644, dir);
    chmodSync(open, 0o644);
    const res = await lab.runMining(['renew', '--all', '--key-dir', dir, '--within', '1000', ...lab.common(), '--wait', '--wait-timeout', '20']);
    expect(res.stdout).toMatch(/^failed\s+\S*exact\.wif: key file .* is readable by other users/m);
    expect(res.stdout).toMatch(/^no-registration\s+\S*fresh\.wif: no registration for any address of this key/m);
    expect(res.stdout).toMatch(new RegExp(`^renewed\\s+${live.address}: sent [0-9a-f]{64}`, 'm'));
    expect(res.stdout).toMatch(new RegExp(`^confirmed\\s+${live.address}: [0-9a-f]{64}:0 renewal at height \\d+: accepted`, 'm'));
    expectOneLineError(res, /1 renewal\(s\) failed \(see above\)/);
    const status = json<{ registration: { renewals: number } }>(await run(['status', '--stake', live.address, '--params', PARAMS_FILE, '--db', lab.db, '--json']));
    expect(status.registration.renewals).toBe(1);
  });

  it('status exits 0 when fine, 3 when expiry is within --warn-blocks, 4 when the registration ended', async () => {
    const fine = await run(['status', '--stake', live.address, '--params', PARAMS_FILE, '--db', lab.db]);
    expect({ status: fine.status, stderr: fine.stderr }).toEqual({ status: 0, stderr: '' });
    const res = await run(['status', '--stake', live.address, '--params', PARAMS_FILE, '--db', lab.db, '--warn-blocks', '1000']);
    expect(res.status).toBe(3);
    expect(res.stderr).toMatch(/^WARNING: the registration of rb1\w+ expires in \d+ block\(s\), at height \d+: renew it now/m);
    expect((await run(['status', '--stake', live.address, '--params', PARAMS_FILE, '--db', lab.db, '--warn-within', '1000'])).status).toBe(3);
    const ended = await run(['status', '--stake', expiring.address, '--params', PARAMS_FILE, '--db', lab.db, '--json']);
    expect(ended.status).toBe(4);
    expect(JSON.parse(ended.stdout)).toMatchObject({ health: 'not-live', registration: { status: 'expired' } });
  });

  it('renew --all without --within renews what status warns about: here nothing is due', async () => {
    const dir = join(lab.dir, 'default-window');
    mkdirSync(dir, { mode: 0o700 });
    lab.keyFile(live, 0o600, dir);
    const res = await run(['renew', '--all', '--key-dir', dir, ...lab.common(), '--dry-run']);
    expect(res.stdout).toMatch(new RegExp(`^not-due\\s+${live.address}: expires in \\d+ blocks`, 'm'));
    expect(res.status).toBe(0);
  });
});
