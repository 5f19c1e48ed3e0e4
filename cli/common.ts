import type { Argv } from 'yargs';
import { shown } from '../script/keyshape.js';
import { ParamsError, resolveParams, type NetworkParams } from '../script/params.js';

/** A mistake in how the command was called: printed as one line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A problem the user can fix (bad file, locked database…): one line, exit status 1. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

export interface NetworkArgs {
  network?: string;
  params?: string;
}

/** bitcoind's -chain names for the networks nodereg calls mainnet and testnet. */
const CHAIN_NAMES: Readonly<Record<string, string>> = { main: 'mainnet', test: 'testnet' };

/** `--chain main` is `--network mainnet`; other names pass through to be checked. */
export function chainName(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const v = String(Array.isArray(value) ? value[value.length - 1] : value);
  return CHAIN_NAMES[v] ?? v;
}

/** Adds `--network` (alias `--chain`) / `--params` to a command. */
export function withNetwork<T>(y: Argv<T>): Argv<T & NetworkArgs> {
  return y
    .option('network', {
      alias: 'chain',
      type: 'string',
      describe: 'built-in chain: mainnet (main), testnet (test), testnet4, signet, regtest',
      default: undefined,
      coerce: chainName,
    })
    .option('params', {
      type: 'string',
      describe: 'JSON file describing any other Bitcoin-format chain (overrides --network)',
    }) as Argv<T & NetworkArgs>;
}

/** Adds `--json` to a command. */
export function withJson<T>(y: Argv<T>): Argv<T & { json: boolean }> {
  return y.option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' }) as Argv<T & { json: boolean }>;
}

/** Resolves network flags, turning a bad params file into a usage error. */
export function networkFrom(args: NetworkArgs, fallback = 'mainnet'): NetworkParams {
  try {
    return resolveParams({ network: args.network ?? (args.params ? undefined : fallback), params: args.params });
  } catch (err) {
    if (err instanceof ParamsError) throw new UsageError(err.message);
    throw err;
  }
}

/** Prints one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Parses hex from the command line, or throws a usage error naming the flag. */
export function hexArg(value: string, what: string): Buffer {
  const v = value.startsWith('0x') ? value.slice(2) : value;
  if (v.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(v)) {
    throw new UsageError(`${what} must be hex (an even number of 0-9a-f digits), got ${shown(value)}`);
  }
  return Buffer.from(v, 'hex');
}
