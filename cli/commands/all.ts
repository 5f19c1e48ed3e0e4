import type { Argv, CommandModule } from 'yargs';
import { LISTED, type Listed } from './listing.js';

/*
 * Every command is listed with its name and description only; its module
 * (options, checks, handler, and what those import) is imported when yargs
 * runs that command's builder, i.e. when it is the command given. yargs
 * awaits a builder that returns a promise and then parses, checks and
 * prints help as with the module's own builder. A start thus loads one
 * command's definitions instead of all of them.
 *
 * One thing yargs does differently after a promised builder: an error of
 * the command's own parse (a config file that cannot be read, a flag
 * missing its value) no longer reaches .fail() with its message, but
 * rejects as yargs' bare error. `failParseErrors` hands it to .fail()
 * first, as yargs does after a synchronous builder.
 */

interface Internal {
  parsed?: { error?: Error | null } | false;
  getInternalMethods(): { getUsageInstance(): { fail(msg: string, err: Error): void } };
}

/** Passes an error of the command's parse to .fail() with its message, before validation. */
function failParseErrors(y: Argv): Argv {
  return y.middleware(((_argv: unknown, yi: Internal) => {
    const error = yi.parsed === false ? undefined : yi.parsed?.error;
    if (error) yi.getInternalMethods().getUsageInstance().fail(error.message, new Error(error.message));
  }) as never, true);
}

type Load = () => Promise<CommandModule>;

/** `listed` as yargs sees it, with the builder and handler of the module `load` gives. */
function lazy(listed: Listed, load: Load): CommandModule {
  return {
    ...listed,
    builder: (async (y: Argv, helpOrVersionSet: boolean) => {
      const { builder } = await load();
      if (typeof builder === 'function') return failParseErrors(await (builder as (y: Argv, helpOrVersionSet: boolean) => Argv | PromiseLike<Argv>)(y, helpOrVersionSet));
      return failParseErrors(builder === undefined ? y : y.options(builder));
    }) as unknown as CommandModule['builder'],
    handler: async (argv) => (await load()).handler(argv),
  };
}

/** The command of `list` that `listed` names. */
function named(list: readonly CommandModule[], listed: Listed): CommandModule {
  const found = list.find((c) => c.command === listed.command);
  if (found === undefined) throw new Error(`no command "${listed.command}" in its module`);
  return found;
}

const query = (listed: Listed): CommandModule => lazy(listed, async () => named((await import('./query.js')).queryCommands, listed));

/** Every command of `nodereg`, in the order its help lists them. */
export const COMMANDS: readonly CommandModule[] = [
  lazy(LISTED.script, async () => (await import('./script.js')).scriptCommand),
  lazy(LISTED.recount, async () => (await import('./recount.js')).recountCommand),
  lazy(LISTED.index, async () => (await import('./index.js')).indexCommand),
  query(LISTED.nodes), query(LISTED.node), query(LISTED.explain), query(LISTED.root), query(LISTED.export), query(LISTED.utxoHash),
  lazy(LISTED.payouts, async () => (await import('./payouts.js')).payoutsCommand),
  lazy(LISTED.verify, async () => (await import('./verify.js')).verifyCommand),
  lazy(LISTED.check, async () => (await import('./check.js')).checkCommand),
  lazy(LISTED.snapshot, async () => (await import('./snapshot.js')).snapshotCommand),
  lazy(LISTED.compare, async () => (await import('./compare.js')).compareCommand),
  lazy(LISTED.proof, async () => (await import('./proof.js')).proofCommand),
  lazy(LISTED.diff, async () => (await import('./proof.js')).diffCommand),
  lazy(LISTED.announce, async () => (await import('./operator.js')).announceCommand),
  lazy(LISTED.renew, async () => (await import('./operator.js')).renewCommand),
  lazy(LISTED.broadcast, async () => (await import('./operator.js')).broadcastCommand),
  lazy(LISTED.status, async () => (await import('./operator.js')).statusCommand),
  lazy(LISTED.key, async () => (await import('./key.js')).keyCommand),
  lazy(LISTED.serve, async () => (await import('./serve.js')).serveCommand),
  lazy(LISTED.mirror, async () => (await import('./mirror.js')).mirrorCommand),
];
