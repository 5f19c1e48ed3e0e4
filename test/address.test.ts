import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import * as btcAddress from 'bitcoinjs-lib/src/address';
import { AddressError, addressToScript, codecs, looksLikeWif, parseStake, scriptToAddress } from '../script/address.js';
import { segwitAddress } from '../script/bech32.js';
import { BUILTIN_NETWORKS, loadParamsFile, type NetworkParams } from '../script/params.js';

interface AddressTable {
  valid: Array<{ description: string; network: string; stakeScript: string; address: string }>;
  wrongNetwork: Array<{ description: string; network: string; address: string }>;
  malformed: Array<{ description: string; network: string; address: string }>;
}

const table = JSON.parse(
  readFileSync(new URL('../fixtures/script/address.json', import.meta.url), 'utf8'),
) as AddressTable;

const NETWORKS: Record<string, NetworkParams> = {
  mainnet: BUILTIN_NETWORKS.mainnet!,
  regtest: BUILTIN_NETWORKS.regtest!,
  'bcoin-regtest': loadParamsFile(fileURLToPath(new URL('../fixtures/params/bcoin-regtest.json', import.meta.url))),
};

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (h: string): Buffer => Buffer.from(h, 'hex');
const OFF_CURVE_P2TR = '5120' + '00'.repeat(31) + '05';

describe('stake scripts and addresses (fixtures/script/address.json)', () => {
  test.each(table.valid)('renders $description', ({ network, stakeScript, address }) => {
    expect(scriptToAddress(bytes(stakeScript), NETWORKS[network]!)).toBe(address);
  });

  test.each(table.valid)('parses the address back to the script: $description', ({ network, stakeScript, address }) => {
    expect(hex(addressToScript(address, NETWORKS[network]!))).toBe(stakeScript);
    expect(hex(parseStake(address, NETWORKS[network]!))).toBe(stakeScript);
  });

  test.each(table.wrongNetwork)('refuses $description with an AddressError', ({ network, address }) => {
    expect(() => addressToScript(address, NETWORKS[network]!)).toThrow(AddressError);
    expect(() => parseStake(address, NETWORKS[network]!)).toThrow(AddressError);
  });

  test.each(table.malformed)('refuses $description with an AddressError', ({ network, address }) => {
    expect(() => addressToScript(address, NETWORKS[network]!)).toThrow(AddressError);
  });
});

describe('segwit addresses written out (script/bech32.ts)', () => {
  /** bitcoinjs-lib's rendering, or null where it refuses. */
  const library = (hrp: string, version: number, program: Uint8Array): string | null => {
    try {
      return btcAddress.toBech32(Buffer.from(program), version, hrp);
    } catch {
      return null;
    }
  };

  test('equal bitcoinjs-lib\'s bech32 (version 0) and bech32m (1..16) on random programs and prefixes', () => {
    const hrp = fc.oneof(fc.constantFrom('bc', 'tb', 'bcrt', 'rb', 'BCRT'), fc.string({ minLength: 1, maxLength: 85, unit: fc.integer({ min: 30, max: 130 }).map((c) => String.fromCharCode(c)) }));
    fc.assert(fc.property(hrp, fc.integer({ min: 0, max: 16 }), fc.uint8Array({ minLength: 0, maxLength: 60 }), (h, version, program) => {
      expect(segwitAddress(h, version, program)).toBe(library(h, version, program));
    }), { numRuns: 2000 });
  });

  test('renders up to 90 characters and refuses one more, as the library does', () => {
    const program = new Uint8Array(40).fill(7);
    const longest = segwitAddress('a'.repeat(18), 1, program);
    expect(longest).toHaveLength(90);
    expect(longest).toBe(library('a'.repeat(18), 1, program));
    expect(segwitAddress('a'.repeat(19), 1, program)).toBeNull();
    expect(library('a'.repeat(19), 1, program)).toBeNull();
  });

  test('the BIP 173 and BIP 350 examples', () => {
    expect(segwitAddress('bc', 0, bytes('751e76e8199196d454941c45d1b3a323f1433bd6'))).toBe('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4');
    expect(segwitAddress('tb', 0, bytes('1863143c14c5166804bd19203356da136c985678cd4d27a1b8c6329604903262')))
      .toBe('tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7');
    expect(segwitAddress('bc', 1, bytes('79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798')))
      .toBe('bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0');
  });
});

describe('address codecs (script/address.ts) against bitcoinjs-lib\'s address module', () => {
  /** The value a decoder returns, or the message it throws. */
  const outcome = (f: () => unknown): unknown => {
    try {
      const r = f() as Record<string, unknown>;
      return Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v instanceof Uint8Array ? hex(v) : v]));
    } catch (err) {
      return { threw: (err as Error).message };
    }
  };
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0l1IO';
  const known = [...table.valid, ...table.wrongNetwork, ...table.malformed].map((r) => r.address);
  /** A known address with one character replaced, one dropped or one added, or the address itself. */
  const mutated = fc.tuple(fc.constantFrom(...known), fc.nat(), fc.constantFrom(...ALPHABET), fc.integer({ min: 0, max: 3 })).map(([a, i, c, how]) => {
    const at = i % (a.length + 1);
    if (how === 0) return a;
    if (how === 1) return a.slice(0, at) + c + a.slice(at + 1);
    if (how === 2) return a.slice(0, at) + a.slice(at + 1);
    return a.slice(0, at) + c + a.slice(at);
  });

  test('decode known addresses and one-character changes of them to the same values, or fail with the same messages', () => {
    fc.assert(fc.property(mutated, (a) => {
      expect(outcome(() => codecs.fromBech32(a))).toEqual(outcome(() => btcAddress.fromBech32(a)));
      expect(outcome(() => codecs.fromBase58Check(a))).toEqual(outcome(() => btcAddress.fromBase58Check(a)));
    }), { numRuns: 3000 });
  });

  test('encode base58check addresses as the library does for every version byte', () => {
    fc.assert(fc.property(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 0, max: 255 }), (hash, version) => {
      expect(codecs.toBase58Check(hash, version)).toBe(btcAddress.toBase58Check(hash, version));
    }), { numRuns: 1000 });
    expect(() => codecs.toBase58Check(new Uint8Array(19), 0)).toThrow(TypeError);
    expect(() => btcAddress.toBase58Check(new Uint8Array(19), 0)).toThrow();
    expect(() => codecs.toBase58Check(new Uint8Array(20), 256)).toThrow(TypeError);
    expect(() => btcAddress.toBase58Check(new Uint8Array(20), 256)).toThrow();
  });
});

describe('addresses', () => {
  test('bcoin-regtest addresses use bcoin\'s prefixes: rb1 for segwit, R for P2PKH', () => {
    const rows = table.valid.filter((r) => r.network === 'bcoin-regtest');
    const byScript = (prefix: string) => rows.find((r) => r.stakeScript.startsWith(prefix))!.address;
    expect(byScript('0014')).toMatch(/^rb1q/);
    expect(byScript('5120')).toMatch(/^rb1p/);
    expect(byScript('76a914')).toMatch(/^R/);
  });

  test('a P2TR key that is not on the curve still renders and parses back', () => {
    for (const params of Object.values(NETWORKS)) {
      const address = scriptToAddress(bytes(OFF_CURVE_P2TR), params);
      expect(address).toMatch(new RegExp(`^${params.bech32}1p`));
      expect(hex(addressToScript(address!, params))).toBe(OFF_CURVE_P2TR);
    }
  });

  test('a script outside the five templates has no address', () => {
    for (const s of ['', '6a04deadbeef', '5220' + '11'.repeat(32), '0020' + '11'.repeat(20)]) {
      expect(scriptToAddress(bytes(s), NETWORKS.mainnet!)).toBeNull();
    }
  });

  test('an all-uppercase bech32 address is accepted', () => {
    expect(hex(addressToScript('BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4', NETWORKS.mainnet!)))
      .toBe('0014751e76e8199196d454941c45d1b3a323f1433bd6');
  });

  test('the wrong-network error tells the user to check --network/--params', () => {
    expect(() => addressToScript('bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', NETWORKS.regtest!))
      .toThrow(/--network\/--params/);
    expect(() => addressToScript('1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH', NETWORKS.regtest!))
      .toThrow(/--network\/--params/);
  });

  test('a base58 address with a bad checksum is called a typo, never a bech32 address of another network', () => {
    const good = '1BgGZ9tcN4rm9KBzDn7KprQz87SZ26SAMH';
    for (const typo of [good.slice(0, -1) + 'J', 'mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfN', '2N2JD6wb56AfK4tfmM6PwdVmoYk2dCKf4Br'.slice(0, -1) + 'C']) {
      for (const network of [NETWORKS.mainnet!, NETWORKS.regtest!]) {
        let err: Error | null = null;
        try {
          addressToScript(typo, network);
        } catch (e) {
          err = e as Error;
        }
        expect(err).toBeInstanceOf(AddressError);
        expect(err!.message).toBe(`"${typo}" is not a valid address: its base58 checksum does not match (a typo?)`);
      }
    }
    // A real bech32 address of another network is still named as such.
    expect(() => addressToScript('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', NETWORKS.mainnet!)).toThrow(/looks like a bech32 address of another network/);
  });

  test('a value that looks like a private key is never echoed in an error', () => {
    const wifs = [
      'cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy', // compressed testnet/regtest key
      '5HueCGU8rMjxEXxiPuD5BDku4MkFqeZyd4dZ1jvhTVqvbTLvyTJ', // uncompressed mainnet key
      'cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpz', // the same with a typo
    ];
    for (const wif of wifs) {
      expect(looksLikeWif(wif)).toBe(true);
      for (const network of Object.values(NETWORKS)) {
        let message = '';
        try {
          parseStake(wif, network);
        } catch (e) {
          message = (e as Error).message;
        }
        expect(message).toMatch(/looks like a private key/);
        expect(message).not.toContain(wif.slice(5, -5));
      }
    }
  });

  test('a stake may be given as an output script in hex', () => {
    for (const r of table.valid.filter((row) => row.network === 'mainnet')) {
      expect(hex(parseStake(r.stakeScript, NETWORKS.mainnet!))).toBe(r.stakeScript);
    }
  });

  test('hex that is not a stake template is refused', () => {
    expect(() => parseStake('5220' + '11'.repeat(32), NETWORKS.mainnet!)).toThrow(AddressError);
  });
});
