import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { inspect } from 'node:util';
import * as ecc from '@bitcoinerlab/secp256k1';
import { crypto as btcCrypto, initEccLib, networks, payments, type Network, type Signer } from 'bitcoinjs-lib';
import { ECPairFactory, type ECPairInterface } from 'ecpair';
import type { NetworkParams } from '../../script/params.js';
import { UsageError, UserError } from '../common.js';
import { looksLikeWif } from './wif.js';

// Re-exported so that keys.ts stays the one place to ask about keys.
export { looksLikeWif };

initEccLib(ecc);
const ECPair = ECPairFactory(ecc);

/** bitcoinjs-lib's network shape for a params object (BIP32 prefixes play no part here). */
export function toNetwork(p: NetworkParams): Network {
  return { ...networks.regtest, bech32: p.bech32, pubKeyHash: p.pubKeyHash, scriptHash: p.scriptHash, wif: p.wif };
}

/** The output types a single key spends directly. */
export type KeySpend = 'p2wpkh' | 'p2pkh' | 'p2tr' | 'p2sh-p2wpkh';

export interface OwnedScript {
  readonly kind: KeySpend;
  readonly script: Buffer;
  readonly address: string;
}

/** What signing one stake input with a key needs. */
export interface KeySigning extends OwnedScript {
  readonly signer: Signer;
  /** P2SH-P2WPKH: the witness program the P2SH output commits to. */
  readonly redeemScript?: Buffer;
  /** P2TR: the x-only internal key (BIP86 key path, no script tree). */
  readonly tapInternalKey?: Buffer;
}

/**
 * A private key held for signing. It cannot be printed: inspecting or
 * stringifying it shows a placeholder, so a stray log line never leaks it.
 */
export class StakeKey {
  readonly #pair: ECPairInterface;
  readonly #network: Network;
  /** Where the key came from ("key file ./k", "NODEREG_WIF"), for messages. */
  readonly origin: string;

  constructor(pair: ECPairInterface, network: Network, origin: string) {
    this.#pair = pair;
    this.#network = network;
    this.origin = origin;
  }

  /** The scripts this key spends, most common first. */
  owned(): OwnedScript[] {
    return this.signings().map(({ kind, script, address }) => ({ kind, script, address }));
  }

  /** How to sign for `script`, or null when this key does not control it. */
  signingFor(script: Uint8Array): KeySigning | null {
    return this.signings().find((s) => s.script.equals(script)) ?? null;
  }

  private signings(): KeySigning[] {
    const pair = this.#pair;
    const network = this.#network;
    const pubkey = pair.publicKey;
    const p2pkh = payments.p2pkh({ pubkey, network });
    const out: KeySigning[] = [];
    if (pair.compressed) {
      const wpkh = payments.p2wpkh({ pubkey, network });
      out.push({ kind: 'p2wpkh', script: Buffer.from(wpkh.output!), address: wpkh.address!, signer: pair });
    }
    out.push({ kind: 'p2pkh', script: Buffer.from(p2pkh.output!), address: p2pkh.address!, signer: pair });
    if (pair.compressed) {
      const internal = Buffer.from(pubkey.subarray(1, 33));
      const tr = payments.p2tr({ internalPubkey: internal, network });
      out.push({ kind: 'p2tr', script: Buffer.from(tr.output!), address: tr.address!, signer: taprootSigner(pair), tapInternalKey: internal });
      const wpkh = payments.p2wpkh({ pubkey, network });
      const sh = payments.p2sh({ redeem: wpkh, network });
      out.push({ kind: 'p2sh-p2wpkh', script: Buffer.from(sh.output!), address: sh.address!, signer: pair, redeemScript: Buffer.from(wpkh.output!) });
    }
    return out;
  }

  toString(): string {
    return `[key from ${this.origin}]`;
  }

  toJSON(): string {
    return this.toString();
  }

  [inspect.custom](): string {
    return this.toString();
  }
}

/** BIP86: the key path signer for the output key tweaked with the internal key alone. */
function taprootSigner(pair: ECPairInterface): Signer {
  const tweaked = pair.tweak(btcCrypto.taggedHash('TapTweak', pair.publicKey.subarray(1, 33)));
  return {
    publicKey: tweaked.publicKey,
    sign: (hash, lowR) => tweaked.sign(hash, lowR),
    signSchnorr: (hash) => tweaked.signSchnorr(hash),
  };
}

/** Parses a WIF of `params`' chain. The message never contains the key. */
export function parseWif(wif: string, params: NetworkParams, origin: string): StakeKey {
  const network = toNetwork(params);
  let pair: ECPairInterface;
  try {
    pair = ECPair.fromWIF(wif.trim(), network);
  } catch (err) {
    const msg = (err as Error).message;
    if (/network/i.test(msg)) {
      throw new UserError(`the key in ${origin} belongs to another network (its WIF version byte is not ${params.wif} of ${params.name}): check the key, --network/--params`);
    }
    throw new UserError(`${origin} does not hold a valid WIF private key`);
  }
  return new StakeKey(pair, network, origin);
}

/**
 * Refuses a key file that others may read, as ssh does: a stake key lets
 * anyone who reads it move the stake and kill the node. `what` names the
 * file in messages (a webhook secret file gets the same check).
 */
export function checkKeyFilePrivate(path: string, what = 'key file'): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unreadable';
    if (what === 'key file' && looksLikeWif(path)) {
      throw new UsageError('--key-file must name a file, and its value looks like a private key: never put a key on the command line (it stays in shell history and is visible in ps); write it to a file with mode 600');
    }
    throw new UserError(`cannot read ${what} ${path} (${code})`);
  }
  if (!st.isFile()) throw new UserError(`${what} ${path} is not a regular file`);
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
    throw new UserError(`${what} ${path} is readable by other users (permissions ${mode} are too open); run: chmod 600 ${path}`);
  }
}

/** The one key in a key file: a WIF on its own line; blank lines and # comments are ignored. */
export function readKeyFile(path: string, params: NetworkParams): StakeKey {
  checkKeyFilePrivate(path);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read key file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
  if (lines.length !== 1) {
    throw new UserError(`key file ${path} must hold exactly one WIF private key on its own line (found ${lines.length} non-comment lines)`);
  }
  return parseWif(lines[0]!, params, `key file ${path}`);
}

/** The signing key from --key-file or NODEREG_WIF, or null when neither is given. */
export function loadKey(keyFile: string | undefined, params: NetworkParams, env: NodeJS.ProcessEnv = process.env): StakeKey | null {
  const fromEnv = env.NODEREG_WIF;
  if (keyFile !== undefined && fromEnv !== undefined && fromEnv !== '') {
    throw new UsageError('both --key-file and NODEREG_WIF are set: give the key one way only');
  }
  if (keyFile !== undefined) return readKeyFile(keyFile, params);
  if (fromEnv !== undefined && fromEnv !== '') return parseWif(fromEnv, params, 'NODEREG_WIF');
  return null;
}

/** One file of a --key-dir: its key, or why it could not be used. */
export type KeyDirEntry = { file: string; key: StakeKey } | { file: string; error: string };

/** Every key in a directory, one per file (dot files skipped), in name order. */
export function readKeyDir(dir: string, params: NetworkParams): KeyDirEntry[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    throw new UserError(`cannot read --key-dir ${dir} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  return names.filter((n) => !n.startsWith('.')).sort().map((name): KeyDirEntry => {
    const file = join(dir, name);
    try {
      return { file, key: readKeyFile(file, params) };
    } catch (err) {
      if (err instanceof UserError || err instanceof UsageError) return { file, error: err.message };
      throw err;
    }
  });
}
