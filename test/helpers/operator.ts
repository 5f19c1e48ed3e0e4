import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Block, Transaction } from 'bitcoinjs-lib';
import { assembleBlock, DEFAULT_BLOCK_VERSION, fromRpcHex, makeCoinbase, REGTEST_BITS } from '../../fixtures/generator/block.js';
import { deriveKey, makeAccount, toNetwork, type Account, type AccountType } from '../../fixtures/generator/keys.js';
import { buildTransaction, type SigningInput, type TxOut } from '../../fixtures/generator/sign.js';
import { nodeInfo, utxosOf, type NodeInfo } from '../../indexer/read/queries.js';
import { openStore } from '../../indexer/store/store.js';
import { loadParamsFile } from '../../script/params.js';
import { startBcoin, type BcoinNode, type StartBcoinOptions } from './bcoin.js';
import { nodereg, noderegIn, ROOT } from './cli.js';

export const PARAMS_FILE = join(ROOT, 'fixtures', 'params', 'bcoin-regtest.json');
export const PARAMS = loadParamsFile(PARAMS_FILE);
export const NETWORK = toNetwork(PARAMS);
/** bcoin's regtest activates segwit by version bits at this height. */
export const SEGWIT_HEIGHT = 432;

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A bcoin regtest node, an index of it and a set of keys, for the operator
 * end-to-end tests. Funding is by coinbase (bcoin has no wallet here) and
 * the test's own payments are signed with the fixture generator's signer.
 */
export class RegtestLab {
  readonly miner: Account;
  /** Pays stakes whose addresses bcoin cannot mine to (P2TR: bcoin 1.0.2 predates bech32m). */
  readonly faucet: Account;
  private readonly faucetCoins: SigningInput[] = [];

  private constructor(readonly node: BcoinNode, readonly dir: string, readonly seed: string) {
    this.miner = this.account('miner', 'p2wpkh');
    this.faucet = this.account('faucet', 'p2wpkh');
  }

  /** Mines `blocks` coinbases to the faucet; they must mature (and segwit activate) before `fund`. */
  async fillFaucet(blocks: number): Promise<void> {
    for (let i = 0; i < blocks; i++) this.faucetCoins.push(await this.fundByCoinbase(this.faucet));
  }

  /**
   * Mines a block holding these transactions, by submitblock. bcoin 1.0.2's
   * mempool refuses spends of witness v1 (taproot) outputs as non-standard,
   * but its consensus rules accept them in blocks, as for any unknown
   * witness version.
   */
  async mineTxs(txs: Transaction[]): Promise<void> {
    const prev = await this.rpc<string>('getbestblockhash');
    const header = await this.rpc<{ height: number; time: number; mediantime: number }>('getblockheader', [prev, true]);
    const cb = makeCoinbase({ height: header.height + 1, tag: randomBytes(4), outputs: [{ script: this.miner.script, value: 0n }], txs });
    const time = Math.max(header.time, header.mediantime) + 1;
    const { raw } = assembleBlock({ version: DEFAULT_BLOCK_VERSION, prevHash: fromRpcHex(prev), time, bits: REGTEST_BITS, txs: [cb, ...txs] });
    const answer = await this.rpc<string | null>('submitblock', [raw.toString('hex')]);
    if (answer !== null) throw new Error(`bcoin refused the block: ${answer}`);
  }

  /** Pays `value` to a script from the faucet and sends it; the caller mines. Returns the txid. */
  async fund(script: Uint8Array, value: bigint): Promise<string> {
    const coin = this.faucetCoins.shift();
    if (!coin) throw new Error('the faucet is empty');
    const change = coin.value - value - 10_000n;
    const tx = this.pay([coin], [{ script, value }, { script: this.faucet.script, value: change }]);
    await this.rpc('sendrawtransaction', [tx.toHex()]);
    this.faucetCoins.push({ txid: tx.getId(), vout: 1, value: change, script: this.faucet.script, owner: this.faucet });
    return tx.getId();
  }

  static async start(seed: string, bcoin: StartBcoinOptions = {}): Promise<RegtestLab> {
    const node = await startBcoin(bcoin);
    const dir = mkdtempSync(join(tmpdir(), 'nodereg-op-'));
    mkdirSync(join(dir, 'keys'), { mode: 0o700 });
    return new RegtestLab(node, dir, seed);
  }

  get db(): string {
    return join(this.dir, 'index');
  }

  account(name: string, type: AccountType): Account {
    return makeAccount(name, type, deriveKey(this.seed, name, NETWORK), NETWORK);
  }

  /** Writes the account's WIF to a key file with the given mode. */
  keyFile(acct: Account, mode = 0o600, dir = join(this.dir, 'keys')): string {
    const path = join(dir, `${acct.name}.wif`);
    writeFileSync(path, `# ${acct.address}\n${acct.key.toWIF()}\n`, { mode });
    chmodSync(path, mode);
    return path;
  }

  rpcArgs(): string[] {
    return ['--rpc', this.node.url, '--rpc-user', 'x', '--rpc-password', this.node.apiKey];
  }

  /** The flags every --db operator command needs. */
  common(): string[] {
    return [...this.rpcArgs(), '--params', PARAMS_FILE, '--db', this.db];
  }

  /**
   * The node's RPC, retried when a kept-alive connection was closed
   * under us (bcoin drops idle sockets; undici may reuse one at that moment).
   */
  async rpc<T>(method: string, params: readonly unknown[] = []): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.node.rpc<T>(method, params);
      } catch (err) {
        // Jest runs tests in another realm: fetch's TypeError is not this realm's.
        if ((err as Error).name !== 'TypeError' || attempt === 5) throw new Error(`${method} failed ${attempt} time(s): ${String(err)} ${String((err as { cause?: unknown }).cause)}`);
        await sleep(50 * attempt);
      }
    }
  }

  async height(): Promise<number> {
    return this.rpc<number>('getblockcount');
  }

  async mine(n: number, address = this.miner.address): Promise<string[]> {
    return this.rpc<string[]>('generatetoaddress', [n, address]);
  }

  async mempool(): Promise<string[]> {
    return this.rpc<string[]>('getrawmempool');
  }

  async blockAt(height: number): Promise<Block> {
    const hash = await this.rpc<string>('getblockhash', [height]);
    return Block.fromHex(await this.rpc<string>('getblock', [hash, 0]));
  }

  /** Mines one block paying `acct` and returns its coinbase output to `acct`. */
  async fundByCoinbase(acct: Account): Promise<SigningInput> {
    await this.mine(1, acct.address);
    const height = await this.height();
    const cb = (await this.blockAt(height)).transactions![0]!;
    const vout = cb.outs.findIndex((o) => Buffer.from(o.script).equals(Buffer.from(acct.script)));
    return { txid: cb.getId(), vout, value: cb.outs[vout]!.value, script: acct.script, owner: acct, prevTx: cb.toBuffer() };
  }

  /** Builds and signs a payment from `inputs` (all owned by test accounts). */
  pay(inputs: SigningInput[], outputs: TxOut[]): Transaction {
    return buildTransaction(inputs, outputs, { mode: 'real', network: NETWORK });
  }

  /** The coins the index holds for an account, ready to spend (the index must not be in use). */
  async coinsOf(acct: Account): Promise<SigningInput[]> {
    const db = await openStore(this.db, PARAMS, { create: false });
    try {
      const list = await utxosOf(db, acct.script);
      const out: SigningInput[] = [];
      for (const u of list) {
        const tx = (await this.blockAt(u.height)).transactions!.find((t) => t.getId() === u.txid)!;
        out.push({ txid: u.txid, vout: u.vout, value: BigInt(u.value), script: acct.script, owner: acct, prevTx: tx.toBuffer() });
      }
      return out;
    } finally {
      await db.close();
    }
  }

  /** The index's answer for a stake (the index must not be in use). */
  async info(acct: Account): Promise<NodeInfo> {
    const db = await openStore(this.db, PARAMS, { create: false });
    try {
      return await nodeInfo(db, PARAMS, Buffer.from(acct.script));
    } finally {
      await db.close();
    }
  }

  /** Builds the index from scratch with `nodereg index --until-synced`. */
  indexUntilSynced(): void {
    const res = nodereg(['index', '--params', PARAMS_FILE, ...this.rpcArgs(), '--db', this.db, '--until-synced', '--log-level', 'warn']);
    if (res.status !== 0) throw new Error(`nodereg index failed: ${res.stderr}`);
  }

  /**
   * Runs the CLI in-process (see `noderegIn`) and mines a block whenever
   * the mempool holds a transaction, as a network would, until the CLI is done.
   */
  async runMining(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
    let done = false;
    const run = noderegIn(args, { env }).finally(() => {
      done = true;
    });
    let failure: unknown = null;
    const miner = (async () => {
      while (!done) {
        try {
          if ((await this.mempool()).length > 0) await this.mine(1);
        } catch (err) {
          failure = err;
          return;
        }
        await sleep(100);
      }
    })();
    const res = await run;
    await miner;
    if (failure !== null) throw new Error(`mining while the CLI ran failed: ${String(failure)} ${String((failure as { cause?: unknown }).cause)}\n${res.stderr}\n${res.stdout}\nnode: ${this.node.output().slice(-3000)}`);
    return res;
  }

  async stop(): Promise<void> {
    await this.node.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A local URL where nothing listens (port 1 would not do: fetch refuses it as a "bad port"). */
export async function closedUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** Parses the last JSON document a command printed. */
export function json<T = Record<string, unknown>>(res: CliResult): T {
  try {
    return JSON.parse(res.stdout) as T;
  } catch {
    throw new Error(`not JSON (status ${res.status}):\n${res.stdout}\n${res.stderr}`);
  }
}

/** A one-line error: "nodereg: …" (plus the usage hint for usage mistakes), no stack trace. */
export function expectOneLineError(res: CliResult, pattern: RegExp, status: 1 | 2 = 1): void {
  if (res.status !== status || !pattern.test(res.stderr)) {
    throw new Error(`expected exit ${status} and ${pattern}, got exit ${res.status}:\n${res.stderr}${res.stdout}`);
  }
  const lines = res.stderr.trimEnd().split('\n').filter((l) => !l.startsWith('WARNING: ') && !l.startsWith('Run with --help') && !l.startsWith('waiting for '));
  if (lines.length !== 1 || !lines[0]!.startsWith('nodereg: ')) {
    throw new Error(`expected a single "nodereg: " error line, got:\n${res.stderr}`);
  }
  if (/\n\s+at /.test(res.stderr)) throw new Error(`stack trace in:\n${res.stderr}`);
}
