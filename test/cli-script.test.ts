import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { noderegIn, type CliRun } from './helpers/cli.js';

// Runs the built CLI (`npm test` builds dist/ first): in-process (see noderegIn), and spawned once as a smoke test.
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BCOIN_PARAMS = join(ROOT, 'fixtures/params/bcoin-regtest.json');

function spawned(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(ROOT, 'dist/cli/main.js'), ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const nodereg = (...args: string[]): Promise<CliRun> => noderegIn(args);

interface Row { description: string; hex: string }
const carriers = JSON.parse(readFileSync(join(ROOT, 'fixtures/script/carrier.json'), 'utf8')) as {
  valid: Array<Row & { expected: { kind: string; stakeScript: string; timestamp: number; prevTxid: string | null } }>;
  invalid: Array<Row & { reason: string }>;
};
const row = (description: string) => carriers.valid.find((r) => r.description === description)!;

const P2WPKH_NEWNODE = row('OP_NEWNODE for a P2WPKH stake');
const P2TR_RENEWAL = row('OP_RENEWAL for a P2TR stake');
const OFF_CURVE = row('OP_NEWNODE for a P2TR key that is not on the curve (x = 5) still decodes');
const REGTEST_P2WPKH = 'bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080';
const MAINNET_P2TR = 'bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr';
const BCOIN_P2WPKH = 'rb1qw508d6qejxtdg4y5r3zarvary0c5xw7k38f4sn';
const BODY_OF = (carrier: string) => carrier.slice(14); // after 6a, 04 4e524547 and the 1-byte push length

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'nodereg-cli-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

describe('nodereg script encode', () => {
  test('prints the carrier hex of an OP_NEWNODE (the spawned binary)', () => {
    const r = spawned('script', 'encode', '--network', 'regtest', '--stake', REGTEST_P2WPKH, '--timestamp', '1700000000');
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toBe(P2WPKH_NEWNODE.hex + '\n');
  });

  test('prints carrier, body and asm with --json', async () => {
    const r = await nodereg('script', 'encode', '--network', 'regtest', '--stake', REGTEST_P2WPKH, '--timestamp', '1700000000', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      carrier: P2WPKH_NEWNODE.hex,
      body: BODY_OF(P2WPKH_NEWNODE.hex),
      asm: `OP_RETURN 4e524547 ${BODY_OF(P2WPKH_NEWNODE.hex)}`,
    });
  });

  test('encodes an OP_RENEWAL when --prev gives the previous txid in RPC hex', async () => {
    const { expected } = P2TR_RENEWAL;
    const r = await nodereg('script', 'encode', '--network', 'mainnet', '--stake', MAINNET_P2TR,
      '--timestamp', String(expected.timestamp), '--prev', expected.prevTxid!);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(P2TR_RENEWAL.hex + '\n');
  });

  test('accepts the stake as an output script in hex', async () => {
    const r = await nodereg('script', 'encode', '--stake', P2WPKH_NEWNODE.expected.stakeScript, '--timestamp', '1700000000');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(P2WPKH_NEWNODE.hex);
  });

  test('accepts a bcoin-regtest address with --params', async () => {
    const r = await nodereg('script', 'encode', '--params', BCOIN_PARAMS, '--stake', BCOIN_P2WPKH, '--timestamp', '1700000000');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(P2WPKH_NEWNODE.hex);
  });

  test('--help shows an example', async () => {
    const r = await nodereg('script', 'encode', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('nodereg script encode --network regtest --stake');
  });
});

describe('nodereg script decode', () => {
  test('prints a valid OP_NEWNODE with its address and timestamp', async () => {
    const r = await nodereg('script', 'decode', '--network', 'regtest', P2WPKH_NEWNODE.hex);
    expect(r).toMatchObject({ status: 0, stderr: '' });
    expect(r.stdout).toContain('OP_NEWNODE');
    expect(r.stdout).toContain(REGTEST_P2WPKH);
    expect(r.stdout).toContain('1700000000 (2023-11-14T22:13:20.000Z)');
  });

  test('prints an OP_NEWNODE as JSON with --json', async () => {
    const r = await nodereg('script', 'decode', '--network', 'regtest', '--json', P2WPKH_NEWNODE.hex);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({
      ok: true,
      kind: 'newnode',
      stakeScript: P2WPKH_NEWNODE.expected.stakeScript,
      address: REGTEST_P2WPKH,
      timestamp: 1700000000,
      prevTxid: null,
    });
  });

  test('prints an OP_RENEWAL\'s prevTxid in RPC hex with --json', async () => {
    const r = await nodereg('script', 'decode', '--network', 'mainnet', '--json', P2TR_RENEWAL.hex);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, address: MAINNET_P2TR, ...P2TR_RENEWAL.expected });
  });

  test('prints the RPC-order prevTxid in plain output too', async () => {
    const r = await nodereg('script', 'decode', '--network', 'mainnet', P2TR_RENEWAL.hex);
    expect(r.stdout).toContain('OP_RENEWAL');
    expect(r.stdout).toContain(P2TR_RENEWAL.expected.prevTxid!);
  });

  test('decodes a bare BODY', async () => {
    const r = await nodereg('script', 'decode', '--network', 'regtest', '--json', BODY_OF(P2WPKH_NEWNODE.hex));
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, kind: 'newnode', address: REGTEST_P2WPKH });
  });

  test('renders the address of a P2TR key that is not on the curve', async () => {
    const r = await nodereg('script', 'decode', '--network', 'mainnet', '--json', OFF_CURVE.hex);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout).address).toBe('bc1pqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqzs2jkusy');
  });

  test('renders bcoin-regtest addresses with --params', async () => {
    const r = await nodereg('script', 'decode', '--params', BCOIN_PARAMS, '--json', P2WPKH_NEWNODE.hex);
    expect(JSON.parse(r.stdout).address).toBe(BCOIN_P2WPKH);
  });

  test.each(['MALFORMED_CARRIER', 'BODY_TOO_LARGE', 'NON_MINIMAL_PUSH', 'UNKNOWN_OPCODE', 'STACK_MISMATCH',
    'BAD_STAKE_SCRIPT', 'BAD_TIMESTAMP', 'BAD_PREVIOUS'])('reports a %s carrier as {ok:false} and exits 0', async (reason) => {
    const flawed = carriers.invalid.find((r) => r.reason === reason)!;
    const r = await nodereg('script', 'decode', '--json', flawed.hex);
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ ok: false, reason });
  });

  test('explains a flawed announcement in plain output and exits 0', async () => {
    const flawed = carriers.invalid.find((r) => r.reason === 'BAD_TIMESTAMP')!;
    const r = await nodereg('script', 'decode', flawed.hex);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^flawed announcement: BAD_TIMESTAMP \(.+\)\n$/);
  });

  test('--help shows an example', async () => {
    const r = await nodereg('script', 'decode', '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Examples:');
    expect(r.stdout).toContain('nodereg script decode 6a044e524547');
  });
});

describe('usage errors exit 2 with a one-line message', () => {
  const expectUsageError = (r: CliRun, pattern: RegExp) => {
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const [first, ...rest] = r.stderr.trimEnd().split('\n');
    expect(first).toMatch(/^nodereg: /);
    expect(first).toMatch(pattern);
    expect(rest.join('\n')).toMatch(/^(Run with --help for usage and examples\.)?$/);
  };

  test('bad hex', async () => {
    expectUsageError(await nodereg('script', 'decode', 'zz'), /must be hex/);
    expectUsageError(await nodereg('script', 'decode', '6a0'), /must be hex/);
  });

  test('a string shaped like a private key is never echoed, as --stake, as the script to decode or as --prev', async () => {
    const wif = 'cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy';
    const runs = [
      await nodereg('script', 'encode', '--network', 'regtest', '--stake', wif, '--timestamp', '1700000000'),
      await nodereg('script', 'decode', wif),
      await nodereg('script', 'encode', '--network', 'regtest', '--stake', REGTEST_P2WPKH, '--timestamp', '1700000000', '--prev', wif),
    ];
    for (const r of runs) {
      expectUsageError(r, /looks like a private key/);
      expect(r.stderr).not.toContain(wif.slice(5, -5));
    }
  });

  test('a stake that is not an address', async () => {
    expectUsageError(await nodereg('script', 'encode', '--stake', 'nonsense', '--timestamp', '1700000000'), /--stake: .*not a valid address/);
  });

  test('an address of another network', async () => {
    expectUsageError(
      await nodereg('script', 'encode', '--network', 'mainnet', '--stake', REGTEST_P2WPKH, '--timestamp', '1700000000'),
      /--stake: .*--network\/--params/,
    );
  });

  test('missing --stake', async () => {
    expectUsageError(await nodereg('script', 'encode', '--timestamp', '1700000000'), /stake/);
  });

  test('a timestamp out of range', async () => {
    expectUsageError(await nodereg('script', 'encode', '--stake', REGTEST_P2WPKH, '--network', 'regtest', '--timestamp', '0'), /--timestamp/);
    expectUsageError(await nodereg('script', 'encode', '--stake', REGTEST_P2WPKH, '--network', 'regtest', '--timestamp', 'soon'), /--timestamp/);
  });

  test('a --prev that is not 32 bytes', async () => {
    expectUsageError(
      await nodereg('script', 'encode', '--network', 'regtest', '--stake', REGTEST_P2WPKH, '--timestamp', '1700000000', '--prev', 'ab'.repeat(31)),
      /--prev must be a 32-byte txid/,
    );
  });

  test('an unknown flag', async () => {
    expectUsageError(await nodereg('script', 'decode', P2WPKH_NEWNODE.hex, '--frobnicate'), /Unknown argument: frobnicate/);
  });

  test('an unknown network', async () => {
    expectUsageError(await nodereg('script', 'decode', '--network', 'mainet', P2WPKH_NEWNODE.hex), /unknown network "mainet"/);
  });

  test('a --params file that does not exist', async () => {
    expectUsageError(await nodereg('script', 'decode', '--params', join(dir, 'nope.json'), P2WPKH_NEWNODE.hex), /cannot read params file/);
  });

  test('a --params file that is not JSON', async () => {
    const path = join(dir, 'broken.json');
    writeFileSync(path, '{');
    expectUsageError(await nodereg('script', 'decode', '--params', path, P2WPKH_NEWNODE.hex), /not valid JSON/);
  });

  test('a --params file with a bad field', async () => {
    const path = join(dir, 'bad-field.json');
    const good = JSON.parse(readFileSync(BCOIN_PARAMS, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...good, magic: 'xyz' }));
    expectUsageError(await nodereg('script', 'decode', '--params', path, P2WPKH_NEWNODE.hex), /field "magic"/);
  });

  test('a missing action', async () => {
    expectUsageError(await nodereg('script'), /choose an action: encode or decode/);
  });

  test('an unknown action', async () => {
    expectUsageError(await nodereg('script', 'frob'), /Unknown argument: frob/);
  });
});
