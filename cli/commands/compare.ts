import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import type { ExportNode } from '../../indexer/read/queries.js';
import { compareParties, type Comparison, type Party } from '../compare.js';
import { printJson, UserError, withJson, withNetwork, type NetworkArgs } from '../common.js';
import type { QuerySource } from '../query-source.js';

interface CompareArgs extends NetworkArgs {
  peer: string[];
  db?: string;
  api?: string;
  json: boolean;
}

/** Exit status when the parties disagree (1 stays for a party that cannot be reached or read). */
export const COMPARE_DIVERGENCE = 3;

function describeNode(n: ExportNode | null): string {
  if (n === null) return 'no registration';
  return `${n.status}, first ${n.firstHeight}, tip ${n.tipHeight} ${n.tipTxid.slice(0, 16)}…, renewals ${n.renewals}, expiry ${n.expiryHeight}, ended ${n.endedHeight ?? '-'}, balance ${n.balance}`;
}

function text(c: Comparison): string {
  const width = Math.max(...c.parties.map((p) => p.label.length));
  const rows = c.parties.map((p) => `  ${p.label.padEnd(width)}  block ${p.tip}  root ${p.root}  proof root ${p.proofRoot}`);
  if (c.result === 'agree') return [`agree: all ${c.parties.length} parties hold the same block, registry root and proof root at height ${c.height}`, ...rows].join('\n') + '\n';
  const names = { block: 'block', root: 'registry root', proofRoot: 'proof root' } as const;
  const lines = [
    `DIVERGENCE at height ${c.height}: the first height at which the parties disagree${c.height > 0 ? ` (all agree at ${c.height - 1})` : ''}`,
    ...rows,
    `  differs: ${c.differs.map((d) => names[d]).join(', ')}`,
    c.kind === 'chain'
      ? '  their blocks differ here: the parties follow different chains from this height'
      : c.kind === 'registry'
        ? '  same block, different registry roots: at least one indexer is wrong (run "nodereg check" on each, or rebuild one)'
        : '  same block and registry root, different proof roots: at least one indexer\'s proof tree is wrong (run "nodereg check" on each, or rebuild one)',
  ];
  if (c.differences.length === 0) {
    lines.push(`  their exports at height ${c.height} list the same registrations`);
  } else {
    lines.push(`  ${c.differences.length} registration(s) differ at height ${c.height}:`);
    for (const d of c.differences) {
      lines.push(`    ${d.stakeScript}${d.nodes.find((n) => n?.address)?.address ? ` (${d.nodes.find((n) => n?.address)!.address})` : ''}`);
      d.nodes.forEach((n, i) => lines.push(`      ${c.parties[i]!.label.padEnd(width)}  ${describeNode(n)}`));
    }
  }
  return lines.join('\n') + '\n';
}

async function run(args: CompareArgs): Promise<void> {
  // Imported here, not at the top: keeps the store and the address code off other commands' start-up.
  const [{ asUserError }, { openQuerySource }] = await Promise.all([import('../index-access.js'), import('../query-source.js')]);
  const parties: Party[] = [];
  try {
    const own = await openQuerySource(args);
    parties.push({ label: args.db !== undefined ? `--db ${args.db}` : `--api ${args.api!}`, source: own });
    for (const url of args.peer) {
      // Each peer settles its own params from its status; compareParties refuses a mismatch.
      const source: QuerySource = await openQuerySource({ api: url }).catch((err: unknown) => {
        throw err instanceof UserError ? new UserError(err.message.replace(/--api\b/g, '--peer')) : err;
      });
      parties.push({ label: url, source });
    }
    const result = await compareParties(parties);
    if (args.json) printJson(result);
    else process.stdout.write(text(result));
    if (result.result === 'divergence') process.exitCode = COMPARE_DIVERGENCE;
  } catch (err) {
    throw asUserError(err, args.db);
  } finally {
    for (const p of parties) await p.source.close();
  }
}

export const compareCommand: CommandModule = {
  ...LISTED.compare,
  builder: (y: Argv) =>
    withJson(withNetwork(y))
      .option('peer', { type: 'string', array: true, demandOption: true, describe: 'read API of another indexer, e.g. http://203.0.113.5:8080 (repeatable)' })
      .option('db', { type: 'string', describe: 'your index directory (when no daemon holds it)' })
      .option('api', { type: 'string', describe: 'or your running daemon\'s read API' })
      .conflicts('db', 'api')
      .check((a) => {
        if (a.db === undefined && a.api === undefined) throw new Error('give --db <dir>, or --api <url> of your running daemon');
        return true;
      })
      .epilogue(`Exit status: 0 all parties agree at their highest common height; ${COMPARE_DIVERGENCE} they disagree (the first such height is printed); 1 a party cannot be reached or read.`)
      .example('$0 compare --db ./index --peer http://203.0.113.5:8080 --peer http://198.51.100.7:8080', 'bisect to the first disagreement, if any'),
  handler: (argv) => run(argv as unknown as CompareArgs),
};
