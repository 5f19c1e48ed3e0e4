import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Everything the protocol and the indexer need to know about a chain. Address
 * prefixes follow bitcoinjs-lib's `Network` shape so a params object can be
 * handed to its address functions unchanged.
 */
export interface NetworkParams {
  /** Short name, recorded in the database and printed in exports. */
  readonly name: string;
  readonly bech32: string;
  readonly pubKeyHash: number;
  readonly scriptHash: number;
  readonly wif: number;
  /** blk-file record magic, 4 bytes hex (e.g. "fabfb5da"). */
  readonly magic: string;
  /** Genesis block hash in RPC (display) byte order. */
  readonly genesisHash: string;
  /** Smallest balance, in base units, that keeps a registration live. */
  readonly minStake: bigint;
  readonly expiryBlocks: number;
  /** Seconds a timestamp may lie above its block's time. */
  readonly futureTolerance: number;
  /** Seconds a timestamp may lie below its block's time. */
  readonly staleWindow: number;
}

const PROTOCOL_DEFAULTS = {
  minStake: 4_200_000_000n,
  futureTolerance: 7200,
  staleWindow: 86400,
} as const;

const TESTNET_ADDRESSES = { bech32: 'tb', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef } as const;

export const BUILTIN_NETWORKS: Readonly<Record<string, NetworkParams>> = {
  mainnet: {
    name: 'mainnet', bech32: 'bc', pubKeyHash: 0x00, scriptHash: 0x05, wif: 0x80,
    magic: 'f9beb4d9',
    genesisHash: '000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f',
    expiryBlocks: 4320, ...PROTOCOL_DEFAULTS,
  },
  testnet: {
    name: 'testnet', ...TESTNET_ADDRESSES,
    magic: '0b110907',
    genesisHash: '000000000933ea01ad0ee984209779baaec3ced90fa3f408719526f8d77f4943',
    expiryBlocks: 4320, ...PROTOCOL_DEFAULTS,
  },
  testnet4: {
    name: 'testnet4', ...TESTNET_ADDRESSES,
    magic: '1c163f28',
    genesisHash: '00000000da84f2bafbbc53dee25a72ae507ff4914b867c565be350b0da8bf043',
    expiryBlocks: 4320, ...PROTOCOL_DEFAULTS,
  },
  signet: {
    name: 'signet', ...TESTNET_ADDRESSES,
    magic: '0a03cf40',
    genesisHash: '00000008819873e925422c1ff0f99f7cc9bbb232af63a077a480a3633bee1ef6',
    expiryBlocks: 4320, ...PROTOCOL_DEFAULTS,
  },
  regtest: {
    name: 'regtest', bech32: 'bcrt', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef,
    magic: 'fabfb5da',
    genesisHash: '0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206',
    expiryBlocks: 144, ...PROTOCOL_DEFAULTS,
  },
};

/** A params file or network name that cannot be used; the message names the field. */
export class ParamsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ParamsError';
  }
}

type Field = keyof NetworkParams;

function fail(source: string, field: string, why: string): never {
  throw new ParamsError(`${source}: field "${field}" ${why}`);
}

function intField(raw: Record<string, unknown>, source: string, field: Field, min: number, max: number): number {
  const v = raw[field];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    fail(source, field, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function hexField(raw: Record<string, unknown>, source: string, field: Field, bytes: number): string {
  const v = raw[field];
  if (typeof v !== 'string' || v.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(v)) {
    fail(source, field, `must be ${bytes} bytes of hex, got ${JSON.stringify(v)}`);
  }
  return v.toLowerCase();
}

function amountField(raw: Record<string, unknown>, source: string, field: Field): bigint {
  const v = raw[field];
  if (typeof v === 'number' && Number.isSafeInteger(v) && v > 0) return BigInt(v);
  if (typeof v === 'string' && /^[1-9][0-9]{0,19}$/.test(v)) return BigInt(v);
  fail(source, field, `must be a positive whole number of base units (a decimal string or safe integer), got ${JSON.stringify(v)}`);
}

/**
 * Validates an untrusted params object (usually parsed from a `--params` file).
 * Every field is required except the protocol constants, which default to
 * docs/spec.md §2.5's values, so a file for a new chain states only what differs.
 */
export function parseParams(raw: unknown, source = 'params'): NetworkParams {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ParamsError(`${source}: must be a JSON object`);
  }
  const r = raw as Record<string, unknown>;
  const known = new Set<string>(['name', 'bech32', 'pubKeyHash', 'scriptHash', 'wif', 'magic', 'genesisHash',
    'minStake', 'expiryBlocks', 'futureTolerance', 'staleWindow', 'description']);
  for (const key of Object.keys(r)) {
    if (!known.has(key)) fail(source, key, 'is not a known params field (typo?)');
  }
  const name = r.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
    fail(source, 'name', `must be 1-64 characters of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`);
  }
  const bech32 = r.bech32;
  if (typeof bech32 !== 'string' || !/^[a-z0-9]{1,83}$/.test(bech32)) {
    fail(source, 'bech32', `must be a lowercase bech32 human-readable part, got ${JSON.stringify(bech32)}`);
  }
  const withDefaults = { ...PROTOCOL_DEFAULTS, ...r };
  return {
    name,
    bech32,
    pubKeyHash: intField(r, source, 'pubKeyHash', 0, 255),
    scriptHash: intField(r, source, 'scriptHash', 0, 255),
    wif: intField(r, source, 'wif', 0, 255),
    magic: hexField(r, source, 'magic', 4),
    genesisHash: hexField(r, source, 'genesisHash', 32),
    minStake: amountField(withDefaults, source, 'minStake'),
    expiryBlocks: intField(r, source, 'expiryBlocks', 1, 0xffffffff),
    futureTolerance: intField(withDefaults, source, 'futureTolerance', 0, 0xffffffff),
    staleWindow: intField(withDefaults, source, 'staleWindow', 0, 0xffffffff),
  };
}

/** Reads and validates a `--params` JSON file. */
export function loadParamsFile(path: string): NetworkParams {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ParamsError(`cannot read params file ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ParamsError(`params file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return parseParams(raw, path);
}

/** Looks up a built-in network by name, with a helpful error listing the choices. */
export function builtinNetwork(name: string): NetworkParams {
  const p = BUILTIN_NETWORKS[name];
  if (!p) {
    throw new ParamsError(`unknown network "${name}": choose one of ${Object.keys(BUILTIN_NETWORKS).join(', ')}, or describe the chain with --params <file.json>`);
  }
  return p;
}

/** Resolves the `--network` / `--params` pair the CLI accepts. `--params` wins. */
export function resolveParams(opts: { network?: string; params?: string }): NetworkParams {
  if (opts.params) return loadParamsFile(opts.params);
  return builtinNetwork(opts.network ?? 'regtest');
}

/**
 * The params as the JSON a `--params` file holds (minStake as a decimal
 * string): what an index stores so that later commands need no file.
 * `parseParams` reads it back.
 */
export function paramsToJson(p: NetworkParams): Record<string, string | number> {
  return {
    name: p.name, bech32: p.bech32, pubKeyHash: p.pubKeyHash, scriptHash: p.scriptHash, wif: p.wif,
    magic: p.magic, genesisHash: p.genesisHash, minStake: p.minStake.toString(),
    expiryBlocks: p.expiryBlocks, futureTolerance: p.futureTolerance, staleWindow: p.staleWindow,
  };
}

/**
 * A stable fingerprint of everything that changes what the indexer computes.
 * The database records it and refuses to open under other params, because an
 * index built with another minStake or window would silently disagree.
 */
export function paramsHash(p: NetworkParams): string {
  const canonical = JSON.stringify([
    p.name, p.bech32, p.pubKeyHash, p.scriptHash, p.wif, p.magic, p.genesisHash,
    p.minStake.toString(), p.expiryBlocks, p.futureTolerance, p.staleWindow,
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}
