import { notStrictEqual, strictEqual } from 'node:assert';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import type { Argv } from 'yargs';
import type ParserType from 'yargs-parser';

/*
 * yargs as `import yargs from 'yargs'` gives it, built from its own factory
 * with one difference: the help renderer (cliui, and string-width, which
 * builds an Intl.Segmenter and Unicode property tables when it loads) is
 * loaded the first time help is rendered, not on every start. Those modules
 * are some 50-70 ms of CPU of a start that only prints --version or runs a
 * command. Everything else is what yargs' own ESM entry (lib/platform-shims/
 * esm.mjs) passes its factory, taken from where yargs is installed, so yargs
 * finds the same dependency versions it would itself.
 *
 * The factory is not in yargs' export map, so it is opened by path: this
 * module follows the yargs release in package-lock.json (a test runs every
 * command and --help through it).
 */

/** yargs' entry file, and a require that resolves from it (its own dependencies). */
const yargsEntry = createRequire(import.meta.url).resolve('yargs');
const fromYargs = createRequire(yargsEntry);
const load = <T>(spec: string): Promise<T> => import(pathToFileURL(fromYargs.resolve(spec)).href) as Promise<T>;

type Factory = (shim: unknown) => (argv?: string[], cwd?: string) => Argv;

const [{ YargsFactory }, { default: Parser }, { default: y18n }, { default: escalade }, { default: getCallerFile }, { getProcessArgvBin, hideBin: yargsHideBin }] =
  await Promise.all([
    load<{ YargsFactory: Factory }>('./build/lib/yargs-factory.js'),
    load<{ default: typeof ParserType }>('yargs-parser'),
    load<{ default: (opts: { directory: string; updateFiles: boolean }) => unknown }>('y18n'),
    load<{ default: (dir: string, cb: (dir: string, names: string[]) => string | false | undefined) => string | undefined }>('escalade/sync'),
    load<{ default: (position?: number) => string }>('get-caller-file'),
    load<{ getProcessArgvBin: () => string; hideBin: (argv: string[]) => string[] }>('./build/lib/utils/process-argv.js'),
  ]);

/** The help renderer's modules, loaded on first use (require of an ES module, resolved from yargs). */
let cliuiFn: ((opts: unknown) => unknown) | undefined;
let stringWidthFn: ((s: string) => number) | undefined;

const shimDir = fileURLToPath(new URL('./lib/platform-shims/esm.mjs', pathToFileURL(yargsEntry)));
const mainFilename = shimDir.substring(0, shimDir.lastIndexOf('node_modules'));

const shim = {
  assert: { notStrictEqual, strictEqual },
  cliui: (opts: unknown) => (cliuiFn ??= fromYargs('cliui') as (opts: unknown) => unknown)(opts),
  findUp: escalade,
  getEnv: (key: string) => process.env[key],
  inspect,
  getProcessArgvBin,
  mainFilename: mainFilename || process.cwd(),
  Parser,
  path: { basename, dirname, extname, relative, resolve, join },
  process: {
    argv: () => process.argv,
    cwd: process.cwd,
    emitWarning: (warning: string, type?: string) => process.emitWarning(warning, type),
    execPath: () => process.execPath,
    exit: (code: number) => {
      process.exit(code);
    },
    nextTick: process.nextTick,
    stdColumns: typeof process.stdout.columns !== 'undefined' ? process.stdout.columns : null,
  },
  readFileSync,
  readdirSync,
  require: fromYargs,
  getCallerFile: () => {
    const callerFile = getCallerFile(3);
    return callerFile.match(/^file:\/\//) ? fileURLToPath(callerFile) : callerFile;
  },
  stringWidth: (s: string) => (stringWidthFn ??= (fromYargs('string-width') as { default: (s: string) => number }).default)(s),
  y18n: y18n({ directory: resolve(shimDir, '../../../locales'), updateFiles: false }),
};

/** `yargs(argv)`, as from 'yargs'. */
const yargs = YargsFactory(shim);
export default yargs;

/** The command line after the node binary and the script, as from 'yargs/helpers'. */
export const hideBin: (argv: string[]) => string[] = yargsHideBin;

/** yargs' own argument parser, as from 'yargs/helpers'. */
export { Parser };
