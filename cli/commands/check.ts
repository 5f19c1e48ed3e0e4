import type { Argv, CommandModule } from 'yargs';
import { LISTED } from './listing.js';
import { printJson, withJson, withNetwork, type NetworkArgs } from '../common.js';

interface CheckArgs extends NetworkArgs { db: string; json: boolean }

/** Exit status when the rows disagree with the stored values (1 stays for an index that cannot be opened or read). */
export const CHECK_MISMATCH = 3;

async function run(args: CheckArgs): Promise<void> {
  // Imported here, not at the top: keeps the store off other commands' start-up.
  const [{ checkIndex }, { rebuildHint }, { asUserError, openIndexForRead }] = await Promise.all([
    import('../../indexer/read/check.js'), import('../../indexer/store/faults.js'), import('../index-access.js'),
  ]);
  const { db } = await openIndexForRead(args.db, args, true);
  let report;
  try {
    report = await checkIndex(db);
  } catch (err) {
    throw asUserError(err, args.db);
  } finally {
    await db.close();
  }
  const remedy = report.mismatch === null ? null : rebuildHint(args.db);
  if (args.json) {
    printJson({ result: report.mismatch === null ? 'ok' : 'mismatch', height: report.height, tip: report.tip, checks: report.items, mismatch: report.mismatch, remedy });
  } else if (report.mismatch === null) {
    const what = report.items.map((i) => `${i.what} (${i.rows})`).join(', ');
    process.stdout.write(`ok: at height ${report.height} (${report.tip}) the table checksums and the stored values agree with the rows: ${what}\n`);
  } else {
    process.stdout.write(`MISMATCH: ${report.mismatch}; ${remedy}\n`);
  }
  if (report.mismatch !== null) process.exitCode = CHECK_MISMATCH;
}

export const checkCommand: CommandModule = {
  ...LISTED.check,
  builder: (y: Argv) =>
    withJson(withNetwork(y))
      .option('db', { type: 'string', demandOption: true, describe: 'index directory' })
      .epilogue('Exit status: 0 the index is sound; 1 it cannot be opened or read (damaged files: the message names them); '
        + `${CHECK_MISMATCH} a stored root or hash disagrees with the rows it summarises. Either way the remedy is to rebuild the index (recount --reset) or restore a snapshot.`)
      .example('$0 check --db ./index', 're-derive the registry root (and UTXO hash) and compare with the stored ones'),
  handler: (argv) => run(argv as unknown as CheckArgs),
};
