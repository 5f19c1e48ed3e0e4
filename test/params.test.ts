import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { networks } from 'bitcoinjs-lib';
import {
  BUILTIN_NETWORKS, ParamsError, builtinNetwork, loadParamsFile, paramsHash, parseParams, resolveParams,
  type NetworkParams,
} from '../script/params.js';

const BCOIN_REGTEST = fileURLToPath(new URL('../fixtures/params/bcoin-regtest.json', import.meta.url));

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'nodereg-params-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

let fileNo = 0;
function writeParams(content: unknown): string {
  const path = join(dir, `p${fileNo++}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

/** A complete, valid params object for an imaginary chain. */
const VALID = {
  name: 'zenchain',
  bech32: 'zen',
  pubKeyHash: 32,
  scriptHash: 33,
  wif: 128,
  magic: 'aabbccdd',
  genesisHash: '11'.repeat(32),
  minStake: '4200000000',
  expiryBlocks: 720,
  futureTolerance: 7200,
  staleWindow: 86400,
};

describe('built-in networks', () => {
  test.each(['mainnet', 'testnet', 'testnet4', 'signet'])('%s has the protocol values of docs/spec.md §2.5', (name) => {
    const p = BUILTIN_NETWORKS[name]!;
    expect(p.name).toBe(name);
    expect(p.minStake).toBe(4_200_000_000n);
    expect(p.expiryBlocks).toBe(4320);
    expect(p.futureTolerance).toBe(7200);
    expect(p.staleWindow).toBe(86400);
  });

  test('regtest expires after 144 blocks and keeps the other values', () => {
    const p = BUILTIN_NETWORKS.regtest!;
    expect([p.minStake, p.expiryBlocks, p.futureTolerance, p.staleWindow]).toEqual([4_200_000_000n, 144, 7200, 86400]);
  });

  test('blk-file magics are those of Bitcoin Core', () => {
    const magics = Object.fromEntries(Object.entries(BUILTIN_NETWORKS).map(([k, p]) => [k, p.magic]));
    expect(magics).toEqual({
      mainnet: 'f9beb4d9', testnet: '0b110907', testnet4: '1c163f28', signet: '0a03cf40', regtest: 'fabfb5da',
    });
  });

  test('mainnet and regtest genesis hashes are Bitcoin Core\'s', () => {
    expect(BUILTIN_NETWORKS.mainnet!.genesisHash).toBe('000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f');
    expect(BUILTIN_NETWORKS.regtest!.genesisHash).toBe('0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206');
  });

  test('address prefixes follow bitcoinjs-lib networks', () => {
    const prefixes = (n: { bech32: string; pubKeyHash: number; scriptHash: number; wif: number }) =>
      [n.bech32, n.pubKeyHash, n.scriptHash, n.wif];
    expect(prefixes(BUILTIN_NETWORKS.mainnet!)).toEqual(prefixes(networks.bitcoin));
    expect(prefixes(BUILTIN_NETWORKS.testnet!)).toEqual(prefixes(networks.testnet));
    expect(prefixes(BUILTIN_NETWORKS.regtest!)).toEqual(prefixes(networks.regtest));
  });

  test('every built-in network passes the same validation as a params file', () => {
    for (const p of Object.values(BUILTIN_NETWORKS)) {
      expect(parseParams({ ...p, minStake: p.minStake.toString() })).toEqual(p);
    }
  });

  test('an unknown network name is an error listing the choices and --params', () => {
    expect(() => builtinNetwork('mainet')).toThrow(ParamsError);
    expect(() => builtinNetwork('mainet')).toThrow(/mainnet, testnet, testnet4, signet, regtest.*--params/);
  });

  test('resolveParams prefers --params over --network and defaults to regtest', () => {
    expect(resolveParams({}).name).toBe('regtest');
    expect(resolveParams({ network: 'signet' }).name).toBe('signet');
    expect(resolveParams({ network: 'signet', params: BCOIN_REGTEST }).name).toBe('bcoin-regtest');
  });
});

describe('params files', () => {
  test('loads fixtures/params/bcoin-regtest.json with protocol defaults filled in', () => {
    const p = loadParamsFile(BCOIN_REGTEST);
    expect(p).toEqual<NetworkParams>({
      name: 'bcoin-regtest',
      bech32: 'rb',
      pubKeyHash: 60,
      scriptHash: 38,
      wif: 90,
      magic: 'fabfb5da',
      genesisHash: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
      minStake: 4_200_000_000n,
      expiryBlocks: 144,
      futureTolerance: 7200,
      staleWindow: 86400,
    });
  });

  test('loads a complete file for another chain', () => {
    const p = loadParamsFile(writeParams(VALID));
    expect(p.minStake).toBe(4_200_000_000n);
    expect(p.expiryBlocks).toBe(720);
    expect(p.name).toBe('zenchain');
  });

  test('accepts minStake as a safe integer as well as a decimal string', () => {
    expect(loadParamsFile(writeParams({ ...VALID, minStake: 100 })).minStake).toBe(100n);
  });

  test('lowercases hex fields', () => {
    const p = loadParamsFile(writeParams({ ...VALID, magic: 'AABBCCDD' }));
    expect(p.magic).toBe('aabbccdd');
  });

  const badFields: Array<[string, Record<string, unknown>]> = [
    ['name', { name: 'has spaces' }],
    ['bech32', { bech32: 'UPPER' }],
    ['pubKeyHash', { pubKeyHash: 256 }],
    ['scriptHash', { scriptHash: -1 }],
    ['wif', { wif: 1.5 }],
    ['magic', { magic: 'f9beb4' }],
    ['genesisHash', { genesisHash: 'zz'.repeat(32) }],
    ['minStake', { minStake: '42.5' }],
    ['expiryBlocks', { expiryBlocks: 0 }],
    ['futureTolerance', { futureTolerance: '7200' }],
    ['staleWindow', { staleWindow: -86400 }],
    ['minstake', { minstake: '1' }],
  ];

  test.each(badFields)('a bad "%s" fails with an error naming the field', (field, patch) => {
    const path = writeParams({ ...VALID, ...patch });
    expect(() => loadParamsFile(path)).toThrow(ParamsError);
    expect(() => loadParamsFile(path)).toThrow(`field "${field}"`);
  });

  test.each(['name', 'bech32', 'pubKeyHash', 'scriptHash', 'wif', 'magic', 'genesisHash', 'expiryBlocks'])(
    'a missing "%s" fails with an error naming the field',
    (field) => {
      const raw: Record<string, unknown> = { ...VALID };
      delete raw[field];
      expect(() => loadParamsFile(writeParams(raw))).toThrow(`field "${field}"`);
    },
  );

  test('the error names the file it came from', () => {
    const path = writeParams({ ...VALID, wif: 'x' });
    expect(() => loadParamsFile(path)).toThrow(path);
  });

  test('a file that is not JSON fails with a ParamsError saying so', () => {
    expect(() => loadParamsFile(writeParams('{ "name": '))).toThrow(/not valid JSON/);
  });

  test('a JSON array fails with a ParamsError', () => {
    expect(() => loadParamsFile(writeParams([]))).toThrow(/must be a JSON object/);
  });

  test('a missing file fails with a ParamsError naming it', () => {
    const path = join(dir, 'does-not-exist.json');
    expect(() => loadParamsFile(path)).toThrow(ParamsError);
    expect(() => loadParamsFile(path)).toThrow(`cannot read params file ${path}`);
  });
});

describe('paramsHash', () => {
  const base = parseParams(VALID);

  test('is 32 bytes of hex and stable', () => {
    expect(paramsHash(base)).toMatch(/^[0-9a-f]{64}$/);
    expect(paramsHash(parseParams({ ...VALID }))).toBe(paramsHash(base));
  });

  test('does not depend on how minStake was written in the file', () => {
    expect(paramsHash(parseParams({ ...VALID, minStake: 4_200_000_000 }))).toBe(paramsHash(base));
  });

  test('changes when minStake changes', () => {
    expect(paramsHash({ ...base, minStake: base.minStake - 1n })).not.toBe(paramsHash(base));
  });

  test('changes when any rule parameter changes', () => {
    const hashes = new Set([
      paramsHash(base),
      paramsHash({ ...base, expiryBlocks: 721 }),
      paramsHash({ ...base, futureTolerance: 7201 }),
      paramsHash({ ...base, staleWindow: 86401 }),
      paramsHash({ ...base, magic: 'aabbccde' }),
      paramsHash({ ...base, bech32: 'zem' }),
    ]);
    expect(hashes.size).toBe(6);
  });

  test('differs between the built-in networks', () => {
    const all = Object.values(BUILTIN_NETWORKS).map(paramsHash);
    expect(new Set(all).size).toBe(all.length);
  });
});
