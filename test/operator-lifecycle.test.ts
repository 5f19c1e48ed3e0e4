import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ecc from '@bitcoinerlab/secp256k1';
import { Psbt, Transaction } from 'bitcoinjs-lib';
import type { Account } from '../fixtures/generator/keys.js';
import type { SigningInput } from '../fixtures/generator/sign.js';
import { nodeInfo } from '../indexer/read/queries.js';
import { openStore } from '../indexer/store/store.js';
import { nodereg, noderegIn } from './helpers/cli.js';
import { json, NETWORK, PARAMS, PARAMS_FILE, RegtestLab, SEGWIT_HEIGHT, type CliResult } from './helpers/operator.js';

/*
 * The operator's whole life cycle against a real bcoin regtest node, for each
 * way of holding the stake: fund, announce (--wait), renew, move the stake
 * away (lapsed), refund and announce again (age starts over).
 */

interface Registration {
  status: string;
  firstHeight: number;
  renewals: number;
  age: number;
  endedHeight: number | null;
  tipTxid: string;
}
interface Announced { txid: string; sent: boolean; outcome: Array<{ accepted: boolean; kind: string }>; registration: Registration }

let lab: RegtestLab;
const accounts: Record<string, Account> = {};
let holding: Account;

beforeAll(async () => {
  lab = await RegtestLab.start('operator-lifecycle');
  for (const type of ['p2wpkh', 'p2pkh', 'p2wsh'] as const) {
    accounts[type] = lab.account(`stake-${type}`, type);
    await lab.fundByCoinbase(accounts[type]!);
  }
  await lab.fillFaucet(2);
  holding = lab.account('holding', 'p2wpkh');
  await lab.mine(SEGWIT_HEIGHT + 8 - (await lab.height()));
  accounts.p2tr = lab.account('stake-p2tr', 'p2tr');
  await lab.fund(accounts.p2tr.script, 4_900_000_000n);
  await lab.mine(1);
  lab.indexUntilSynced();
}, 60_000);

afterAll(async () => {
  await lab?.stop();
});

/** The external signer of the PSBT flow: holds the key, signs every input, hands back a signed PSBT. */
function externalSigner(unsignedFile: string, acct: Account): string {
  const psbt = Psbt.fromBase64(readFileSync(unsignedFile, 'utf8').trim(), { network: NETWORK });
  for (let i = 0; i < psbt.inputCount; i++) psbt.signInput(i, acct.key);
  const signed = `${unsignedFile}.signed`;
  writeFileSync(signed, psbt.toBase64());
  return signed;
}

type Via = 'key' | 'psbt' | 'block';

/** Every input of a P2TR spend carries a BIP341 key-path signature that verifies (bcoin itself does not check). */
function expectValidTaprootSignatures(tx: Transaction, acct: Account, values: bigint[]): void {
  const outputKey = Buffer.from(acct.script).subarray(2);
  tx.ins.forEach((input, i) => {
    const hash = tx.hashForWitnessV1(i, tx.ins.map(() => acct.script), values, Transaction.SIGHASH_DEFAULT);
    expect(input.witness).toHaveLength(1);
    expect(ecc.verifySchnorr(hash, outputKey, input.witness[0]!)).toBe(true);
  });
}

/**
 * P2TR on bcoin 1.0.2: its mempool refuses witness v1 spends, so the signed
 * transaction comes from --dry-run and is mined by submitblock.
 */
async function announceInBlock(cmd: 'announce' | 'renew', acct: Account): Promise<Announced> {
  const res = await noderegIn([cmd, '--stake', acct.address, '--key-file', lab.keyFile(acct), ...lab.common(), '--dry-run', '--json']);
  if (res.status !== 0) throw new Error(`${cmd} failed (${res.status}):\n${res.stderr}`);
  const coins = await lab.coinsOf(acct);
  const out = json<{ hex: string; txid: string; signed: boolean; sent: boolean }>(res);
  expect(out).toMatchObject({ signed: true, sent: false });
  const tx = Transaction.fromHex(out.hex);
  expectValidTaprootSignatures(tx, acct, tx.ins.map((i) => coins.find((c) => c.txid === Buffer.from(i.hash).reverse().toString('hex') && c.vout === i.index)!.value));
  await lab.mineTxs([tx]);
  const { registration } = (await status(acct)).info;
  const outcome = json<{ announcements: Array<{ accepted: boolean; kind: string }> }>(await noderegIn(['explain', out.txid, '--params', PARAMS_FILE, '--db', lab.db, '--json']));
  return { txid: out.txid, sent: true, outcome: outcome.announcements, registration };
}

async function announce(cmd: 'announce' | 'renew', acct: Account, via: Via): Promise<Announced> {
  let res: CliResult;
  if (via === 'block') {
    res = { status: 0, stdout: JSON.stringify(await announceInBlock(cmd, acct)), stderr: '' };
  } else if (via === 'key') {
    res = await lab.runMining([cmd, '--stake', acct.address, '--key-file', lab.keyFile(acct), ...lab.common(), '--wait', '--json']);
  } else {
    const file = join(lab.dir, `${acct.name}-${cmd}-${Date.now()}.psbt`);
    const built = await noderegIn([cmd, '--stake', acct.address, ...lab.common(), '--witness-script', Buffer.from(acct.witnessScript!).toString('hex'), '--psbt-out', file]);
    expect(built.stderr).toBe('');
    expect(built.stdout).toMatch(/preflight\s+accepted/);
    res = await lab.runMining(['broadcast', externalSigner(file, acct), ...lab.common(), '--wait', '--json']);
  }
  if (res.status !== 0) throw new Error(`${cmd} failed (${res.status}):\n${res.stderr}\n${res.stdout}`);
  const out = json<Announced>(res);
  expect(out.outcome).toEqual([expect.objectContaining({ accepted: true, kind: cmd === 'announce' ? 'newnode' : 'renewal' })]);
  return out;
}

/** Sends the whole stake to the holding account, mines it, and returns the coin now held. */
async function moveStakeAway(acct: Account, via: Via): Promise<SigningInput> {
  const coins = await lab.coinsOf(acct);
  const total = coins.reduce((s, c) => s + c.value, 0n);
  const tx = lab.pay(coins, [{ script: holding.script, value: total - 5000n }]);
  if (via === 'block') {
    await lab.mineTxs([tx]);
  } else {
    const sent = await noderegIn(['broadcast', tx.toHex(), ...lab.rpcArgs()]);
    expect(sent.stderr).toBe('');
    expect(sent.status).toBe(0);
    await lab.mine(1);
  }
  return { txid: tx.getId(), vout: 0, value: total - 5000n, script: holding.script, owner: holding };
}

async function refund(from: SigningInput, acct: Account): Promise<void> {
  const tx = lab.pay([from], [{ script: acct.script, value: 4_500_000_000n }, { script: holding.script, value: from.value - 4_500_010_000n }]);
  await lab.rpc('sendrawtransaction', [tx.toHex()]);
  await lab.mine(1);
}

async function status(acct: Account, exit = 0): Promise<CliResult & { info: { registration: Registration; warnings: string[] } }> {
  // With --rpc, status first brings the index up to the node's tip. In-process: the readable status test below spawns it.
  const res = await noderegIn(['status', '--stake', acct.address, ...lab.common(), '--json']);
  if (res.status !== exit) throw new Error(`status exited ${res.status}, not ${exit}:\n${res.stderr}`);
  return { ...res, info: json(res) };
}

async function lifecycle(acct: Account, via: Via): Promise<void> {
  // 2–3. Announce, mined by the network, and the index shows the node active.
  const first = await announce('announce', acct, via);
  expect(first.sent).toBe(true);
  expect(first.registration).toMatchObject({ status: 'active', renewals: 0, age: 0, tipTxid: first.txid });
  const firstHeight = first.registration.firstHeight;

  // 4. Renew: one renewal, same registration.
  await lab.mine(3);
  const renewed = await announce('renew', acct, via);
  expect(renewed.registration).toMatchObject({ status: 'active', renewals: 1, firstHeight, tipTxid: renewed.txid });

  // 5. Move the stake away: the node lapses at the end of that block.
  const held = await moveStakeAway(acct, via);
  // Not live: status exits 4, for monitoring.
  const lapsed = await status(acct, 4);
  expect(lapsed.info.registration).toMatchObject({ status: 'lapsed', endedHeight: await lab.height(), renewals: 1 });
  expect(lapsed.stderr).toMatch(/^WARNING: the registration of .* lapsed at height \d+/m);

  // 6. Refund and announce again: active, age and renewals start over.
  await refund(held, acct);
  const again = await announce('announce', acct, via);
  expect(again.registration).toMatchObject({ status: 'active', renewals: 0, age: 0 });
  expect(again.registration.firstHeight).toBeGreaterThan(firstHeight);
  expect((await lab.info(acct)).history.filter((h) => h.event === 'registered')).toHaveLength(2);
}

describe('an operator on bcoin regtest, from a funded address to an active, renewed, lapsed and re-announced node', () => {
  it('runs the whole life cycle for a P2WPKH stake signed with a key file', async () => {
    await lifecycle(accounts.p2wpkh!, 'key');
  });

  it('runs the whole life cycle for a P2PKH stake signed with a key file', async () => {
    await lifecycle(accounts.p2pkh!, 'key');
  });

  it('runs the whole life cycle for a P2TR stake signed on the BIP86 key path (mined by submitblock: bcoin 1.0.2 does not relay taproot spends)', async () => {
    await lifecycle(accounts.p2tr!, 'block');
  });

  it('runs the whole life cycle for a P2WSH stake through unsigned PSBTs signed by a separate key holder and broadcast', async () => {
    await lifecycle(accounts.p2wsh!, 'psbt');
  });

  it('follows docs/operators.md from an empty wallet: a new key file, a funded address, an active and then renewed node', async () => {
    const keyFile = join(lab.dir, 'docs-stake.wif');
    const created = nodereg(['key', 'new', '--params', PARAMS_FILE, '--out', keyFile, '--json']);
    expect(created.status).toBe(0);
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const { address, script } = json<{ addresses: Array<{ type: string; address: string; script: string }> }>(created).addresses.find((a) => a.type === 'p2wpkh')!;
    expect((await noderegIn(['key', 'new', '--params', PARAMS_FILE, '--out', keyFile])).status).toBe(1);
    // Block rewards have halved below the stake by now (every 150 blocks on regtest), so a payment funds it.
    await lab.fund(Buffer.from(script, 'hex'), 4_500_000_000n);
    await lab.mine(1);
    const args = ['--stake', address, '--key-file', keyFile, ...lab.common()];
    const announced = await lab.runMining(['announce', ...args, '--wait']);
    expect(announced.status).toBe(0);
    expect(announced.stdout).toMatch(/^status\s+active$/m);
    const renewed = await lab.runMining(['renew', ...args, '--wait']);
    expect(renewed.status).toBe(0);
    expect(renewed.stdout).toMatch(/^renewals\s+1$/m);
  });

  it('prints a readable status with age, renewals, balance and blocks until expiry', () => {
    const res = nodereg(['status', '--stake', accounts.p2wpkh!.address, ...lab.common()]);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^status\s+active$/m);
    expect(res.stdout).toMatch(/^age\s+\d+ block\(s\), first seen at height \d+$/m);
    expect(res.stdout).toMatch(/^renewals\s+0$/m);
    expect(res.stdout).toMatch(/^balance\s+44\.9\d* \(minimum 42\)$/m);
    expect(res.stdout).toMatch(/^expiry\s+height \d+, in \d+ block\(s\)$/m);
    expect(res.stderr).toBe('');
  });

  it('pays a payout table from a P2PKH payer: PSBTs split by --max-outputs, signed with --key-file, broadcast, mined, and each stake credited exactly its share', async () => {
    const payer = lab.account('payer', 'p2pkh');
    // Three coins, one per transaction: the faucet's change is down to about a coin by now.
    for (let i = 0; i < 3; i++) await lab.fund(payer.script, 30_000_000n);
    await lab.mine(1);
    const to = await lab.height();
    const file = join(lab.dir, 'pay.psbt');
    // --db with --rpc catches the index up first, so it sees the payer's new coins.
    const res = await noderegIn(['payouts', ...lab.common(), '--from', String(to - 2), '--to', String(to), '--amount', '20000000',
      '--pay-from', payer.address, '--fee-rate', '3', '--psbt', file, '--max-outputs', '2', '--key-file', lab.keyFile(payer), '--broadcast', '--json']);
    if (res.status !== 0) throw new Error(`payouts failed (${res.status}):\n${res.stderr}`);
    const out = json<{ payouts: Array<{ stakeScript: string; amount: string }>; payment: { transactions: Array<{ file: string; txid: string; sent: boolean; fee: string; vsize: number }>; totals: { paid: string } } }>(res);
    // Every stake announced above is live in the window: enough rows for two transactions or more.
    expect(out.payouts.length).toBeGreaterThanOrEqual(4);
    expect(out.payment.totals.paid).toBe('20000000');
    const txs = out.payment.transactions;
    expect(txs.map((t) => t.file)).toEqual(txs.map((_, i) => join(lab.dir, `pay-${i + 1}.psbt`)));
    expect(txs).toHaveLength(Math.ceil(out.payouts.length / 2));
    expect(txs.every((t) => t.sent && BigInt(t.fee) >= BigInt(3 * t.vsize))).toBe(true);
    expect((await lab.mempool()).sort()).toEqual(txs.map((t) => t.txid).sort());

    const balances = async (): Promise<bigint[]> => {
      const db = await openStore(lab.db, PARAMS, { create: false });
      try {
        return await Promise.all(out.payouts.map(async (r) => BigInt((await nodeInfo(db, PARAMS, Buffer.from(r.stakeScript, 'hex'))).balance)));
      } finally {
        await db.close();
      }
    };
    const before = await balances();
    await lab.mine(1);
    const block = await lab.blockAt(await lab.height());
    expect(txs.every((t) => block.transactions!.some((tx) => tx.getId() === t.txid))).toBe(true);
    await status(accounts.p2wpkh!);
    const after = await balances();
    expect(after.map((b, i) => b - before[i]!)).toEqual(out.payouts.map((r) => BigInt(r.amount)));
  });
});
