import { address as btcAddress } from 'bitcoinjs-lib';
import type { NetworkParams } from './params.js';
import { stakeTemplate } from './templates.js';

/**
 * Renders a stake script as an address of `params`' chain, or null when the
 * script has no address form. Built from the template's bytes directly, so a
 * P2TR key that is not on the curve still renders instead of throwing.
 */
export function scriptToAddress(script: Uint8Array, params: NetworkParams): string | null {
  const t = stakeTemplate(script);
  try {
    switch (t) {
      case 'p2pkh': return btcAddress.toBase58Check(script.subarray(3, 23), params.pubKeyHash);
      case 'p2sh': return btcAddress.toBase58Check(script.subarray(2, 22), params.scriptHash);
      case 'p2wpkh':
      case 'p2wsh': return btcAddress.toBech32(script.subarray(2), 0, params.bech32);
      case 'p2tr': return btcAddress.toBech32(script.subarray(2), 1, params.bech32);
      default: return null;
    }
  } catch {
    return null;
  }
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
      decoded = btcAddress.fromBech32(addr);
    } catch (err) {
      throw new AddressError(`"${addr}" is not a valid bech32 address: ${(err as Error).message}`);
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
  try {
    decoded = btcAddress.fromBase58Check(addr);
  } catch {
    decoded = null;
  }
  if (decoded) {
    const h = Buffer.from(decoded.hash);
    if (decoded.version === params.pubKeyHash) return Buffer.concat([Buffer.of(0x76, 0xa9, 20), h, Buffer.of(0x88, 0xac)]);
    if (decoded.version === params.scriptHash) return Buffer.concat([Buffer.of(0xa9, 20), h, Buffer.of(0x87)]);
    throw new AddressError(`"${addr}" has version byte ${decoded.version}, which is not an address of ${params.name} (expected ${params.pubKeyHash} or ${params.scriptHash}); check --network/--params`);
  }
  if (/^[a-z0-9]{1,83}1[02-9ac-hj-np-z]{6,}$/.test(lower)) {
    throw new AddressError(`"${addr}" looks like a bech32 address of another network; ${params.name} addresses start with "${params.bech32}1" (check --network/--params)`);
  }
  throw new AddressError(`"${addr}" is not a valid address`);
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
  if (stakeTemplate(script) === null) throw new AddressError(`"${input}" is not a standard stake`);
  return script;
}
