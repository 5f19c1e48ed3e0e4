import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { BUILTIN_NETWORKS, type NetworkParams } from '../script/params.js';
import { UsageError } from './common.js';

/*
 * Finding a bitcoind the way bitcoin-cli does: its data directory holds one
 * subdirectory per test network, each with its .cookie and blocks/, and each
 * network has a standard RPC port.
 */

interface Layout {
  /** Subdirectory of the data directory; mainnet uses the directory itself. */
  readonly subdir: string;
  readonly rpcPort: number;
}

/** Bitcoin Core's layout, by built-in network name. */
export const BITCOIND_LAYOUT: Readonly<Record<string, Layout>> = {
  mainnet: { subdir: '', rpcPort: 8332 },
  testnet: { subdir: 'testnet3', rpcPort: 18332 },
  testnet4: { subdir: 'testnet4', rpcPort: 48332 },
  signet: { subdir: 'signet', rpcPort: 38332 },
  regtest: { subdir: 'regtest', rpcPort: 18443 },
};

export interface DatadirArgs {
  datadir?: string;
}

export interface RpcFlags extends DatadirArgs {
  rpc?: string;
  rpcUser?: string;
  rpcPassword?: string;
  rpcCookie?: string;
}

/** How to reach the node: the URL and one way to authenticate. */
export interface RpcTarget {
  url: string;
  user?: string;
  password?: string;
  cookieFile?: string;
}

/** Adds `--datadir`. */
export function withDatadir<T>(y: Argv<T>): Argv<T & DatadirArgs> {
  return y.option('datadir', {
    type: 'string',
    defaultDescription: '~/.bitcoin',
    describe: 'bitcoind data directory: the network\'s .cookie, RPC port and blocks/ are found from it and --chain',
  }) as Argv<T & DatadirArgs>;
}

/** The user's home directory: $HOME when set, as bitcoind and ssh read it. */
export function home(): string {
  return process.env.HOME || homedir();
}

/** The network's directory inside the data directory, or null for a chain described by --params. */
export function networkDir(args: DatadirArgs, params: NetworkParams): string | null {
  const layout = BITCOIND_LAYOUT[params.name];
  if (!layout || !isBuiltin(params)) return null;
  return join(args.datadir ?? join(home(), '.bitcoin'), layout.subdir);
}

// A params file may call its chain "regtest" without being bitcoind's regtest.
const isBuiltin = (p: NetworkParams): boolean => {
  const b = BUILTIN_NETWORKS[p.name];
  return b !== undefined && b.magic === p.magic && b.genesisHash === p.genesisHash;
};

/**
 * The node to talk to: --rpc, else 127.0.0.1 on the network's standard port.
 * Credentials: --rpc-user/--rpc-password (or in the URL), else --rpc-cookie,
 * else the network's .cookie in the data directory (when --datadir is given,
 * or when the default ~/.bitcoin has one).
 */
export function resolveRpc(args: RpcFlags, params: NetworkParams): RpcTarget {
  const layout = BITCOIND_LAYOUT[params.name];
  let url = args.rpc;
  if (url === undefined) {
    if (!layout || !isBuiltin(params)) throw new UsageError(`give --rpc <url>: the chain "${params.name}" of --params has no standard RPC port`);
    url = `http://127.0.0.1:${layout.rpcPort}`;
  }
  const target: RpcTarget = { url, user: args.rpcUser, password: args.rpcPassword };
  if (args.rpcCookie !== undefined) return { ...target, cookieFile: args.rpcCookie };
  if (args.rpcUser !== undefined || args.rpcPassword !== undefined || hasCredentials(url)) return target;
  const dir = networkDir(args, params);
  if (dir === null) return target;
  const cookie = join(dir, '.cookie');
  // An explicit --datadir always means its cookie: a missing one is reported (the node may be down).
  if (args.datadir !== undefined || existsSync(cookie)) return { ...target, cookieFile: cookie };
  return target;
}

function hasCredentials(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return false;
  }
}

/** --blocks-dir, else the network's blocks/ in the data directory. */
export function resolveBlocksDir(args: DatadirArgs & { blocksDir?: string }, params: NetworkParams): string {
  if (args.blocksDir !== undefined) return args.blocksDir;
  const dir = networkDir(args, params);
  if (dir === null) throw new UsageError(`give --blocks-dir <dir>: the chain "${params.name}" of --params has no place in a bitcoind data directory`);
  return join(dir, 'blocks');
}
