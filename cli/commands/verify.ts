import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { printJson, UserError, withJson, withNetwork, type NetworkArgs } from '../common.js';
import { resolveRpc, withDatadir, type RpcFlags } from '../datadir.js';

interface VerifyArgs extends NetworkArgs, RpcFlags {
  db: string;
  json: boolean;
}

type Verdict =
  | { result: 'match'; height: number; hash: string; muhash: string }
  | { result: 'mismatch'; height: number; hash: string; index: string; node: string }
  | { result: 'unsupported'; message: string };

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/**
 * Compares the index's UTXO-set MuHash with the node's own
 * `gettxoutsetinfo muhash` at the same block. Operators run it after an
 * upgrade or a crash: a match means the UTXO set and balances under the
 * registry are exactly the node's.
 */
async function run(args: VerifyArgs): Promise<void> {
  // Imported here, not at the top: keeps the store and the RPC client off other commands' start-up.
  const [{ blockHashAt, requireTip, utxoHashAt }, { MUHASH_UNSUPPORTED, RpcClient, RpcError }, { asUserError, openIndexForRead }] = await Promise.all([
    import('../../indexer/read/queries.js'), import('../../indexer/node/rpc.js'), import('../index-access.js'),
  ]);
  const { db, params } = await openIndexForRead(args.db, args);
  let verdict: Verdict;
  try {
    const tip = await requireTip(db);
    const ours = await utxoHashAt(db, tip.height);
    if (ours === null) {
      throw new UserError('this index was built without --utxo-hash, so there is nothing to compare; rebuild it with --utxo-hash into a fresh --db');
    }
    const target = resolveRpc(args, params);
    const rpc = new RpcClient({
      url: target.url, user: target.user, password: target.password ?? process.env.NODEREG_RPC_PASSWORD, cookieFile: target.cookieFile, retries: 2,
    });
    const node = await rpc.getTxOutSetInfoMuhash();
    if (node === null) {
      verdict = { result: 'unsupported', message: `the node has no muhash: ${MUHASH_UNSUPPORTED}` };
    } else {
      if (node.height > tip.height) {
        throw new UserError(`the node is at height ${node.height} but the index only at ${tip.height}: run "nodereg index … --until-synced" first, then verify`);
      }
      const ourHash = rpcHex(await blockHashAt(db, node.height));
      if (ourHash !== node.bestblock) {
        throw new UserError(`the node's block at height ${node.height} is ${node.bestblock}, the index has ${ourHash}: the index is on another branch; run "nodereg index … --until-synced" to follow the node, then verify`);
      }
      const atNode = await utxoHashAt(db, node.height);
      verdict = atNode === node.muhash
        ? { result: 'match', height: node.height, hash: node.bestblock, muhash: node.muhash }
        : { result: 'mismatch', height: node.height, hash: node.bestblock, index: atNode ?? '', node: node.muhash };
    }
  } catch (err) {
    if (err instanceof RpcError) throw new UserError(err.message);
    throw asUserError(err, args.db);
  } finally {
    await db.close();
  }
  if (args.json) printJson(verdict);
  else if (verdict.result === 'match') process.stdout.write(`match: UTXO set at height ${verdict.height} (${verdict.hash}) hashes to ${verdict.muhash} on both sides\n`);
  else if (verdict.result === 'mismatch') process.stdout.write(`MISMATCH at height ${verdict.height} (${verdict.hash}): index ${verdict.index}, node ${verdict.node}. Rebuild the index into a fresh --db and report this\n`);
  else process.stdout.write(`${verdict.message}\n`);
  if (verdict.result !== 'match') process.exitCode = verdict.result === 'mismatch' ? 3 : 4;
}

export const verifyCommand: CommandModule = {
  ...LISTED.verify,
  builder: (y: Argv) =>
    withDatadir(withJson(withNetwork(y)))
      .option('rpc', { type: 'string', describe: 'node RPC URL (default: http://127.0.0.1 on the chain\'s standard port)' })
      .option('rpc-user', { type: 'string' })
      .option('rpc-password', { type: 'string', describe: 'prefer NODEREG_RPC_PASSWORD or --rpc-cookie' })
      .option('rpc-cookie', { type: 'string' })
      .option('db', { type: 'string', demandOption: true, describe: 'index directory (built with --utxo-hash)' })
      .example('$0 verify --rpc http://127.0.0.1:8332 --rpc-cookie ~/.bitcoin/.cookie --db ./index', 'exit 0 on match, 3 on mismatch, 4 when the node cannot tell'),
  handler: (argv) => run(argv as unknown as VerifyArgs),
};
