import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Argv } from 'yargs';
import { Parser } from 'yargs/helpers';
import { UsageError, UserError } from './common.js';
import { home } from './datadir.js';
import { nearestOption, OPTION_NAMES } from './optionnames.js';
import { noEmptyPaths } from './paths.js';

/*
 * Options from the environment and from a config file, the way yargs does it:
 * NODEREG_<OPTION> (NODEREG_RPC_COOKIE for --rpc-cookie) and a bitcoin.conf-
 * style file of `option=value` lines. Precedence: command line, then
 * environment, then the file, then the defaults.
 */

export const ENV_PREFIX = 'NODEREG';
export const CONF_NAME = 'nodereg.conf';

/** Never taken from the environment or a file as an option: NODEREG_WIF is read as a key by the signing code, never as a flag. */
const NEVER_FROM_FILE = new Set(['wif', 'conf']);

/**
 * The config file to read when --conf is not given: `<--db>/nodereg.conf`,
 * else `~/.nodereg/nodereg.conf`, whichever exists first.
 */
export function defaultConfPath(args: string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  const pre = Parser(args, { string: ['db', 'conf'], envPrefix: ENV_PREFIX } as Parameters<typeof Parser>[1]) as { db?: unknown; conf?: unknown };
  if (typeof pre.conf === 'string') return undefined;
  const db = typeof pre.db === 'string' ? pre.db : env[`${ENV_PREFIX}_DB`];
  const candidates = [...(db ? [join(db, CONF_NAME)] : []), join(home(), '.nodereg', CONF_NAME)];
  return candidates.find((p) => existsSync(p));
}

/** One `option=value` line of a config file, with its line number (from 1). */
export interface ConfigLine {
  readonly key: string;
  readonly value: string;
  readonly line: number;
}

/**
 * Reads a config file's lines: one `option=value` per line (long option
 * names without dashes, e.g. `rpc-cookie=/home/me/.bitcoin/.cookie`), `#`
 * comments, blank lines ignored.
 */
export function configLines(text: string, path: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') return;
    const m = /^([a-z][a-z0-9-]*)\s*=\s*(.*)$/.exec(line);
    if (!m) throw new UserError(`${path} line ${i + 1}: expected option=value (e.g. chain=regtest), got "${line.slice(0, 40)}"`);
    const [, key, value] = m as unknown as [string, string, string];
    if (NEVER_FROM_FILE.has(key)) {
      throw new UserError(key === 'wif'
        ? `${path} line ${i + 1}: a private key never goes in the config file; use key-file=<file> (mode 600)`
        : `${path} line ${i + 1}: "${key}" cannot be set from a config file`);
    }
    out.push({ key, value, line: i + 1 });
  });
  return out;
}

/** Parses a config file (see `configLines`); an option given twice becomes a list (as --cors takes). */
export function parseConfig(text: string, path: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const { key, value } of configLines(text, path)) {
    const prev = out[key];
    out[key] = prev === undefined ? value : [...(Array.isArray(prev) ? prev : [prev]), value];
  }
  return out;
}

/**
 * One warning per key of the file that no nodereg command takes: a key
 * another command takes is skipped quietly (one file serves every command),
 * but one that nothing takes is most likely a misspelling, as bitcoind warns
 * about unknown settings in bitcoin.conf.
 */
export function unknownKeyWarnings(lines: readonly ConfigLine[], path: string): string[] {
  const known = new Set(OPTION_NAMES);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const { key, line } of lines) {
    if (known.has(key) || seen.has(key)) continue;
    seen.add(key);
    const near = nearestOption(key);
    out.push(`${path} line ${line}: "${key}" is not an option of any nodereg command, so it is ignored${near === null ? '' : ` (did you mean "${near}"?)`}`);
  }
  return out;
}

/** yargs re-wraps what the loader throws; this keeps the original so the exit code stays 1. */
let configFailure: UserError | null = null;
/** Config files whose unknown keys were already warned about in this run. */
const warnedAbout = new Set<string>();
/** The file as read, for booleans written bitcoin.conf's way (see below). */
let configRead: Record<string, string | string[]> = {};

function loadConfig(path: string): Record<string, string | string[]> {
  try {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw new UserError(`cannot read the config file ${path} (${(err as NodeJS.ErrnoException).code ?? 'unreadable'}): check --conf`);
    }
    const lines = configLines(text, path);
    // yargs loads the file again for the command's own options: warn once.
    if (!warnedAbout.has(path)) for (const w of unknownKeyWarnings(lines, path)) process.stderr.write(`nodereg: warning: ${w}\n`);
    warnedAbout.add(path);
    configRead = parseConfig(text, path);
    return configRead;
  } catch (err) {
    if (err instanceof UserError) configFailure = err;
    throw err;
  }
}

const camel = (k: string): string => k.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * Adds NODEREG_* variables and --conf to the parser. One file and one
 * environment serve every command, so values for options the running command
 * does not have are dropped; an unknown option typed on the command line is
 * still an error.
 */
export function withEnvAndConfig<T>(y: Argv<T>, args: string[], env: NodeJS.ProcessEnv = process.env): Argv<T> {
  const typed = new Set(Object.keys(Parser(args)));
  // yargs drops an empty --conf before any check sees it: refused here.
  noEmptyPaths({ conf: (Parser(args, { string: ['conf'] }) as { conf?: unknown }).conf });
  return y
    .env(ENV_PREFIX)
    .option('conf', {
      type: 'string',
      default: defaultConfPath(args, env),
      defaultDescription: `<--db>/${CONF_NAME}, else ~/.nodereg/${CONF_NAME}`,
    })
    .config('conf', 'config file of option=value lines, as bitcoin.conf (see docs/operations.md)', loadConfig)
    // yargs hands middleware its instance as a second argument, which @types/yargs omits.
    .middleware(((argv: Record<string, unknown>, yi: { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]>; boolean: string[] } }) => {
      const o = yi.getOptions();
      // yargs reads only "true" as true; bitcoin.conf users write 1 and 0.
      for (const k of o.boolean) {
        if (typed.has(k)) continue;
        const raw = env[`${ENV_PREFIX}_${k.toUpperCase().replace(/-/g, '_')}`] ?? [configRead[k]].flat().pop();
        if (raw === '1' || raw === '0') argv[k] = argv[camel(k)] = raw === '1';
      }
      const known = new Set<string>();
      for (const k of [...Object.keys(o.key), ...Object.keys(o.alias), ...Object.values(o.alias).flat()]) {
        known.add(k);
        known.add(camel(k));
      }
      for (const k of Object.keys(argv)) {
        if (k === '_' || k === '$0' || typed.has(k)) continue;
        if (!known.has(k) || k === 'wif') delete argv[k];
      }
    }) as never, true) as unknown as Argv<T>;
}

/** yargs' own failures carry a message; errors thrown while loading the file keep their kind. */
export function failureOf(msg: string | undefined, err: Error | undefined): Error {
  if (err instanceof UserError || err instanceof UsageError) return err;
  if (configFailure !== null && (msg === configFailure.message || err?.message === configFailure.message)) return configFailure;
  if (!msg) return err ?? new Error('unknown failure');
  return new UsageError(msg);
}
