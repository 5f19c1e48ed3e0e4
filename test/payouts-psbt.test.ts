/**
 * The payment transactions of `nodereg payouts --pay-from`, without a node:
 * coin selection and fee against the signed size for each payer kind,
 * splitting above --max-outputs (every row paid exactly once), refusals
 * (insufficient funds, a key file others can read, a malformed --utxos),
 * and the CLI writing out-1.psbt… over the demo chain's index. The end to
 * end payment on bcoin is in operator-lifecycle.test.ts.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ecc from '@bitcoinerlab/secp256k1';
import fc from 'fast-check';
import { Psbt, Transaction } from 'bitcoinjs-lib';
import { deriveKey, makeAccount, type Account, type AccountType } from '../fixtures/generator/keys.js';
import { UserError } from '../cli/common.js';
import { addressToScript } from '../script/address.js';
import { parseWif, toNetwork } from '../cli/operator/keys.js';
import { dustThreshold, planPayment, type PayerCoin, type PayRow, type PlanRequest } from '../cli/payment/plan.js';
import { buildPaymentPsbt, payerSpend, psbtFiles } from '../cli/payment/psbt.js';
import { readUtxosFile } from '../cli/payment/utxos.js';
import { buildServer } from '../indexer/http/server.js';
import { payoutTable } from '../indexer/read/payouts.js';
import { utxosOf } from '../indexer/read/queries.js';
import { openStore } from '../indexer/store/store.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';

const PARAMS = BUILTIN_NETWORKS.regtest!;
const NETWORK = toNetwork(PARAMS);
const acct = (name: string, type: AccountType): Account => makeAccount(name, type, deriveKey('payouts-psbt', name, NETWORK), NETWORK);
const COIN = 100_000_000n;

/** A previous transaction paying `values` to `script`, so legacy inputs have a real nonWitnessUtxo. */
function prevTx(script: Uint8Array, values: bigint[], tag: number): Transaction {
  const tx = new Transaction();
  tx.version = 2;
  tx.addInput(Buffer.alloc(32, tag), 0);
  for (const v of values) tx.addOutput(script, v);
  return tx;
}

function coinsOf(tx: Transaction, withPrev = true): PayerCoin[] {
  return tx.outs.map((o, vout) => ({ txid: tx.getId(), vout, value: o.value, height: 10, coinbase: false, ...(withPrev ? { prevTx: Buffer.from(tx.toBuffer()) } : {}) }));
}

const KINDS: AccountType[] = ['p2wpkh', 'p2pkh', 'p2tr', 'p2wsh', 'p2sh-p2wpkh'];
/** Stake scripts of every kind, derived once (key derivation is the slow part). */
const STAKES = Array.from({ length: 40 }, (_, i) => Buffer.from(acct(`stake-${i}`, KINDS[i % KINDS.length]!).script));

/** Rows paying stake scripts of every kind. */
function rowsOf(n: number, amount = 100_000n): PayRow[] {
  return Array.from({ length: n }, (_, index) => ({ index, stakeScript: STAKES[index]!, amount: amount + BigInt(index) }));
}

const sumOf = (xs: bigint[]): bigint => xs.reduce((s, x) => s + x, 0n);

describe('payment planning and signing, per payer kind', () => {
  for (const kind of ['p2wpkh', 'p2pkh', 'p2tr', 'p2sh-p2wpkh'] as const) {
    it(`a ${kind} payer: the PSBT alone lets a wallet sign it, and the fee pays at least the rate on the signed size`, () => {
      const payer = acct(`payer-${kind}`, kind);
      const key = parseWif(payer.key.toWIF(), PARAMS, 'test key');
      const spend = payerSpend(Buffer.from(payer.script), key, payer.address);
      const coins = coinsOf(prevTx(payer.script, [30_000n, 250_000n, 400_000n], 1));
      const rows = rowsOf(5);
      const [plan, ...more] = planPayment({ rows, coins, payerScript: spend.script, input: spend.input, feeRate: 7, maxOutputs: 1000, nextHeight: 100, label: payer.address });
      expect(more).toHaveLength(0);
      // Largest first: 400 000 cannot pay 500 010 and the fee, 400 000 + 250 000 can.
      expect(plan!.inputs.map((c) => c.value)).toEqual([400_000n, 250_000n]);
      expect(plan!.fee).toBe(BigInt(Math.ceil(7 * plan!.vsize)));
      expect(plan!.change).toBe(650_000n - plan!.paid - plan!.fee);

      // Another wallet reads the PSBT and signs with nothing but what it carries.
      const wire = buildPaymentPsbt(plan!, spend, 99, NETWORK).toBase64();
      const psbt = Psbt.fromBase64(wire, { network: NETWORK });
      psbt.data.inputs.forEach((input) => {
        if (kind === 'p2pkh') expect(input.witnessUtxo).toBeUndefined();
        else expect(input.witnessUtxo?.script).toEqual(Buffer.from(payer.script));
        expect(input.nonWitnessUtxo !== undefined).toBe(kind !== 'p2tr');
      });
      const signer = key.signingFor(payer.script)!.signer;
      for (let i = 0; i < psbt.inputCount; i++) psbt.signInput(i, signer);
      expect(psbt.validateSignaturesOfAllInputs((pub, hash, sig) => (pub.length === 32 ? ecc.verifySchnorr(hash, pub, sig) : ecc.verify(hash, pub, sig)))).toBe(true);
      psbt.finalizeAllInputs();
      const tx = psbt.extractTransaction();
      // The estimate counts each signature at its largest: never below the signed size, at most a byte per input above.
      expect(tx.virtualSize()).toBeLessThanOrEqual(plan!.vsize);
      expect(plan!.vsize - tx.virtualSize()).toBeLessThanOrEqual(plan!.inputs.length);
      expect(Number(plan!.fee) / tx.virtualSize()).toBeGreaterThanOrEqual(7);
      expect(tx.outs.map((o) => [Buffer.from(o.script).toString('hex'), o.value])).toEqual([
        ...rows.map((r) => [r.stakeScript.toString('hex'), r.amount]),
        [Buffer.from(payer.script).toString('hex'), plan!.change],
      ]);
    });
  }

  it('a key that does not control the payer is refused, naming what it controls', () => {
    const payer = acct('payer-x', 'p2wpkh');
    const other = parseWif(acct('other', 'p2wpkh').key.toWIF(), PARAMS, 'key file k');
    expect(() => payerSpend(Buffer.from(payer.script), other, payer.address)).toThrow(/the key file k does not control the payer bcrt1q\w+: it controls bcrt1q/);
  });

  it('a P2WSH payer is refused: a multisig payer signs elsewhere', () => {
    const payer = acct('payer-wsh', 'p2wsh');
    expect(() => payerSpend(Buffer.from(payer.script), null, payer.address)).toThrow(/P2WSH address: a multisig payer is not supported/);
  });
});

describe('splitting above --max-outputs', () => {
  const payer = acct('payer-split', 'p2wpkh');
  const script = Buffer.from(payer.script);
  const spend = payerSpend(script, null, payer.address);
  const request = (rows: PayRow[], coins: PayerCoin[], maxOutputs: number, feeRate = 3): PlanRequest =>
    ({ rows, coins, payerScript: script, input: spend.input, feeRate, maxOutputs, nextHeight: 1000, label: payer.address });

  it('pays every row exactly once, in table order, each transaction with its own inputs, and balances every transaction', () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 12 }),
      fc.array(fc.bigInt({ min: 1_000n, max: 3n * COIN }), { minLength: 1, maxLength: 12 }),
      fc.integer({ min: 1, max: 50 }),
      (n, maxOutputs, values, rate) => {
        const rows = rowsOf(n, 1_000_000n);
        const coins = coinsOf(prevTx(script, values, 7), false);
        let plans;
        try {
          plans = planPayment(request(rows, coins, maxOutputs, rate));
        } catch (err) {
          expect(err).toBeInstanceOf(UserError);
          expect((err as Error).message).toMatch(/^insufficient funds/);
          return;
        }
        expect(plans).toHaveLength(Math.ceil(n / maxOutputs));
        expect(plans.flatMap((p) => p.rows.map((r) => r.index))).toEqual(rows.map((r) => r.index));
        const spent = plans.flatMap((p) => p.inputs.map((c) => `${c.txid}:${c.vout}`));
        expect(new Set(spent).size).toBe(spent.length);
        for (const p of plans) {
          expect(p.rows.length).toBeLessThanOrEqual(maxOutputs);
          expect(sumOf(p.inputs.map((c) => c.value))).toBe(p.paid + p.fee + p.change);
          expect(p.fee).toBeGreaterThanOrEqual(BigInt(Math.ceil(rate * p.vsize)));
          if (p.change > 0n) expect(p.change).toBeGreaterThanOrEqual(dustThreshold(script));
        }
      },
    ), { numRuns: 100, seed: 14 });
  });

  it('the PSBTs together hold exactly one output per row', () => {
    const rows = rowsOf(23);
    const coins = coinsOf(prevTx(script, Array(6).fill(COIN), 8), false);
    const plans = planPayment(request(rows, coins, 5));
    expect(plans.map((p) => p.rows.length)).toEqual([5, 5, 5, 5, 3]);
    const outs = plans.flatMap((p) => buildPaymentPsbt(p, spend, 0, NETWORK).txOutputs).filter((o) => !Buffer.from(o.script).equals(script));
    expect(outs.map((o) => [Buffer.from(o.script).toString('hex'), o.value])).toEqual(rows.map((r) => [r.stakeScript.toString('hex'), r.amount]));
  });

  it('names the files out-1.psbt, out-2.psbt… and keeps a single file as given', () => {
    expect(psbtFiles('pay/out.psbt', 1)).toEqual(['pay/out.psbt']);
    expect(psbtFiles('pay/out.psbt', 3)).toEqual(['pay/out-1.psbt', 'pay/out-2.psbt', 'pay/out-3.psbt']);
    expect(psbtFiles('./a.b/pay', 2)).toEqual(['./a.b/pay-1', './a.b/pay-2']);
  });

  it('refuses when the coins fall short, saying how much more to send', () => {
    const rows = rowsOf(3, 1_000_000n);
    const toPay = sumOf(rows.map((r) => r.amount));
    const coins = coinsOf(prevTx(script, [toPay], 9), false);
    expect(() => planPayment(request(rows, coins, 1000))).toThrow(/^insufficient funds: bcrt1q\w+ has 0\.03000003 spendable in 1 coin\(s\), but the 3 payout\(s\) need 0\.03000003 plus at least 0\.00000\d+ in fees at 3 sat\/vB: send at least 0\.00000\d+ more/);
    expect(() => planPayment(request(rows, [], 1000))).toThrow(/^insufficient funds: .* has 0 spendable in 0 coin\(s\)/);
  });

  it('refuses when one coin would have to pay two transactions: their change confirms only later', () => {
    const coins = coinsOf(prevTx(script, [COIN], 10), false);
    expect(() => planPayment(request(rowsOf(4), coins, 2))).toThrow(/^insufficient funds for transaction 2 of 2 \(rows 3\.\.4\).*send another coin to .*, or raise --max-outputs/);
  });

  it('leaves immature coinbase coins alone', () => {
    const coins: PayerCoin[] = [{ txid: 'ab'.repeat(32), vout: 0, value: 50n * COIN, height: 950, coinbase: true }];
    expect(() => planPayment(request(rowsOf(2), coins, 10))).toThrow(/has 0 spendable in 0 coin\(s\) \(1 immature coinbase coin\(s\) not counted\)/);
  });

  it('refuses a row below the dust a node relays, pointing at --min-payout', () => {
    const rows = [{ index: 0, stakeScript: Buffer.from(acct('tiny', 'p2pkh').script), amount: 545n }];
    expect(() => planPayment(request(rows, coinsOf(prevTx(script, [COIN], 11), false), 10))).toThrow(/row 1 pays 545 base units .* below the 546 a node relays .*raise --min-payout to at least 546/);
  });
});

describe('the --utxos file', () => {
  const payer = acct('payer-utxos', 'p2pkh');
  const script = Buffer.from(payer.script);
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodereg-utxos-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, body: string): string => {
    const p = join(dir, name);
    writeFileSync(p, body);
    return p;
  };

  it('reads base units, listunspent amounts in coins, and previous transactions checked against the txid', () => {
    const prev = prevTx(script, [12_345n, 2n * COIN], 3);
    const coins = readUtxosFile(file('ok.json', JSON.stringify({ utxos: [
      { txid: 'aa'.repeat(32), vout: 1, value: '150000000' },
      { txid: 'bb'.repeat(32), vout: 0, amount: 0.00012345, scriptPubKey: script.toString('hex'), confirmations: 3 },
      { txid: prev.getId(), vout: 1, prevTx: prev.toHex(), height: 7 },
    ] })), script);
    expect(coins.map((c) => [c.value, c.height, c.prevTx !== undefined])).toEqual([[150_000_000n, -1, false], [12_345n, -1, false], [2n * COIN, 7, true]]);
  });

  const cases: Array<[string, string, RegExp]> = [
    ['not JSON', '[{"txid": ', /is not JSON .*see "Paying the nodes" in docs\/operators\.md/],
    ['not a list', '{"coins": []}', /must hold a JSON array of coins, or \{"utxos": \[\.\.\.\]\}/],
    ['a bad txid', '[{"txid": "xyz", "vout": 0, "value": "1"}]', /entry 1: "txid" must be 64 hex digits/],
    ['a negative vout', `[{"txid": "${'a'.repeat(64)}", "vout": -1, "value": "1"}]`, /entry 1: "vout" must be a whole number ≥ 0/],
    ['no value', `[{"txid": "${'a'.repeat(64)}", "vout": 0}]`, /entry 1: give its "value" in base units \(or "amount" in coins\)/],
    ['a fractional value', `[{"txid": "${'a'.repeat(64)}", "vout": 0, "value": 1.5}]`, /entry 1: "value" must be a whole number of base units/],
    ['too many decimals', `[{"txid": "${'a'.repeat(64)}", "vout": 0, "amount": 0.000000001}]`, /entry 1: "amount" must be a number of coins with at most 8 decimals/],
    ['another script', `[{"txid": "${'a'.repeat(64)}", "vout": 0, "value": "5", "scriptPubKey": "0014${'00'.repeat(20)}"}]`, /entry 1: its scriptPubKey is not the --pay-from address's/],
    ['a prevTx of another txid', `[{"txid": "${'a'.repeat(64)}", "vout": 0, "prevTx": "${prevTx(script, [5n], 4).toHex()}"}]`, /entry 1: "prevTx" is transaction [0-9a-f]{64}, not a{64}/],
    ['a duplicate', `[{"txid": "${'a'.repeat(64)}", "vout": 0, "value": "5"}, {"txid": "${'A'.repeat(64)}", "vout": 0, "value": "5"}]`, /lists a{64}:0 twice/],
  ];
  it.each(cases)('refuses %s with a message naming the entry', (_name, body, pattern) => {
    expect(() => readUtxosFile(file('bad.json', body), script)).toThrow(pattern);
  });
});

// The CLI runs in-process (see noderegIn); the index is built and the key-on-the-command-line test is run by the spawned binary.
describe('nodereg payouts --pay-from over the demo chain (no node)', () => {
  const DEMO_BLOCKS = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
  const payer = acct('payer-cli', 'p2wpkh');
  let dir: string;
  let db: string;
  const base = (): string[] => ['payouts', '--network', 'regtest', '--db', db, '--from', '440', '--to', '445', '--amount', '1000003', '--min-payout', '200', '--pay-from', payer.address, '--fee-rate', '2'];
  const utxos = (coins: Array<{ value: string }>): string => {
    const p = join(dir, `utxos-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(p, JSON.stringify(coins.map((c, i) => ({ txid: (i + 1).toString(16).padStart(64, '0'), vout: 0, ...c }))));
    return p;
  };
  const keyFile = (mode: number): string => {
    const p = join(dir, `payer-${mode.toString(8)}.wif`);
    writeFileSync(p, `${payer.key.toWIF()}\n`, { mode });
    chmodSync(p, mode);
    return p;
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodereg-pay-'));
    db = join(dir, 'db');
    const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', DEMO_BLOCKS, '--db', db]);
    if (res.status !== 0) throw new Error(res.stderr);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes one PSBT per --max-outputs rows, signed with the key file, paying each row of the table once', async () => {
    const store = await openStore(db, PARAMS, { create: false });
    const table = await payoutTable(store, PARAMS, { from: 440, to: 445, amount: 1_000_003n, minPayout: 200n }).finally(() => store.close());
    expect(table.payouts.length).toBeGreaterThanOrEqual(3);
    const out = join(dir, 'pay.psbt');
    const res = await noderegIn([...base(), '--psbt', out, '--max-outputs', '2', '--utxos', utxos([{ value: '900000' }, { value: '800000' }, { value: '700000' }]), '--key-file', keyFile(0o600), '--json']);
    if (res.status !== 0) throw new Error(res.stderr);
    const got = JSON.parse(res.stdout) as { payouts: unknown[]; payment: { transactions: Array<{ file: string; txid: string; signed: boolean; sent: boolean; hex: string }>; totals: { rows: number; paid: string } } };
    expect(got.payouts).toEqual(table.payouts.map((r) => expect.objectContaining(r)));
    const files = got.payment.transactions.map((t) => t.file);
    expect(files).toEqual(psbtFiles(out, Math.ceil(table.payouts.length / 2)));
    expect(got.payment.totals).toMatchObject({ rows: table.payouts.length, paid: '1000003' });
    const paid: string[] = [];
    for (const t of got.payment.transactions) {
      expect(t).toMatchObject({ signed: true, sent: false });
      const tx = Psbt.fromBase64(readFileSync(t.file, 'utf8').trim(), { network: NETWORK }).extractTransaction();
      expect(tx.getId()).toBe(t.txid);
      expect(tx.toHex()).toBe(t.hex);
      for (const o of tx.outs) if (!Buffer.from(o.script).equals(Buffer.from(payer.script))) paid.push(`${Buffer.from(o.script).toString('hex')}:${o.value}`);
    }
    expect(paid).toEqual(table.payouts.map((r) => `${r.stakeScript}:${r.amount}`));
    // Never over an earlier payment's files.
    const again = await noderegIn([...base(), '--psbt', out, '--max-outputs', '2', '--utxos', utxos([{ value: '900000' }, { value: '800000' }])]);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/pay-1\.psbt.* already exist\(s\): remove them or choose another --psbt/);
  });

  it('spends the payer\'s coins as the index holds them, the same through --db and through --api', async () => {
    // Alice's stake in the demo chain: a P2WPKH address holding coins.
    const alice = 'bcrt1qw08gd26j454qfj0986nae4pemvk8uu8d454g2g';
    const args = ['payouts', '--network', 'regtest', '--from', '440', '--to', '445', '--amount', '1000003', '--pay-from', alice, '--fee-rate', '2', '--json'];
    const viaDb = await noderegIn([...args, '--db', db, '--psbt', join(dir, 'db.psbt')]);
    if (viaDb.status !== 0) throw new Error(viaDb.stderr);
    const store = await openStore(db, PARAMS, { create: false });
    const server = await buildServer({ db: store, params: PARAMS });
    let viaApi;
    let coins;
    try {
      coins = (await utxosOf(store, addressToScript(alice, PARAMS))).map((c) => `${c.txid}:${c.vout}`);
      viaApi = await noderegIn([...args, '--api', await server.listen('127.0.0.1', 0), '--psbt', join(dir, 'api.psbt')]);
    } finally {
      await server.close();
      await store.close();
    }
    if (viaApi.status !== 0) throw new Error(viaApi.stderr);
    type Out = { payment: { transactions: Array<{ file: string; psbt: string }> } };
    const [a, b] = [JSON.parse(viaDb.stdout) as Out, JSON.parse(viaApi.stdout) as Out];
    const strip = (o: Out): unknown => ({ ...o, payment: { ...o.payment, transactions: o.payment.transactions.map((t) => ({ ...t, file: null })) } });
    expect(strip(b)).toEqual(strip(a));
    const spent = Psbt.fromBase64(a.payment.transactions[0]!.psbt).txInputs.map((i) => `${Buffer.from(i.hash).reverse().toString('hex')}:${i.index}`);
    expect(spent.length).toBeGreaterThan(0);
    for (const op of spent) expect(coins).toContain(op);
  });

  it('refuses a key file that others can read, and writes nothing', async () => {
    const out = join(dir, 'open.psbt');
    const res = await noderegIn([...base(), '--psbt', out, '--utxos', utxos([{ value: '5000000' }]), '--key-file', keyFile(0o644)]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^nodereg: key file .*payer-644\.wif is readable by other users \(permissions 0644 are too open\); run: chmod 600/m);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses a key on the command line without echoing it (the spawned binary)', () => {
    const wif = payer.key.toWIF();
    const res = nodereg([...base(), '--psbt', join(dir, 'x.psbt'), wif]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(/looks like a private key/);
    expect(res.stderr).not.toContain(wif);
  });

  it('refuses a malformed --utxos file and insufficient funds with one clear line each', async () => {
    const bad = join(dir, 'bad-utxos.json');
    writeFileSync(bad, '{"utxos": [{"txid": "00", "vout": 0}]}');
    const malformed = await noderegIn([...base(), '--psbt', join(dir, 'y.psbt'), '--utxos', bad]);
    expect(malformed.status).toBe(1);
    expect(malformed.stderr).toMatch(/^nodereg: --utxos .*bad-utxos\.json: entry 1: "txid" must be 64 hex digits\n$/);
    const poor = await noderegIn([...base(), '--psbt', join(dir, 'z.psbt'), '--utxos', utxos([{ value: '1000000' }])]);
    expect(poor.status).toBe(1);
    expect(poor.stderr).toMatch(/^nodereg: insufficient funds: bcrt1q\w+ has 0\.01 spendable in 1 coin\(s\), but the \d+ payout\(s\) need 0\.01000003 plus at least/);
  });

  it('writes an unsigned PSBT that says what to do next, and needs --fee-rate and --psbt', async () => {
    const out = join(dir, 'unsigned.psbt');
    const res = await noderegIn([...base(), '--psbt', out, '--utxos', utxos([{ value: '5000000' }])]);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^payment +from bcrt1q\w+ at 2 sat\/vB \(not checked against a node's relay floor: give --rpc\)$/m);
    expect(res.stdout).toMatch(/^next +sign it with the payer's wallet, then: nodereg broadcast/m);
    expect(Psbt.fromBase64(readFileSync(out, 'utf8').trim()).data.inputs[0]!.witnessUtxo).toBeDefined();
    expect((await noderegIn([...base().filter((a) => a !== '--fee-rate' && a !== '2'), '--psbt', out])).stderr).toMatch(/--pay-from needs --fee-rate/);
    expect((await noderegIn(base())).stderr).toMatch(/--pay-from needs --psbt <file>/);
    expect((await noderegIn(['payouts', '--network', 'regtest', '--db', db, '--from', '440', '--to', '445', '--amount', '1000', '--psbt', out])).stderr).toMatch(/--psbt go\(es\) with --pay-from/);
  });
});
