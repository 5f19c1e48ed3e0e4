import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Level } from 'level';
import { fixturePath } from './helpers/blocksdir.js';
import { nodereg, noderegIn } from './helpers/cli.js';

const BLOCKS = fixturePath('core-regtest/blocks');
const STAKE = 'bcrt1ql6qa2kpfxc0nmjsfhxsy92p0wgssw4yr2k8cfc';
const NEWNODE_TXID = '6dc176c7006cd8590131206e6e897e03d43120b95f2654662c711c51c2639831';
const REJECTED_TXID = 'fbeedf45edb117806839ae53614f8c3574ec04421e474abc52996791c5eb72c3';

let dir: string;
let db: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-q-'));
  db = join(dir, 'db');
  const res = nodereg(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', db]);
  expect(res.status).toBe(0);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Queries run in-process (what they print is tested); the index built above and the index held by another process spawn the binary.
const json = async <T>(args: string[]): Promise<T> => {
  const res = await noderegIn(args);
  expect(res.stderr).toBe('');
  expect(res.status).toBe(0);
  return JSON.parse(res.stdout) as T;
};

describe('queries on a kept index', () => {
  it('export equals the recount JSON of the same chain', async () => {
    const recount = await json(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--json']);
    expect(await json(['export', '--db', db])).toEqual(recount);
  });

  it('export --height answers as of a past height', async () => {
    const past = await json<{ height: number; nodes: Array<{ renewals: number; tipHeight: number }>; rejected: unknown[] }>(['export', '--db', db, '--height', '113']);
    expect(past.height).toBe(113);
    expect(past.nodes).toHaveLength(1);
    expect(past.nodes[0]).toMatchObject({ renewals: 0, tipHeight: 113 });
    expect(past.rejected).toEqual([]);
    expect((await json<{ nodes: unknown[] }>(['export', '--db', db, '--height', '112'])).nodes).toEqual([]);
  });

  it('nodes lists active registrations, and --at shows the registry before the first announcement as empty', async () => {
    expect((await json<{ nodes: Array<{ address: string }> }>(['nodes', '--db', db, '--json'])).nodes.map((n) => n.address)).toEqual([STAKE]);
    expect((await json<{ nodes: unknown[] }>(['nodes', '--db', db, '--at', '100', '--status', 'all', '--json'])).nodes).toEqual([]);
    expect((await json<{ nodes: unknown[] }>(['nodes', '--db', db, '--status', 'expired', '--json'])).nodes).toEqual([]);
  });

  it('node shows the registration, its history, age and blocks until expiry', async () => {
    const n = await json<{ registration: { age: number; renewals: number; blocksUntilExpiry: number }; history: Array<{ event: string; height: number }> }>(['node', STAKE, '--db', db, '--json']);
    expect(n.registration).toMatchObject({ age: 3, renewals: 1, blocksUntilExpiry: 258 - 116 });
    expect(n.history.map((e) => [e.event, e.height])).toEqual([['registered', 113], ['renewed', 114]]);
    const plain = await noderegIn(['node', STAKE, '--db', db]);
    expect(plain.stdout).toMatch(/status\s+active, expires at 258 \(in 142 blocks\)/);
  });

  it('nodes --expiring-within lists the active nodes expiring within that many blocks, with their forecasts', async () => {
    const within = async (n: number): Promise<Array<{ address: string; blocksUntilExpiry: number; renewBy: number }>> =>
      (await json<{ nodes: Array<{ address: string; blocksUntilExpiry: number; renewBy: number }> }>(['nodes', '--db', db, '--expiring-within', String(n), '--json'])).nodes;
    expect(await within(141)).toEqual([]);
    expect(await within(142)).toEqual([expect.objectContaining({ address: STAKE, blocksUntilExpiry: 142, renewBy: 257 })]);
    expect((await noderegIn(['node', STAKE, '--db', db])).stdout).toMatch(/^renew by   height 257 \(expires about \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\)$/m);
  });

  it('payouts prints the table, its total and its payoutsHash', async () => {
    const res = await noderegIn(['payouts', '--db', db, '--from', '113', '--to', '116', '--amount', '1000']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(new RegExp(`^1  ${STAKE}  4 +1000 +0\\.00001$`, 'm'));
    expect(res.stdout).toMatch(/^total {7}1000 base units to 1 recipient\(s\)\npayoutsHash [0-9a-f]{64}$/m);
  });

  it('explain says accepted, rejected with the reason, or that a transaction has no announcement (exit 1)', async () => {
    expect((await noderegIn(['explain', NEWNODE_TXID, '--db', db])).stdout).toMatch(/OP_NEWNODE accepted at height 113/);
    expect((await noderegIn(['explain', REJECTED_TXID, '--db', db])).stdout).toMatch(/rejected at height 115: TIMESTAMP_IN_FUTURE/);
    const none = await noderegIn(['explain', '00'.repeat(32), '--db', db, '--json']);
    expect(none.status).toBe(1);
    expect((JSON.parse(none.stdout) as { announcements: unknown[] }).announcements).toEqual([]);
    const plain = await noderegIn(['explain', '00'.repeat(32), '--db', db]);
    expect(plain.status).toBe(1);
    expect(plain.stderr).toMatch(/^nodereg: 0{64}: no announcement attempt from this transaction is in the index/);
  });

  it('root --height prints the stored root, equal to the export\'s', async () => {
    const ex = await json<{ root: string }>(['export', '--db', db, '--height', '114']);
    expect((await noderegIn(['root', '--db', db, '--height', '114'])).stdout).toBe(`registry root  ${ex.root}\nproof root     ${JSON.parse((await noderegIn(['root', '--db', db, '--height', '114', '--json'])).stdout).proofRoot}\n`);
  });
});

describe('bad input to queries', () => {
  const fails = async (args: string[], status: number, message: RegExp, run = noderegIn): Promise<void> => {
    const res = await run(args);
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status, stderr: expect.stringMatching(message) });
    expect(res.stderr).not.toMatch(/\n\s+at /);
  };

  it('a malformed or wrong-network stake, a bad txid and a bad height are usage errors', async () => {
    await fails(['node', 'nonsense', '--db', db], 2, /not a valid address/);
    await fails(['node', 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', '--db', db], 2, /another network|not an address of regtest/);
    await fails(['explain', 'xyz', '--db', db], 2, /must be hex/);
    await fails(['explain', 'abcd', '--db', db], 2, /64 hex digits/);
    await fails(['root', '--db', db, '--height', '-1'], 2, /whole number/);
    await fails(['nodes', '--db', db, '--status', 'sleeping'], 2, /Invalid values|Choices/);
    await fails(['nodes', '--db', db, '--bogus'], 2, /Unknown argument/);
  });

  it('a height above the tip is a clear error', async () => {
    await fails(['export', '--db', db, '--height', '500'], 1, /above the index tip 116/);
    await fails(['payouts', '--db', db, '--from', '100', '--to', '500', '--amount', '1000'], 1, /^nodereg: to 500 is above the index tip 116\n$/);
  });

  it('payouts refuses a reversed window, a non-positive or fractional amount, an unknown weight and a bad min-payout as usage errors', async () => {
    const base = ['payouts', '--db', db, '--from', '100', '--to', '110'];
    await fails(['payouts', '--db', db, '--from', '110', '--to', '100', '--amount', '1000'], 2, /^nodereg: --from 110 is above --to 100/);
    for (const amount of ['0', '-5', '1.5', '1e9', 'ten']) await fails([...base, '--amount', amount], 2, /^nodereg: --amount must be a whole number of base units above 0/);
    await fails([...base, '--amount', '1000', '--weight', 'height'], 2, /Invalid values|Choices/);
    await fails([...base, '--amount', '1000', '--min-payout', '-1'], 2, /^nodereg: --min-payout must be a whole number/);
    await fails([...base], 2, /Missing required argument: amount/);
    await fails([...base, '--amount', '1000', '--from', '1.5'], 2, /--from must be a whole height/);
  });

  it('a missing index, a non-LevelDB directory and a foreign LevelDB are refused with the remedy', async () => {
    await fails(['nodes', '--db', join(dir, 'nope')], 1, /no index at .*recount/);
    const junk = join(dir, 'junk');
    mkdirSync(junk);
    writeFileSync(join(junk, 'file.txt'), 'hello');
    await fails(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', junk], 1, /not a LevelDB database/);
    const foreign = join(dir, 'foreign');
    const other = new Level(foreign);
    await other.put('hello', 'world');
    await other.close();
    await fails(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', foreign], 1, /not a nodereg index/);
  });

  it('an index built for other params is refused, naming the flag to pass', async () => {
    await fails(['nodes', '--db', db, '--network', 'mainnet'], 1, /built for network "regtest".*--network\/--params/);
    await fails(['recount', '--network', 'testnet', '--blocks-dir', BLOCKS, '--db', db], 1, /built for network "regtest"/);
  });

  it('an index held open by another process is refused without a stack trace', async () => {
    const held = new Level(db);
    await held.open();
    try {
      await fails(['nodes', '--db', db], 1, /in use by another process/, async (args) => nodereg(args));
      await fails(['recount', '--network', 'regtest', '--blocks-dir', BLOCKS, '--db', db], 1, /in use by another process/, async (args) => nodereg(args));
    } finally {
      await held.close();
    }
  });

  it('a blocks directory with no blocks of the network, or a missing one, says so', async () => {
    await fails(['recount', '--network', 'mainnet', '--blocks-dir', BLOCKS], 1, /./);
    await fails(['recount', '--network', 'regtest', '--blocks-dir', join(dir, 'missing')], 1, /./);
  });
});
