#!/usr/bin/env node
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COMMANDS } from './commands/all.js';
import { UsageError, UserError } from './common.js';
import { failureOf, withEnvAndConfig } from './config.js';
import { redact } from '../indexer/redact.js';

/**
 * yargs renders a command's whole help text right after its handler starts,
 * to keep for a later showHelp: some 70 ms of string measuring on every run.
 * Nothing here shows help once a handler has run (failures go through .fail
 * below, which prints one line), so the render is left out. Help asked for
 * with --help, or printed for a usage mistake, is built as before.
 */
function withoutHelpAfterRun<T>(y: Argv<T>): Argv<T> {
  type Usage = { cacheHelpMessage?: () => void };
  const internal = y as unknown as { getInternalMethods?: () => { getUsageInstance?: () => Usage } };
  const usage = internal.getInternalMethods?.().getUsageInstance?.();
  if (typeof usage?.cacheHelpMessage === 'function') usage.cacheHelpMessage = () => undefined;
  return y;
}

/**
 * Entry point. Exit status: 0 done, 1 a problem the user can fix (the message
 * says how), 2 a usage mistake. Stack traces are kept for real bugs.
 */
async function main(argv: string[]): Promise<void> {
  await withEnvAndConfig(withoutHelpAfterRun(yargs(argv)), argv)
    .scriptName('nodereg')
    .usage('$0 <command> [options]\n\nOn-chain node registry: announce, index and recount staked nodes.')
    .command([...COMMANDS])
    .demandCommand(1, 'choose a command (see --help)')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns ?? 100))
    .fail((msg, err) => {
      // yargs passes a message for its own validation (and .check) failures,
      // and none when a command handler threw; a config file that cannot be
      // read keeps its own kind of error.
      throw failureOf(msg, err);
    })
    .parseAsync();
}

main(hideBin(process.argv)).catch(async (err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`nodereg: ${redact(err.message)}\nRun with --help for usage and examples.\n`);
    process.exit(2);
  }
  if (err instanceof UserError) {
    process.stderr.write(`nodereg: ${redact(err.message)}\n`);
    process.exit(1);
  }
  // Storage faults that reached here without a command naming its --db: still the user's to fix, not a bug.
  // Imported only now: keeps the store's modules off every command's start-up.
  const [{ CorruptRecordError }, { runtimeFault }] = await Promise.all([import('../indexer/store/codec.js'), import('../indexer/store/faults.js')]);
  const fault = err instanceof CorruptRecordError ? err : runtimeFault('the --db directory', err);
  if (fault) {
    process.stderr.write(`nodereg: ${redact(fault.message)}\n`);
    process.exit(1);
  }
  if ((err as NodeJS.ErrnoException | null)?.code === 'ENOSPC') {
    process.stderr.write('nodereg: no space left on the device; free space and run the same command to resume\n');
    process.exit(1);
  }
  process.stderr.write(`nodereg: internal error (please report): ${redact(err instanceof Error ? err.stack ?? err.message : String(err))}\n`);
  process.exit(70);
});
