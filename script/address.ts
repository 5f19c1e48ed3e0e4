import { bech32, bech32m } from 'bech32';
import bs58check from 'bs58check';
import { segwitAddress } from './bech32.js';
import { looksLikeWif, shown } from './keyshape.js';
import type { NetworkParams } from './params.js';
import { stakeTemplate } from './templates.js';

export { looksLikeWif, shown };

/*
 * The three codecs of bitcoinjs-lib's address module this file uses, written
 * over the same two libraries it uses (bech32, bs58check) with its checks and
 * its messages. Importing that module costs a CLI start about a tenth of a
 * second (it loads every payment type and a validation library); these cost
 * a few milliseconds. Exported for test/address.test.ts, which holds them to
 * the library.
 */
export const codecs = {
  /** A bech32 (witness v0) or bech32m (v1+) address: its version, prefix and program. */
  fromBech32(address: string): { version: number; prefix: string; data: Uint8Array } {
    let result: { prefix: string; words: number[] } | undefined;
    let version: number;
    try {
      result = bech32.decode(address);
    } catch {
      result = undefined;
    }
    if (result) {
      version = result.words[0]!;
      if (version !== 0) throw new TypeError(address + ' uses wrong encoding');
    } else {
      result = bech32m.decode(address);
      version = result.words[0]!;
      if (version === 0) throw new TypeError(address + ' uses wrong encoding');
    }
    return { version, prefix: result.prefix, data: Uint8Array.from(bech32.fromWords(result.words.slice(1))) };
  },

  /** A base58check address: its version byte and 20-byte hash. */
  fromBase58Check(address: string): { version: number; hash: Uint8Array } {
    const payload = bs58check.decode(address);
    if (payload.length < 21) throw new TypeError(address + ' is too short');
    if (payload.length > 21) throw new TypeError(address + ' is too long');
    return { version: payload[0]!, hash: payload.slice(1) };
  },

  /** A 20-byte hash under a version byte, base58check-encoded. */
  toBase58Check(hash: Uint8Array, version: number): string {
    if (hash.length !== 20) throw new TypeError(`expected a 20-byte hash, got ${hash.length} bytes`);
    if (!Number.isInteger(version) || version < 0 || version > 0xff) throw new TypeError(`expected a version byte, got ${version}`);
    const payload = new Uint8Array(21);
    payload[0] = version;
    payload.set(hash, 1);
    return bs58check.encode(payload);
  },
};

/**
 * Renders a stake script as an address of `params`' chain, or null when the
 * script has no address form. Built from the template's bytes directly, so a
 * P2TR key that is not on the curve still renders instead of throwing.
 */
export function scriptToAddress(script: Uint8Array, params: NetworkParams): string | null {
  const t = stakeTemplate(script);
  try {
    switch (t) {
      case 'p2pkh': return flat(codecs.toBase58Check(script.subarray(3, 23), params.pubKeyHash));
      case 'p2sh': return flat(codecs.toBase58Check(script.subarray(2, 22), params.scriptHash));
      case 'p2wpkh':
      case 'p2wsh': return segwitAddress(params.bech32, 0, script.subarray(2));
      case 'p2tr': return segwitAddress(params.bech32, 1, script.subarray(2));
      default: return null;
    }
  } catch {
    return null;
  }
}

/**
 * The same ASCII text as one flat string. The base58 encoder builds an
 * address a character at a time with `+=`, which V8 keeps as a chain of some
 * thirty concatenation nodes (about a kilobyte) until something reads the
 * text: a table or export holding 100 000 of them would carry 100 MB.
 */
function flat(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

/** An address that does not belong to the chain, or is not an address at all. */
export class AddressError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AddressError';
  }
}

function witnessScript(version: number, program: Uint8Array): Buffer {
  return Buffer.concat([Buffer.of(version === 0 ? 0x00 : 0x50 + version, program.length), program]);
}

const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;

/**
 * Parses an address of `params`' chain into its output script. Only the five
 * stake templates are accepted; the error says whether the address is
 * malformed or belongs to another network.
 */
export function addressToScript(addr: string, params: NetworkParams): Buffer {
  const lower = addr.toLowerCase();
  if (lower.startsWith(params.bech32 + '1')) {
    let decoded: { version: number; prefix: string; data: Uint8Array };
    try {
      decoded = codecs.fromBech32(addr);
    } catch (err) {
      throw new AddressError(`${shown(addr)} is not a valid bech32 address: ${(err as Error).message}`);
    }
    const { version, prefix, data } = decoded;
    // The separator is the last "1", so "bc1x1q…" has the prefix "bc1x", not "bc".
    if (prefix !== params.bech32) {
      throw new AddressError(`"${addr}" is an address of the "${prefix}" network; ${params.name} addresses start with "${params.bech32}1" (check --network/--params)`);
    }
    if (version === 0 && (data.length === 20 || data.length === 32)) return witnessScript(0, data);
    if (version === 1 && data.length === 32) return witnessScript(1, data);
    throw new AddressError(`"${addr}" is a witness v${version} program of ${data.length} bytes, not P2WPKH, P2WSH or P2TR`);
  }
  let decoded: { version: number; hash: Uint8Array } | null = null;
  let base58Flaw = '';
  try {
    decoded = codecs.fromBase58Check(addr);
  } catch (err) {
    base58Flaw = (err as Error).message;
  }
  if (decoded) {
    const h = Buffer.from(decoded.hash);
    if (decoded.version === params.pubKeyHash) return Buffer.concat([Buffer.of(0x76, 0xa9, 20), h, Buffer.of(0x88, 0xac)]);
    if (decoded.version === params.scriptHash) return Buffer.concat([Buffer.of(0xa9, 20), h, Buffer.of(0x87)]);
    throw new AddressError(`"${addr}" has version byte ${decoded.version}, which is not an address of ${params.name} (expected ${params.pubKeyHash} or ${params.scriptHash}); check --network/--params`);
  }
  if (looksLikeWif(addr)) {
    throw new AddressError('the value is not an address: it looks like a private key (WIF), so it is not shown; keys never belong on a command line');
  }
  let otherBech32: string | null = null;
  try {
    otherBech32 = codecs.fromBech32(addr).prefix;
  } catch {
    otherBech32 = null;
  }
  // bech32 is single-case; base58 addresses mix cases, so a mixed-case string is never bech32.
  const singleCase = addr === lower || addr === addr.toUpperCase();
  if (otherBech32 !== null || (singleCase && /^[a-z0-9]{1,83}1[02-9ac-hj-np-z]{6,}$/.test(lower))) {
    throw new AddressError(`"${addr}" looks like a bech32 address of another network; ${params.name} addresses start with "${params.bech32}1" (check --network/--params)`);
  }
  if (BASE58.test(addr) && addr.length >= 25 && addr.length <= 36) {
    const why = /checksum/i.test(base58Flaw) ? 'its base58 checksum does not match' : 'it has the wrong length for a base58 address';
    throw new AddressError(`"${addr}" is not a valid address: ${why} (a typo?)`);
  }
  throw new AddressError(`${shown(addr)} is not a valid address`);
}

/**
 * Accepts what users type for a stake: an address of the chain, or an output
 * script in hex. The result must be one of the five stake templates.
 */
export function parseStake(input: string, params: NetworkParams): Buffer {
  if (/^([0-9a-fA-F]{2})+$/.test(input) && input.length >= 44 && input.length <= 68) {
    const script = Buffer.from(input, 'hex');
    if (stakeTemplate(script) !== null) return script;
  }
  const script = addressToScript(input, params);
  if (stakeTemplate(script) === null) throw new AddressError(`${shown(input)} is not a standard stake`);
  return script;
}
