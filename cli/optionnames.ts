/**
 * Every long option name and alias that some nodereg command takes, with the
 * global ones (`conf`, `help`, `version`). The config file serves every
 * command, so a key the running command lacks is skipped; a key that no
 * command has is a misspelling, and config.ts warns about it. Kept as a list
 * here because the commands' builders run only for the command being parsed;
 * test/cli-config.test.ts walks every command and subcommand and checks that
 * this list is exactly their options.
 */
export const OPTION_NAMES: readonly string[] = [
  'access-log', 'all', 'amount', 'api', 'at', 'batch', 'blocks-dir', 'broadcast', 'cache-mib', 'chain', 'check', 'command', 'conf', 'cors',
  'datadir', 'db', 'dry-run', 'expiring-window', 'expiring-within', 'explorer-url', 'fast', 'fee-rate', 'file', 'force', 'from', 'height',
  'help', 'hex', 'input-vsize', 'json', 'key-dir', 'key-file', 'listen', 'log-json', 'log-level', 'max-outputs', 'memory-mib', 'min-payout',
  'network', 'out', 'params', 'pay-from', 'peer', 'poll-interval', 'pool', 'postgres', 'postgres-rebuild', 'prev', 'prune-undo', 'psbt',
  'psbt-out', 'redeem-script', 'reset', 'rpc', 'rpc-backoff-ms', 'rpc-cookie', 'rpc-max-response-mb', 'rpc-password', 'rpc-timeout',
  'rpc-user', 'serve', 'stake', 'stats', 'status', 'sync-retry-ms', 'threads', 'timestamp', 'to', 'tx', 'txid', 'undo-blocks', 'until-synced', 'utxo-hash',
  'utxo-memory-mib', 'utxos', 'version', 'wait', 'wait-timeout', 'warn-blocks', 'warn-within', 'webhook', 'webhook-backoff-ms',
  'webhook-retries', 'webhook-secret-file', 'weight', 'wif', 'within', 'witness-script', 'zmq',
];

/** Edit distance (insertions, deletions, substitutions), or `max + 1` once it is known to exceed `max`. */
function distance(a: string, b: string, max: number): number {
  if (Math.abs(a.length - b.length) > max) return max + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      best = Math.min(best, row[j]!);
    }
    if (best > max) return max + 1;
    prev = row;
  }
  return prev[b.length]!;
}

/** The option a misspelt `key` most likely meant (at most two edits away), or null. */
export function nearestOption(key: string): string | null {
  let found: string | null = null;
  let best = 3;
  for (const name of OPTION_NAMES) {
    const d = distance(key, name, 2);
    if (d < best) {
      best = d;
      found = name;
    }
  }
  return found;
}
