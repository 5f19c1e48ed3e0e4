import { UsageError } from './common.js';

/** Options that name a file or directory, and what they name: an empty value is always a mistake. */
const PATH_OPTIONS: Readonly<Record<string, string>> = {
  'db': 'the index directory',
  'blocks-dir': "bitcoind's blocks/ directory",
  'datadir': "the node's data directory",
  'key-dir': 'a directory',
  'params': 'a params JSON file',
  'conf': 'a config file',
  'key-file': 'a key file',
  'out': 'a file to write',
  'psbt-out': 'a file to write',
  'rpc-cookie': "the node's .cookie file",
  'webhook-secret-file': 'a file holding the secret',
  'utxos': 'a file',
};

/**
 * A yargs check for every command: `--db` typed with nothing after it, or
 * `NODEREG_DB=` set empty, would otherwise reach the command as the path ""
 * and fail far from the cause (or, for a daemon, retry forever).
 */
export function noEmptyPaths(argv: Record<string, unknown>): true {
  for (const [name, what] of Object.entries(PATH_OPTIONS)) {
    const v = argv[name];
    if (v === '' || (Array.isArray(v) && v.includes(''))) {
      throw new UsageError(`--${name} is empty: give it ${what} (check the command line, NODEREG_${name.toUpperCase().replace(/-/g, '_')} and the config file)`);
    }
  }
  return true;
}
