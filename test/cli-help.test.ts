import { nodereg, noderegIn, type CliRun } from './helpers/cli.js';

/**
 * `nodereg <args> --help`, run once per distinct command line: help depends
 * on nothing but the arguments, so the tests that read the same command's
 * help share one run of the CLI instead of starting it again. Run in-process
 * (the help text is what is tested); the top level's help is also spawned
 * below, so the binary's --help path stays covered.
 */
const helpRuns = new Map<string, CliRun>();
async function help(args: string[]): Promise<CliRun> {
  const key = JSON.stringify(args);
  let res = helpRuns.get(key);
  if (res === undefined) {
    res = await noderegIn([...args, '--help']);
    helpRuns.set(key, res);
  }
  return res;
}

const COMMANDS = [
  'script encode', 'script decode', 'recount', 'index', 'nodes', 'node', 'explain', 'root', 'export', 'utxo-hash', 'payouts',
  'verify', 'check', 'snapshot create', 'snapshot load', 'compare', 'serve', 'announce', 'renew', 'broadcast', 'status', 'key new', 'key addresses', 'proof', 'proof verify', 'diff',
];

describe('--help', () => {
  it.each(COMMANDS)('of "%s" exits 0 and shows at least one example, of that command', async (cmd) => {
    const res = await help(cmd.split(' '));
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^Examples:\n\s+nodereg /m);
    // A command's options come from its module, imported when it runs (commands/all.ts): its own examples show the right one was.
    expect(res.stdout.split(/^Examples:\n/m)[1]).toMatch(new RegExp(`^\\s+nodereg ${cmd}[ \n]`));
  });

  it('of the top level lists every command, in-process and from the binary alike', async () => {
    const res = await help([]);
    const spawned = nodereg(['--help']);
    expect(spawned.status).toBe(0);
    expect(spawned.stdout).toBe(res.stdout);
    for (const cmd of new Set(COMMANDS.map((c) => c.split(' ')[0]))) expect(res.stdout).toContain(`nodereg ${cmd}`);
  });

  it('of status documents its exit codes for cron and monitoring', async () => {
    const out = (await help(['status'])).stdout;
    expect(out).toMatch(/^ {2}0 {2}active, and not expiring within --warn-blocks$/m);
    expect(out).toMatch(/^ {2}3 {2}a warning: expires within --warn-blocks, or the stake balance is within 5% of minStake/m);
    expect(out).toMatch(/^ {2}4 {2}not live: expired, lapsed, or never registered$/m);
  });

  it('shows --datadir, --chain and --conf where they apply', async () => {
    for (const cmd of ['index', 'recount', 'verify', 'announce', 'renew', 'status']) {
      const out = (await help([cmd])).stdout;
      expect(out).toMatch(/--datadir/);
      expect(out).toMatch(/--network, --chain/);
      expect(out).toMatch(/--conf +config file of option=value lines, as bitcoin\.conf/);
    }
    for (const cmd of ['nodes', 'node x', 'explain x', 'root', 'export', 'utxo-hash', 'payouts', 'proof x', 'diff']) expect((await help(cmd.split(' '))).stdout).toMatch(/--api/);
  });

  it('an unknown command is a usage error with exit status 2', () => {
    const res = nodereg(['frobnicate']);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/Unknown argument: frobnicate/);
  });
});
