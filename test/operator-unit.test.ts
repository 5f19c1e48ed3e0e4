import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { payments, Transaction } from 'bitcoinjs-lib';
import { carrier, carrierAround, newNode, renewal } from '../fixtures/generator/announce.js';
import { deriveKey, makeAccount, type Account, type AccountType } from '../fixtures/generator/keys.js';
import { UsageError, UserError } from '../cli/common.js';
import { buildPsbt, planSpend, selectCoins, signPsbt, type StakeCoin } from '../cli/operator/build.js';
import { readTransactionArg } from '../cli/operator/broadcast.js';
import { looksLikeWif, parseWif, readKeyDir, readKeyFile, type StakeKey } from '../cli/operator/keys.js';
import { decodeRefusal, findAnnouncement, preflight, type RegistrationState, type StakeState } from '../cli/operator/preflight.js';
import { assess, STATUS_EXIT } from '../cli/operator/report.js';
import { estimateVsize } from '../cli/operator/size.js';
import type { NodeInfo } from '../indexer/read/queries.js';
import { encodeCarrier, type Announcement } from '../script/carrier.js';
import { REASON_CODES, type ReasonCode } from '../script/reasons.js';
import { NETWORK, PARAMS } from './helpers/operator.js';

const NOW = 1_700_000_000;
const acct = (name: string, type: AccountType): Account => makeAccount(name, type, deriveKey('operator-unit', name, NETWORK), NETWORK);
const keyOf = (a: Account): StakeKey => parseWif(a.key.toWIF(), PARAMS, 'test key');
const stake = acct('stake', 'p2wpkh');
const txidA = 'aa'.repeat(32);
const txidB = 'bb'.repeat(32);
const internal = (rpc: string): Buffer => Buffer.from(rpc, 'hex').reverse();

/** A transaction spending `inputs` (RPC txid, vout) to the given outputs. */
function txOf(inputs: Array<[string, number]>, outputs: Array<{ script: Uint8Array; value: bigint }>): Transaction {
  const tx = new Transaction();
  for (const [txid, vout] of inputs) tx.addInput(internal(txid), vout);
  for (const o of outputs) tx.addOutput(o.script, o.value);
  return tx;
}

function state(over: Partial<StakeState> = {}): StakeState {
  return { tipHeight: 500, balance: 5_000_000_000n, coins: new Map([[`${txidA}:0`, 5_000_000_000n]]), registration: null, ...over };
}

function reg(over: Partial<RegistrationState> = {}): RegistrationState {
  return { tipTxid: internal(txidB), timestamp: NOW - 100, expiryHeight: 600, ended: false, status: 'active', endedHeight: null, ...over };
}

/** Judges announcement `a` carried by a transaction that spends the stake's coin and returns `change` to it. */
function judge(a: Announcement, st: StakeState, change = 4_999_990_000n, inputs: Array<[string, number]> = [[txidA, 0]]) {
  const tx = txOf(inputs, [carrier(a), { script: stake.script, value: change }]);
  const found = findAnnouncement(tx);
  if (found.kind !== 'announcement') throw new Error('expected an announcement');
  return preflight(tx, found.announcement, st, PARAMS, NOW);
}

describe('the preflight gives every contextual refusal with its numbers', () => {
  const cases: Array<{ code: ReasonCode; run: () => ReturnType<typeof judge>; text: RegExp }> = [
    { code: 'TIMESTAMP_IN_FUTURE', run: () => judge(newNode(stake, NOW + 7201), state()), text: /timestamp \d+ is 7201 s after the expected block time 1700000000 \(at most 7200 s allowed\)/ },
    { code: 'TIMESTAMP_STALE', run: () => judge(newNode(stake, NOW - 86401), state()), text: /is 86401 s before the expected block time/ },
    { code: 'NOT_OWNER', run: () => judge(newNode(stake, NOW), state(), 4_999_990_000n, [[txidB, 3]]), text: /no input spends an unspent output of rb1\w+/ },
    { code: 'INSUFFICIENT_STAKE', run: () => judge(newNode(stake, NOW), state({ balance: 4_200_000_000n, coins: new Map([[`${txidA}:0`, 4_200_000_000n]]) }), 4_199_990_000n), text: /balance after this transaction would be 41\.9999 < 42; send at least 0\.0001 more to rb1/ },
    { code: 'ALREADY_REGISTERED', run: () => judge(newNode(stake, NOW), state({ registration: reg() })), text: /already has a live registration \(expires at height 600, in 100 blocks\)/ },
    { code: 'UNKNOWN_NODE', run: () => judge(renewal(stake, NOW, txidB), state()), text: /has never been registered: announce it/ },
    { code: 'NOT_LIVE', run: () => judge(renewal(stake, NOW, txidB), state({ registration: reg({ ended: true, status: 'lapsed', endedHeight: 490 }) })), text: /the registration of rb1\w+ lapsed at height 490/ },
    { code: 'NOT_TIP', run: () => judge(renewal(stake, NOW, txidA), state({ registration: reg() })), text: new RegExp(`previous txid ${txidA} is not the registration's tip ${txidB}`) },
    { code: 'TIMESTAMP_NOT_INCREASING', run: () => judge(renewal(stake, NOW - 100, txidB), state({ registration: reg() })), text: /timestamp 1699999900 is not after the tip's timestamp 1699999900/ },
  ];

  it.each(cases)('refuses $code with a message that starts with the code', ({ code, run, text }) => {
    const v = run();
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.code).toBe(code);
    expect(v.message.startsWith(`${code}: `)).toBe(true);
    expect(v.message).toMatch(text);
  });

  it('refuses NOT_LIVE for a registration that expires before the next block', () => {
    const v = judge(renewal(stake, NOW, txidB), state({ registration: reg({ expiryHeight: 501 }) }));
    expect(v).toMatchObject({ ok: false, code: 'NOT_LIVE', message: expect.stringMatching(/expires at height 501, before the next block 501/) });
  });

  it('refuses COINBASE', () => {
    const tx = new Transaction();
    tx.addInput(Buffer.alloc(32), 0xffffffff);
    tx.addOutput(encodeCarrier(newNode(stake, NOW)), 0n);
    const found = findAnnouncement(tx);
    if (found.kind !== 'announcement') throw new Error('expected an announcement');
    expect(preflight(tx, found.announcement, state(), PARAMS, NOW)).toMatchObject({ ok: false, code: 'COINBASE' });
  });

  it('accepts a good renewal and reports the balance after the fee and the height it will be judged at', () => {
    expect(judge(renewal(stake, NOW, txidB), state({ registration: reg() }))).toEqual({ ok: true, balanceAfter: 4_999_990_000n, height: 501 });
  });

  it('covers every contextual reason except MULTIPLE_ANNOUNCEMENTS, which decoding decides', () => {
    const contextual = REASON_CODES.filter((c) => !['MALFORMED_CARRIER', 'BODY_TOO_LARGE', 'NON_MINIMAL_PUSH', 'UNKNOWN_OPCODE', 'STACK_MISMATCH', 'BAD_STAKE_SCRIPT', 'BAD_TIMESTAMP', 'BAD_PREVIOUS', 'MULTIPLE_ANNOUNCEMENTS'].includes(c));
    expect([...cases.map((c) => c.code), 'COINBASE'].sort()).toEqual([...contextual].sort());
  });
});

describe('finding the announcement of a transaction', () => {
  it('finds none, a decoding refusal, several, or exactly one', () => {
    const pay = { script: stake.script, value: 1n };
    expect(findAnnouncement(txOf([[txidA, 0]], [pay]))).toEqual({ kind: 'none' });
    expect(findAnnouncement(txOf([[txidA, 0]], [pay, carrierAround(Buffer.of(0x61))]))).toEqual({ kind: 'refused', vout: 1, code: 'UNKNOWN_OPCODE' });
    expect(findAnnouncement(txOf([[txidA, 0]], [carrier(newNode(stake, NOW)), carrier(newNode(stake, NOW))]))).toMatchObject({ kind: 'refused', vout: 0, code: 'MULTIPLE_ANNOUNCEMENTS' });
    expect(findAnnouncement(txOf([[txidA, 0]], [pay, carrier(newNode(stake, NOW))]))).toMatchObject({ kind: 'announcement', vout: 1 });
    expect(decodeRefusal('UNKNOWN_OPCODE', 1)).toMatch(/^UNKNOWN_OPCODE: output 1: /);
  });
});

describe('building: coin selection, fee and signing', () => {
  const coin = (value: bigint, extra: Partial<StakeCoin> = {}): StakeCoin => ({ txid: txidA, vout: 0, value, height: 100, coinbase: false, ...extra });
  const carrierScript = encodeCarrier(newNode(stake, NOW));

  it('spends the largest spendable coin, skipping immature coinbase outputs, and returns the rest to the stake', () => {
    const spend = planSpend(Buffer.from(stake.script), { key: keyOf(stake), label: 'stake' });
    const sel = selectCoins([coin(10n ** 9n, { vout: 1 }), coin(9n * 10n ** 9n, { vout: 2, coinbase: true, height: 450 }), coin(5n * 10n ** 9n, { vout: 3 })], spend, carrierScript, 2, 501, 'stake');
    expect(sel.inputs.map((c) => c.vout)).toEqual([3]);
    expect(sel.fee).toBe(BigInt(sel.vsize * 2));
    expect(sel.change).toBe(5n * 10n ** 9n - sel.fee);
  });

  it('adds coins until the fee is paid with change above dust', () => {
    const spend = planSpend(Buffer.from(stake.script), { key: keyOf(stake), label: 'stake' });
    const sel = selectCoins([coin(300n, { vout: 1 }), coin(700n, { vout: 2 })], spend, carrierScript, 1, 501, 'stake');
    expect(sel.inputs.map((c) => c.vout)).toEqual([2, 1]);
    expect(() => selectCoins([coin(300n)], spend, carrierScript, 1, 501, 'stake')).toThrow(/cannot pay the fee at 1 sat\/vB/);
  });

  it.each(['p2wpkh', 'p2pkh', 'p2tr', 'p2sh-p2wpkh'] as const)('never signs a %s transaction bigger than the size its fee was computed for', (type) => {
    const a = acct(`size-${type}`, type);
    const prev = txOf([[txidB, 0]], [{ script: a.script, value: 3_000_000_000n }, { script: a.script, value: 2_000_000_000n }]);
    const coins = [coin(3_000_000_000n, { txid: prev.getId(), vout: 0 }), coin(2_000_000_000n, { txid: prev.getId(), vout: 1 })];
    const spend = planSpend(Buffer.from(a.script), { key: keyOf(a), label: a.address });
    for (const n of [1, 2]) {
      const estimate = estimateVsize(Array(n).fill(spend.inputSize), [carrierScript, a.script]);
      const inputs = coins.slice(0, n);
      const sel = { inputs, vsize: estimate, fee: 1000n, change: inputs.reduce((t, c) => t + c.value, 0n) - 1000n };
      const tx = signPsbt(buildPsbt(spend, sel, carrierScript, new Map([[prev.getId(), Buffer.from(prev.toBuffer())]]), 500, NETWORK), spend.key!);
      expect(tx.virtualSize()).toBeLessThanOrEqual(estimate);
      expect(estimate - tx.virtualSize()).toBeLessThanOrEqual(2 * n);
    }
  });

  it('refuses a key that does not control the stake, naming the addresses it does control', () => {
    const other = acct('other', 'p2wpkh');
    expect(() => planSpend(Buffer.from(stake.script), { key: keyOf(other), label: stake.address }))
      .toThrow(new RegExp(`the test key does not control ${stake.address}: it controls ${other.address} \\(p2wpkh\\), R\\w+ \\(p2pkh\\), rb1p\\w+ \\(p2tr\\), G\\w+ \\(p2sh-p2wpkh\\)$`));
    const wsh = acct('wsh', 'p2wsh');
    expect(() => planSpend(Buffer.from(wsh.script), { key: keyOf(wsh), label: wsh.address })).toThrow(/a P2SH or P2WSH stake is signed by its own signers: write a PSBT with --psbt-out/);
  });

  it('checks P2WSH and P2SH scripts against the stake and sizes multisig spends exactly', () => {
    const wsh = acct('wsh', 'p2wsh');
    const good = planSpend(Buffer.from(wsh.script), { key: null, witnessScript: Buffer.from(wsh.witnessScript!), label: wsh.address });
    expect(good.sizeNote).toBe('P2WSH 1-of-n multisig');
    expect(() => planSpend(Buffer.from(wsh.script), { key: null, witnessScript: Buffer.from('51', 'hex'), label: wsh.address })).toThrow(/does not hash to the stake's P2WSH program/);
    expect(planSpend(Buffer.from(wsh.script), { key: null, label: wsh.address }).sizeNote).toMatch(/105 vB per input assumed/);
    const ms = payments.p2ms({ m: 2, pubkeys: [stake.key.publicKey, wsh.key.publicKey] });
    const sh = payments.p2sh({ redeem: ms });
    expect(planSpend(Buffer.from(sh.output!), { key: null, redeemScript: Buffer.from(ms.output!), label: 'sh' }).sizeNote).toBe('P2SH 2-of-n multisig');
    expect(() => planSpend(Buffer.from(sh.output!), { key: null, redeemScript: Buffer.from(wsh.witnessScript!), label: 'sh' })).toThrow(/does not hash to the stake's P2SH hash/);
    expect(() => planSpend(Buffer.from(stake.script), { key: null, redeemScript: Buffer.from(ms.output!), label: 'x' })).toThrow(UsageError);
  });
});

describe('keys', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nodereg-keys-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('never shows a private key when a key is printed, logged or serialized', () => {
    const k = keyOf(stake);
    const wif = stake.key.toWIF();
    for (const shown of [String(k), inspect(k, { showHidden: true, depth: 5 }), JSON.stringify({ k })]) expect(shown).not.toContain(wif);
    expect(inspect(k)).toBe('[key from test key]');
  });

  it('refuses a group- or world-readable key file and accepts mode 600', () => {
    const file = join(dir, 'k.wif');
    writeFileSync(file, `${stake.key.toWIF()}\n`, { mode: 0o640 });
    expect(() => readKeyFile(file, PARAMS)).toThrow(/permissions 0640 are too open\); run: chmod 600/);
    writeFileSync(join(dir, 'ok.wif'), `# my stake\n${stake.key.toWIF()}\n`, { mode: 0o600 });
    expect(readKeyFile(join(dir, 'ok.wif'), PARAMS).signingFor(stake.script)?.kind).toBe('p2wpkh');
  });

  it('refuses a key file with more than one key, and a key of another network, without echoing the key', () => {
    const wif = stake.key.toWIF();
    writeFileSync(join(dir, 'two.wif'), `${wif}\n${wif}\n`, { mode: 0o600 });
    expect(() => readKeyFile(join(dir, 'two.wif'), PARAMS)).toThrow(/exactly one WIF private key/);
    const err = (() => {
      try {
        parseWif(wif, { ...PARAMS, wif: 0x80 }, 'key file x');
      } catch (e) {
        return e as Error;
      }
      throw new Error('expected a failure');
    })();
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toMatch(/belongs to another network/);
    expect(err.message).not.toContain(wif);
    expect(() => parseWif('not-a-key', PARAMS, 'NODEREG_WIF')).toThrow(/NODEREG_WIF does not hold a valid WIF private key/);
  });

  it('reads a key directory file by file, reporting each bad file without stopping', () => {
    writeFileSync(join(dir, 'a.wif'), `${stake.key.toWIF()}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'b.wif'), 'garbage\n', { mode: 0o600 });
    writeFileSync(join(dir, '.hidden'), 'x', { mode: 0o644 });
    const entries = readKeyDir(dir, PARAMS);
    expect(entries.map((e) => ('key' in e ? 'key' : e.error))).toEqual(['key', expect.stringMatching(/does not hold a valid WIF/)]);
  });

  it('recognises what looks like a WIF, so it is never echoed', () => {
    expect(looksLikeWif(stake.key.toWIF())).toBe(true);
    expect(looksLikeWif(stake.address)).toBe(false);
  });
});

describe('status warnings', () => {
  const info = (over: Partial<NonNullable<NodeInfo['registration']>>, balance = '5000000000'): NodeInfo => ({
    height: 500, stakeScript: '', balance, history: [],
    registration: {
      stakeScript: '', address: 'x', status: 'active', firstHeight: 400, firstTxid: txidA, tipHeight: 450, tipTxid: txidB,
      timestamp: NOW, renewals: 1, expiryHeight: 594, endedHeight: null, balance, age: 100, blocksUntilExpiry: 94,
      expiresAt: null, renewBy: 593, stakeMargin: (BigInt(balance) - PARAMS.minStake).toString(), ...over,
    },
  });

  const warnings = (i: NodeInfo, within = 14): string[] => assess(i, PARAMS, within, 'x').warnings;
  const health = (i: NodeInfo, within = 14): string => assess(i, PARAMS, within, 'x').health;

  it('warns when expiry is within the window, when the registration ended, and when the stake is within 5% of the minimum', () => {
    expect(warnings(info({}))).toEqual([]);
    expect(warnings(info({ blocksUntilExpiry: 14 }))).toEqual([expect.stringMatching(/expires in 14 block\(s\), at height 594: renew it now/)]);
    expect(warnings(info({ status: 'expired', endedHeight: 594, blocksUntilExpiry: null }))).toEqual([expect.stringMatching(/expired at height 594: the node is off the registry/)]);
    expect(warnings(info({}, '4241000000'))).toEqual([expect.stringMatching(/42\.41 is within 5% of the minimum 42/)]);
    expect(warnings(info({}, '4409999999'))).toEqual([expect.stringMatching(/within 5% of the minimum/)]);
    expect(warnings(info({}, '4410000000'))).toEqual([]);
  });

  it('grades a stake for status and renew --all: ok 0, warning 3, not live 4', () => {
    expect(health(info({}))).toBe('ok');
    expect(health(info({ blocksUntilExpiry: 15 }))).toBe('ok');
    expect(health(info({ blocksUntilExpiry: 14 }))).toBe('warning');
    expect(health(info({}, '4300000000'))).toBe('warning');
    expect(health(info({ status: 'lapsed', endedHeight: 590, blocksUntilExpiry: null }, '100'))).toBe('not-live');
    expect(health(info({ status: 'expired', endedHeight: 594, blocksUntilExpiry: null }))).toBe('not-live');
    const never: NodeInfo = { height: 500, stakeScript: '', balance: '0', history: [], registration: null };
    expect(assess(never, PARAMS, 14, 'x')).toEqual({ health: 'not-live', expiringSoon: false, lowBalance: false, warnings: [expect.stringMatching(/x has never been registered/)] });
    expect(assess(info({ blocksUntilExpiry: 14 }), PARAMS, 14, 'x').expiringSoon).toBe(true);
    expect(assess(info({ blocksUntilExpiry: 14 }), PARAMS, 13, 'x').expiringSoon).toBe(false);
    expect(assess(info({ status: 'expired', endedHeight: 594, blocksUntilExpiry: null }), PARAMS, 10_000, 'x').expiringSoon).toBe(false);
    expect(STATUS_EXIT).toEqual({ ok: 0, warning: 3, 'not-live': 4 });
  });
});

describe('reading what to broadcast', () => {
  it('refuses an unsigned PSBT and something that is neither a file nor hex', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-psbt-'));
    try {
      const spend = planSpend(Buffer.from(stake.script), { key: null, label: 'x' });
      const psbt = buildPsbt(spend, { inputs: [{ txid: txidA, vout: 0, value: 5_000_000_000n, height: 1, coinbase: false }], vsize: 0, fee: 1000n, change: 4_999_999_000n }, encodeCarrier(newNode(stake, NOW)), new Map(), 0, NETWORK);
      writeFileSync(join(dir, 'u.psbt'), psbt.toBase64());
      expect(() => readTransactionArg(join(dir, 'u.psbt'))).toThrow(/is not signed: input 0 has no signature/);
      expect(() => readTransactionArg('zz-not-there')).toThrow(/neither a file nor a transaction in hex/);
      expect(() => readTransactionArg('00ff')).toThrow(/not a valid transaction/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
