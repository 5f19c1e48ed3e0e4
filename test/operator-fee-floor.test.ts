import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Account } from '../fixtures/generator/keys.js';
import { noderegIn } from './helpers/cli.js';
import { expectOneLineError, json, RegtestLab, SEGWIT_HEIGHT } from './helpers/operator.js';

/*
 * A node whose relay floor is far above the CLI's default rate, as on a fresh
 * Bitcoin Core or Namecoin Core node (no fee estimate yet, -minrelaytxfee or
 * mempoolminfee at 100 sat/vB). bcoin has no flag for its floor, so this bcoin
 * is started with its regtest network object's minRelay raised in its own
 * process: its mempool then refuses a transaction below the floor unless its
 * coins are old enough to relay free, and it reports the floor in
 * getmempoolinfo and getnetworkinfo as Core does.
 */

/** 100 sat/vB, in bcoin's satoshis per kvB. */
const FLOOR = 100_000;

let lab: RegtestLab;
let stake: Account;
let control: Account;

interface Announced {
  sent: boolean;
  txid: string;
  fee: string;
  vsize: number;
  feeRate: number;
  feeSource: string;
  feeWhy: string;
}

beforeAll(async () => {
  lab = await RegtestLab.start('operator-fee-floor', { minRelay: FLOOR });
  await lab.fillFaucet(2);
  await lab.mine(SEGWIT_HEIGHT + 8 - (await lab.height()));
  stake = lab.account('stake-p2pkh', 'p2pkh');
  control = lab.account('control-p2pkh', 'p2pkh');
  // The faucet's coinbases are old enough to relay free; the stakes' coins are
  // one block old when spent, so the floor applies to them.
  await lab.fund(stake.script, 4_500_000_000n);
  await lab.fund(control.script, 4_500_000_000n);
  await lab.mine(1);
  lab.indexUntilSynced();
}, 120_000);

afterAll(async () => {
  await lab?.stop();
});

describe('operator fees against a node that enforces a floor of 100 sat/vB', () => {
  it('the node reports its floor and refuses a transaction at the default rate (the control)', async () => {
    expect(await lab.rpc<{ mempoolminfee: number }>('getmempoolinfo')).toMatchObject({ mempoolminfee: 0.001 });
    expect(await lab.rpc<{ relayfee: number }>('getnetworkinfo')).toMatchObject({ relayfee: 0.001 });
    const [coin] = await lab.coinsOf(control);
    // About 190 vB paying 400 base units: 2 sat/vB, the CLI's old fallback.
    const tx = lab.pay([coin!], [{ script: control.script, value: coin!.value - 400n }]);
    await lab.rpc('sendrawtransaction', [tx.toHex()]).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 300));
    expect(await lab.mempool()).not.toContain(tx.getId());
    // The same spend at the floor is kept: the low fee was the only fault.
    const paid = lab.pay([coin!], [{ script: control.script, value: coin!.value - 25_000n }]);
    await lab.rpc('sendrawtransaction', [paid.toHex()]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await lab.mempool()).toContain(paid.getId());
    await lab.mine(1);
  });

  it('announce pays the node\'s floor instead of the default, says why, and the node keeps the transaction', async () => {
    const res = await lab.runMining(['announce', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...lab.common(), '--wait', '--json']);
    if (res.status !== 0) throw new Error(`announce failed (${res.status}):\n${res.stderr}\n${res.stdout}`);
    const out = json<Announced>(res);
    expect(out).toMatchObject({ sent: true, feeRate: 100, feeSource: 'mempoolminfee' });
    expect(out.feeWhy).toMatch(/the node's floor \(mempoolminfee\), above 2 sat\/vB \(estimatesmartfee has no estimate yet; the default 2 sat\/vB\)/);
    expect(BigInt(out.fee)).toBeGreaterThanOrEqual(BigInt(out.vsize * 100));
  });

  it('renew raises an explicit --fee-rate below the floor to the floor, and the text report names the rate and the reason', async () => {
    const res = await lab.runMining(['renew', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...lab.common(), '--fee-rate', '3', '--wait']);
    if (res.status !== 0) throw new Error(`renew failed (${res.status}):\n${res.stderr}\n${res.stdout}`);
    expect(res.stdout).toMatch(/^fee +\S+ .*\(\d+ base units, 100 sat\/vB from mempoolminfee: the node's floor \(mempoolminfee\), above --fee-rate 3 sat\/vB: the node refuses anything less\)$/m);
    expect(res.stdout).toMatch(/^sent /m);
  });

  it('keeps a rate above the floor, and says the floor was below it', async () => {
    const res = await noderegIn(['renew', '--stake', stake.address, '--key-file', lab.keyFile(stake), ...lab.common(), '--fee-rate', '150', '--dry-run', '--json']);
    if (res.status !== 0) throw new Error(`renew failed (${res.status}):\n${res.stderr}\n${res.stdout}`);
    expect(json<Announced>(res)).toMatchObject({ feeRate: 150, feeSource: '--fee-rate', feeWhy: 'as given; the node\'s floor is 100 sat/vB (mempoolminfee)' });
  });

  it('payouts --pay-from refuses a --fee-rate below the node\'s floor rather than raise it, and writes nothing', async () => {
    const file = join(lab.dir, 'low.psbt');
    const res = await noderegIn(['payouts', ...lab.common(), '--from', '1', '--to', '2', '--amount', '100000', '--pay-from', control.address, '--fee-rate', '5', '--psbt', file]);
    expectOneLineError(res, /--fee-rate 5 sat\/vB is below the node's floor of 100 sat\/vB \(mempoolminfee \(getmempoolinfo\) at http:\/\/127\.0\.0\.1:\d+\/?\): it would refuse the payment; pass --fee-rate 100 or more\n$/);
    expect(existsSync(file)).toBe(false);
  });
});
