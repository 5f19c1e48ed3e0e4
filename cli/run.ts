import yargs, { type Argv } from 'yargs';
import { COMMANDS } from './commands/all.js';
import { UsageError, UserError } from './common.js';
import { failureOf, withEnvAndConfig } from './config.js';
import { noEmptyPaths } from './paths.js';
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

/** How a run of the CLI ended. */
export interface CliOutcome {
  /** The exit status: 0 done, 1 a problem the user can fix, 2 a usage mistake, 70 a bug; or what the command set. */
  readonly status: number;
  /**
   * True when the command stopped on an error (its message is printed): it
   * may have left files, sockets or timers open, so a process ends at once.
   */
  readonly failed: boolean;
}

/**
 * Runs one command line (without the node and script names) and tells how it
 * ended; it never exits the process. Commands print to process.stdout and
 * process.stderr and set process.exitCode; the error line is printed here.
 * `main.ts` is the process around it.
 */
export async function runCli(argv: string[]): Promise<CliOutcome> {
  try {
    await withEnvAndConfig(withoutHelpAfterRun(yargs(argv)), argv)
      .scriptName('nodereg')
      .usage('$0 <command> [options]\n\nOn-chain node registry: announce, index and recount staked nodes.')
      .command([...COMMANDS])
      .demandCommand(1, 'choose a command (see --help)')
      .check(noEmptyPaths, true)
      .strict()
      .recommendCommands()
      .help()
      .alias('help', 'h')
      .version()
      .wrap(Math.min(110, process.stdout.columns ?? 100))
      // --help and --version print and return; the process ends by itself as after any command.
      .exitProcess(false)
      .fail((msg, err) => {
        // yargs passes a message for its own validation (and .check) failures,
        // and none when a command handler threw; a config file that cannot be
        // read keeps its own kind of error.
        throw failureOf(msg, err);
      })
      .parseAsync();
  } catch (err) {
    return { status: await reportFailure(err), failed: true };
  }
  return { status: Number(process.exitCode ?? 0), failed: false };
}

/** Prints the one line a failure gets and returns its exit status. Stack traces are kept for real bugs. */
async function reportFailure(err: unknown): Promise<number> {
  if (err instanceof UsageError) {
    process.stderr.write(`nodereg: ${redact(err.message)}\nRun with --help for usage and examples.\n`);
    return 2;
  }
  if (err instanceof UserError) {
    process.stderr.write(`nodereg: ${redact(err.message)}\n`);
    return 1;
  }
  // Storage faults that reached here without a command naming its --db: still the user's to fix, not a bug.
  // Imported only now: keeps the store's modules off every command's start-up.
  const [{ CorruptRecordError }, { runtimeFault }] = await Promise.all([import('../indexer/store/codec.js'), import('../indexer/store/faults.js')]);
  const fault = err instanceof CorruptRecordError ? err : runtimeFault('the --db directory', err);
  if (fault) {
    process.stderr.write(`nodereg: ${redact(fault.message)}\n`);
    return 1;
  }
  if ((err as NodeJS.ErrnoException | null)?.code === 'ENOSPC') {
    process.stderr.write('nodereg: no space left on the device; free space and run the same command to resume\n');
    return 1;
  }
  process.stderr.write(`nodereg: internal error (please report): ${redact(err instanceof Error ? err.stack ?? err.message : String(err))}\n`);
  return 70;
}
