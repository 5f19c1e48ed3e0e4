import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { REASON_TEXT, type ReasonCode } from '../../script/reasons.js';
import { hexArg, printJson, UsageError, UserError, withJson, withNetwork } from '../common.js';
import { coins, nodesTable, table } from '../format.js';
import type { QuerySource, SourceArgs } from '../query-source.js';

export interface DbArgs extends SourceArgs { json: boolean }

/** Opens --db or --api, runs `fn`, closes it, and turns expected failures into one-line errors. */
export async function withIndex(args: DbArgs, fn: (source: QuerySource) => Promise<void>): Promise<void> {
  // Imported here, not at the top: keeps the store off other commands' start-up.
  const [{ asUserError }, { openQuerySource }] = await Promise.all([import('../index-access.js'), import('../query-source.js')]);
  const source = await openQuerySource(args);
  try {
    await fn(source);
  } catch (err) {
    throw asUserError(err, args.db);
  } finally {
    await source.close();
  }
}

export function dbOptions(y: Argv): Argv {
  return withJson(withNetwork(y))
    .option('db', { type: 'string', describe: 'index directory (when no daemon holds it)' })
    .option('api', { type: 'string', describe: 'or the read API of a running daemon, e.g. http://127.0.0.1:8080' })
    .conflicts('db', 'api')
    .check((a) => {
      if (a.db === undefined && a.api === undefined) throw new Error('give --db <dir>, or --api <url> of a running daemon');
      return true;
    });
}

export const heightCheck = (name: string) => (a: Record<string, unknown>): true => {
  const v = a[name];
  if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0)) throw new Error(`--${name} must be a whole number ≥ 0`);
  return true;
};

interface NodesArgs extends DbArgs { status: 'active' | 'expired' | 'lapsed' | 'all'; at?: number; expiringWithin?: number }

const nodes: CommandModule = {
  ...LISTED.nodes,
  builder: (y) => dbOptions(y)
    .option('status', { choices: ['active', 'expired', 'lapsed', 'all'] as const, default: 'active' as const, describe: 'which registrations' })
    .option('at', { type: 'number', describe: 'as of this past height (rebuilt from the event history)' })
    .option('expiring-within', { type: 'number', describe: 'only active nodes that expire within this many blocks: the ones to renew' })
    .check(heightCheck('at'))
    .check(heightCheck('expiring-within'))
    .example('$0 nodes --db ./index --status all --at 150', 'the registry as it stood at height 150')
    .example('$0 nodes --db ./index --expiring-within 144', 'the nodes whose registration runs out within a day of 10-minute blocks')
    .example('$0 nodes --api http://127.0.0.1:8080', 'ask the running daemon that holds the index'),
  handler: (argv) => {
    const a = argv as unknown as NodesArgs;
    return withIndex(a, async (source) => {
      const { height: h, nodes: list } = await source.nodes(a.status, a.at, a.expiringWithin);
      const within = a.expiringWithin === undefined ? '' : ` expiring within ${a.expiringWithin} blocks`;
      if (a.json) printJson({ height: h, status: a.status, ...(a.expiringWithin === undefined ? {} : { expiringWithin: a.expiringWithin }), nodes: list });
      else process.stdout.write(`height ${h}, ${list.length} ${a.status === 'all' ? '' : a.status + ' '}registration(s)${within}\n\n${nodesTable(list, h)}\n`);
    });
  },
};

interface NodeArgs extends DbArgs { stake: string }

const node: CommandModule = {
  ...LISTED.node,
  builder: (y) => dbOptions(y)
    .positional('stake', { type: 'string', demandOption: true, describe: 'staking address or output script hex' })
    .example('$0 node bcrt1q... --db ./index', 'look up one staking address'),
  handler: (argv) => {
    const a = argv as unknown as NodeArgs;
    return withIndex(a, async (source) => {
      const { AddressError, parseStake } = await import('../../script/address.js');
      let script: Buffer;
      try {
        script = parseStake(a.stake, source.params);
      } catch (err) {
        if (err instanceof AddressError) throw new UsageError(err.message);
        throw err;
      }
      const info = await source.node(script);
      const current = info.registration;
      const history = info.history;
      const balance = BigInt(info.balance);
      if (a.json) {
        printJson(info);
        if (!current) process.exitCode = 1;
        return;
      }
      if (!current) throw new UserError(`${a.stake} has never been registered (balance ${coins(balance)})`);
      process.stdout.write([
        `stake      ${current.address ?? current.stakeScript}`,
        `status     ${current.status}${current.status === 'active' ? `, expires at ${current.expiryHeight} (in ${current.blocksUntilExpiry} blocks)` : `, ended at ${current.endedHeight}`}`,
        `age        ${current.age} blocks since ${current.firstHeight}, ${current.renewals} renewal(s)`,
        `balance    ${coins(balance)} (${BigInt(current.stakeMargin) < 0n ? 'below' : 'above'} minStake by ${coins(BigInt(current.stakeMargin) < 0n ? -BigInt(current.stakeMargin) : BigInt(current.stakeMargin))})`,
        ...(current.renewBy === null ? [] : [`renew by   height ${current.renewBy}${current.expiresAt === null ? '' : ` (expires about ${new Date(current.expiresAt * 1000).toISOString().replace(/\.000Z$/, 'Z')})`}`]),
        `tip        ${current.tipTxid} (height ${current.tipHeight}, timestamp ${current.timestamp})`,
        '',
        table(['event', 'height', 'txid', 'registration'], history.map((h) => [h.event, String(h.height), h.txid ?? '(end of block)', h.registration])),
      ].join('\n') + '\n');
    });
  },
};

interface ExplainArgs extends DbArgs { txid: string }

const explain: CommandModule = {
  ...LISTED.explain,
  builder: (y) => dbOptions(y).positional('txid', { type: 'string', demandOption: true, describe: 'transaction id (RPC hex)' })
    .example('$0 explain 6dc176c7006cd8590131206e6e897e03d43120b95f2654662c711c51c2639831 --db ./index', 'accepted, or the reason code it was rejected with'),
  handler: (argv) => {
    const a = argv as unknown as ExplainArgs;
    const txid = hexArg(a.txid, 'txid');
    if (txid.length !== 32) throw new UsageError(`a txid is 64 hex digits, got ${a.txid.length}`);
    return withIndex(a, async (source) => {
      const list = (await source.explain(txid.toString('hex'))).map((o) => ({
        ...o, explanation: o.reason === null ? 'accepted' : REASON_TEXT[o.reason as ReasonCode],
      }));
      if (a.json) {
        printJson({ txid: a.txid.toLowerCase(), announcements: list });
        if (list.length === 0) process.exitCode = 1;
        return;
      }
      if (list.length === 0) {
        throw new UserError(`${a.txid}: no announcement attempt from this transaction is in the index (it has none, or it is not in the indexed chain)`);
      }
      for (const o of list) {
        const what = o.kind ? (o.kind === 'newnode' ? 'OP_NEWNODE' : 'OP_RENEWAL') : 'announcement attempt';
        process.stdout.write(o.accepted
          ? `output ${o.vout}: ${what} accepted at height ${o.height}\n`
          : `output ${o.vout}: ${what} rejected at height ${o.height}: ${o.reason} (${o.explanation})\n`);
      }
    });
  },
};

interface HeightArgs extends DbArgs { height?: number }

const root: CommandModule = {
  ...LISTED.root,
  builder: (y) => dbOptions(y).option('height', { type: 'number' }).check(heightCheck('height'))
    .example('$0 root --db ./index --json', 'height, tip hash, registry root and proof root (docs/proofs.md)')
    .example('$0 root --db ./index --height 400', 'compare with anyone else\'s recount at height 400'),
  handler: (argv) => {
    const a = argv as unknown as HeightArgs;
    return withIndex(a, async (source) => {
      const r = await source.root(a.height);
      if (a.json) printJson({ height: r.height, tip: r.tip, root: r.root, proofRoot: r.proofRoot });
      else process.stdout.write(`registry root  ${r.root}\nproof root     ${r.proofRoot}\n`);
    });
  },
};

const exportCmd: CommandModule = {
  ...LISTED.export,
  builder: (y) => dbOptions(y).option('height', { type: 'number' }).check(heightCheck('height'))
    .example('$0 export --db ./index > registry.json', 'the registry as third parties compare it'),
  handler: (argv) => {
    const a = argv as unknown as HeightArgs;
    return withIndex(a, async (source) => printJson(await source.export(a.height)));
  },
};

const utxoHash: CommandModule = {
  ...LISTED.utxoHash,
  builder: (y) => dbOptions(y).option('height', { type: 'number' }).check(heightCheck('height'))
    .example('$0 utxo-hash --db ./index --height 100', 'compare with: bitcoin-cli gettxoutsetinfo muhash 100'),
  handler: (argv) => {
    const a = argv as unknown as HeightArgs;
    return withIndex(a, async (source) => {
      const r = await source.root(a.height);
      if (r.utxoMuhash === null) throw new UserError('this index was built without --utxo-hash; rebuild it with "nodereg recount --utxo-hash --db <new dir> …"');
      if (a.json) printJson({ height: r.height, tip: r.tip, utxoMuhash: r.utxoMuhash });
      else process.stdout.write(r.utxoMuhash + '\n');
    });
  },
};

export const queryCommands: CommandModule[] = [nodes, node, explain, root, exportCmd, utxoHash];
