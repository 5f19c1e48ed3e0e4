import { nodereg } from './helpers/cli.js';

const COMMANDS = [
  'script encode', 'script decode', 'recount', 'index', 'nodes', 'node', 'explain', 'root', 'export', 'utxo-hash',
  'verify', 'check', 'serve', 'announce', 'renew', 'broadcast', 'status', 'key new', 'key addresses',
];

describe('--help', () => {
  it.each(COMMANDS)('of "%s" exits 0 and shows at least one example', (cmd) => {
    const res = nodereg([...cmd.split(' '), '--help']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^Examples:\n\s+nodereg /m);
  });

  it('of the top level lists every command', () => {
    const res = nodereg(['--help']);
    for (const cmd of new Set(COMMANDS.map((c) => c.split(' ')[0]))) expect(res.stdout).toContain(`nodereg ${cmd}`);
  });

  it('an unknown command is a usage error with exit status 2', () => {
    const res = nodereg(['frobnicate']);
    expect(res.status).toBe(2);
    expect(res.stderr).toMatch(/Unknown argument: frobnicate/);
  });
});
