import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yargs from 'yargs';
import { COMMANDS } from '../cli/commands/all.js';
import { configLines, parseConfig, unknownKeyWarnings } from '../cli/config.js';
import { nearestOption, OPTION_NAMES } from '../cli/optionnames.js';
import { resolveBlocksDir, resolveRpc } from '../cli/datadir.js';
import { BUILTIN_NETWORKS, loadParamsFile } from '../script/params.js';
import { startBcoin, type BcoinNode } from './helpers/bcoin.js';
import { nodereg, noderegAsync, noderegIn, ROOT, type CliRun } from './helpers/cli.js';

/*
 * Configuration the way bitcoind users expect: --datadir with --chain,
 * NODEREG_* environment variables, and a nodereg.conf file. Every run gets
 * its own HOME, so nothing of the machine's ~/.bitcoin or ~/.nodereg leaks in.
 */

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const BCOIN_PARAMS = loadParamsFile(join(ROOT, 'fixtures', 'params', 'bcoin-regtest.json'));

let dir: string;
let home: string;
let datadir: string;
const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ HOME: home, ...extra });
/** In-process (see noderegIn): HOME and the variables are set on process.env for the run. The NODEREG_<OPTION> test spawns the binary. */
const run = (args: string[], extra: NodeJS.ProcessEnv = {}): Promise<CliRun> => noderegIn(args, { env: env(extra) });
const spawned = (args: string[], extra: NodeJS.ProcessEnv = {}): CliRun => nodereg(args, { env: env(extra) });

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-conf-'));
  home = join(dir, 'home');
  datadir = join(dir, 'bitcoin');
  mkdirSync(home);
  mkdirSync(join(datadir, 'regtest'), { recursive: true });
  cpSync(DEMO, join(datadir, 'regtest', 'blocks'), { recursive: true });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('--datadir and --chain find the node as bitcoin-cli does', () => {
  const saved = process.env.HOME;
  let fakeHome: string;
  beforeEach(() => {
    fakeHome = mkdtempSync(join(tmpdir(), 'nodereg-home-'));
    process.env.HOME = fakeHome;
  });
  afterEach(() => {
    process.env.HOME = saved;
    rmSync(fakeHome, { recursive: true, force: true });
  });

  it('defaults --rpc to the network\'s standard port and --blocks-dir to its blocks/ under ~/.bitcoin', () => {
    const expected: Array<[string, number, string]> = [
      ['mainnet', 8332, ''], ['testnet', 18332, 'testnet3'], ['testnet4', 48332, 'testnet4'], ['signet', 38332, 'signet'], ['regtest', 18443, 'regtest'],
    ];
    for (const [name, port, sub] of expected) {
      const params = BUILTIN_NETWORKS[name]!;
      expect(resolveRpc({}, params).url).toBe(`http://127.0.0.1:${port}`);
      expect(resolveBlocksDir({}, params)).toBe(join(fakeHome, '.bitcoin', sub, 'blocks'));
      expect(resolveBlocksDir({ datadir: '/srv/btc' }, params)).toBe(join('/srv/btc', sub, 'blocks'));
    }
  });

  it('takes the network\'s .cookie: always under an explicit --datadir, under ~/.bitcoin only when it exists', () => {
    const regtest = BUILTIN_NETWORKS.regtest!;
    expect(resolveRpc({}, regtest).cookieFile).toBeUndefined();
    mkdirSync(join(fakeHome, '.bitcoin', 'regtest'), { recursive: true });
    writeFileSync(join(fakeHome, '.bitcoin', 'regtest', '.cookie'), '__cookie__:abc');
    expect(resolveRpc({}, regtest).cookieFile).toBe(join(fakeHome, '.bitcoin', 'regtest', '.cookie'));
    expect(resolveRpc({}, BUILTIN_NETWORKS.mainnet!).cookieFile).toBeUndefined();
    expect(resolveRpc({ datadir: '/srv/btc' }, BUILTIN_NETWORKS.mainnet!).cookieFile).toBe('/srv/btc/.cookie');
    expect(resolveRpc({ datadir: '/srv/btc' }, BUILTIN_NETWORKS.signet!).cookieFile).toBe('/srv/btc/signet/.cookie');
  });

  it('lets --rpc, --rpc-cookie and --rpc-user (or credentials in the URL) override', () => {
    const regtest = BUILTIN_NETWORKS.regtest!;
    const dd = { datadir: '/srv/btc' };
    expect(resolveRpc({ ...dd, rpc: 'http://10.0.0.2:9999' }, regtest)).toEqual({ url: 'http://10.0.0.2:9999', cookieFile: '/srv/btc/regtest/.cookie' });
    expect(resolveRpc({ ...dd, rpcCookie: '/tmp/c' }, regtest).cookieFile).toBe('/tmp/c');
    expect(resolveRpc({ ...dd, rpcUser: 'u', rpcPassword: 'p' }, regtest)).toEqual({ url: 'http://127.0.0.1:18443', user: 'u', password: 'p' });
    expect(resolveRpc({ ...dd, rpc: 'http://u:p@127.0.0.1:1' }, regtest).cookieFile).toBeUndefined();
  });

  it('asks for --rpc and --blocks-dir on a chain described by --params, which has no standard place', () => {
    expect(() => resolveRpc({}, BCOIN_PARAMS)).toThrow(/give --rpc <url>: the chain "bcoin-regtest" of --params has no standard RPC port/);
    expect(() => resolveBlocksDir({}, BCOIN_PARAMS)).toThrow(/give --blocks-dir <dir>/);
    expect(resolveRpc({ rpc: 'http://127.0.0.1:1' }, BCOIN_PARAMS).url).toBe('http://127.0.0.1:1');
  });
});

describe('the command line, NODEREG_* variables and nodereg.conf', () => {
  let expected: string;
  beforeAll(async () => {
    const res = await run(['recount', '--network', 'regtest', '--blocks-dir', join(datadir, 'regtest', 'blocks'), '--json']);
    expect(res.status).toBe(0);
    expected = res.stdout;
  });

  it('recount --chain regtest --datadir reads <datadir>/regtest/blocks; main and test are bitcoind\'s names', async () => {
    expect((await run(['recount', '--chain', 'regtest', '--datadir', datadir, '--json'])).stdout).toBe(expected);
    const main = await run(['recount', '--chain', 'main', '--datadir', datadir]);
    expect(main.status).toBe(1);
    expect(main.stderr).toContain(join(datadir, 'blocks'));
    expect((await run(['recount', '--chain', 'test', '--datadir', datadir])).stderr).toContain(join(datadir, 'testnet3', 'blocks'));
    expect((await run(['recount', '--chain', 'moon', '--datadir', datadir])).stderr).toMatch(/unknown network "moon"/);
  });

  it('takes every option from NODEREG_<OPTION>, and the command line wins (the spawned binary)', () => {
    expect(spawned(['recount', '--json'], { NODEREG_CHAIN: 'regtest', NODEREG_DATADIR: datadir }).stdout).toBe(expected);
    expect(spawned(['recount', '--chain', 'regtest', '--json'], { NODEREG_CHAIN: 'mainnet', NODEREG_DATADIR: datadir }).stdout).toBe(expected);
    const db = join(dir, 'env-db');
    expect(spawned(['recount', '--chain', 'regtest', '--datadir', datadir], { NODEREG_DB: db }).status).toBe(0);
    expect(spawned(['root', '--json'], { NODEREG_DB: db }).stdout).toMatch(/"height": 450/);
  });

  it('reads booleans as true/false, or as 1/0 the way bitcoin.conf writes them', async () => {
    const dd = ['recount', '--chain', 'regtest', '--datadir', datadir];
    expect((await run(dd, { NODEREG_JSON: '1' })).stdout).toBe(expected);
    expect((await run(dd, { NODEREG_JSON: 'true' })).stdout).toBe(expected);
    expect((await run(dd, { NODEREG_JSON: '0' })).stdout).toMatch(/^network\s+regtest$/m);
    const conf = join(dir, 'bool.conf');
    writeFileSync(conf, 'json=1\n');
    expect((await run([...dd, '--conf', conf])).stdout).toBe(expected);
    expect((await run([...dd, '--conf', conf], { NODEREG_JSON: 'false' })).stdout).toMatch(/^network\s+regtest$/m);
  });

  it('ignores NODEREG_ variables of options a command does not have, but not an unknown flag on the command line', async () => {
    const res = await run(['script', 'decode', '00', '--json'], { NODEREG_DATADIR: datadir, NODEREG_WIF: 'cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy', NODEREG_NO_SUCH_OPTION: '1' });
    expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
    expect((await run(['script', 'decode', '00', '--no-such-option', '1'])).status).toBe(2);
  });

  it('reads ~/.nodereg/nodereg.conf, or <--db>/nodereg.conf before it, or --conf; the environment wins over the file', async () => {
    const conf = join(home, '.nodereg', 'nodereg.conf');
    mkdirSync(join(home, '.nodereg'), { recursive: true });
    writeFileSync(conf, `# like bitcoin.conf\nchain = regtest\ndatadir=${datadir}   # where bitcoind keeps its files\n\n`);
    try {
      expect((await run(['recount', '--json'])).stdout).toBe(expected);
      expect((await run(['recount', '--json'], { NODEREG_CHAIN: 'signet' })).stderr).toContain(join(datadir, 'signet', 'blocks'));
      // An index's own nodereg.conf comes before ~/.nodereg's (env-db was built by the test above).
      const db = join(dir, 'env-db');
      expect((await run(['nodes', '--db', db])).status).toBe(0);
      writeFileSync(join(db, 'nodereg.conf'), 'chain=mainnet\n');
      expect((await run(['nodes', '--db', db])).stderr).toMatch(/built for network "regtest"/);
      rmSync(join(db, 'nodereg.conf'));
      const other = join(dir, 'other.conf');
      writeFileSync(other, `chain=signet\ndatadir=${datadir}\n`);
      expect((await run(['recount', '--conf', other])).stderr).toContain(join(datadir, 'signet', 'blocks'));
      expect((await run(['recount', '--json'], { NODEREG_CONF: other })).stderr).toContain(join(datadir, 'signet', 'blocks'));
      // One file serves every command: keys a command does not take are ignored.
      expect((await run(['script', 'decode', '00'])).status).toBe(0);
    } finally {
      rmSync(conf);
    }
  });

  it('refuses a missing --conf, a line that is not option=value, and a private key in the file, in one line with exit 1', async () => {
    const oneLine = (res: CliRun, pattern: RegExp): void => {
      expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 1, stderr: expect.stringMatching(pattern) });
      expect(res.stderr.trimEnd().split('\n')).toHaveLength(1);
    };
    oneLine(await run(['recount', '--conf', join(dir, 'missing.conf')]), /^nodereg: cannot read the config file \S+missing\.conf \(ENOENT\): check --conf/);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, 'chain=regtest\nthis is not an option\n');
    oneLine(await run(['recount', '--conf', bad]), /^nodereg: \S+bad\.conf line 2: expected option=value/);
    const wif = 'cVt4o7BGAig1UXywgGSmARhxMdzP5qvQsxKkSsc1XEkw3tDTQFpy';
    writeFileSync(bad, `wif=${wif}\n`);
    const res = await run(['status', '--stake', 'x', '--db', dir, '--conf', bad]);
    oneLine(res, /line 1: a private key never goes in the config file; use key-file=<file>/);
    expect(res.stderr).not.toContain(wif);
  });

  it('refuses an empty path, from the command line, a variable or the file, as a usage error naming the option (exit 2)', async () => {
    const empty = (res: CliRun, option: string): void => {
      expect({ status: res.status, stderr: res.stderr.split('\n')[0] })
        .toEqual({ status: 2, stderr: expect.stringMatching(new RegExp(`^nodereg: --${option} is empty: give it .+ \\(check the command line, NODEREG_\\w+ and the config file\\)$`)) });
    };
    // Each of these used to reach the command as the path "": an internal error, "no index at ;", a daemon retrying a cookie "".
    empty(await run(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db']), 'db');
    empty(await run(['nodes', '--db']), 'db');
    empty(await run(['recount', '--network', 'regtest', '--blocks-dir']), 'blocks-dir');
    empty(await run(['recount', '--datadir']), 'datadir');
    empty(await run(['recount', '--params', '--blocks-dir', DEMO]), 'params');
    empty(await run(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--conf']), 'conf');
    empty(await run(['index', '--db', join(dir, 'never'), '--rpc-cookie']), 'rpc-cookie');
    empty(await run(['nodes'], { NODEREG_DB: '' }), 'db');
    const conf = join(dir, 'empty-db.conf');
    writeFileSync(conf, 'db=\n');
    empty(await run(['nodes', '--conf', conf]), 'db');
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('refuses an --sync-retry-ms of index that is not a whole number of milliseconds ≥ 1, as a usage error (exit 2), before touching --db', async () => {
    for (const bad of ['0', '-5', '1.5', 'soon']) {
      const res = await run(['index', '--network', 'regtest', '--rpc', 'http://127.0.0.1:1', '--db', join(dir, 'never'), '--sync-retry-ms', bad]);
      expect({ status: res.status, first: res.stderr.split('\n').find((l) => l.includes('sync-retry-ms')) })
        .toEqual({ status: 2, first: 'nodereg: --sync-retry-ms must be a whole number of milliseconds ≥ 1' });
    }
    expect(existsSync(join(dir, 'never'))).toBe(false);
  });

  it('parses the bitcoin.conf-like format: comments, spaces around "=", repeated keys as lists', async () => {
    expect(parseConfig('# c\n cors = http://a \ncors=http://b\nrpc-user=u # trailing\nrpc-password=p#q\n', 'f')).toEqual({
      cors: ['http://a', 'http://b'], 'rpc-user': 'u', 'rpc-password': 'p#q',
    });
  });
});

describe('config file keys that no command takes', () => {
  /** Every option name and alias of every command and subcommand, found by letting yargs build each one. */
  async function everyOption(): Promise<Set<string>> {
    const names = new Set<string>(['conf']);
    class Built extends Error {}
    const visit = async (path: string[]): Promise<string[]> => {
      let subcommands: string[] = [];
      const y = yargs(path).exitProcess(false).fail(() => undefined).help().version().command([...COMMANDS]);
      y.middleware(((_argv: unknown, yi: { getOptions(): { key: Record<string, unknown>; alias: Record<string, string[]> }; getInternalMethods(): { getCommandInstance(): { getCommands(): string[] } } }) => {
        const o = yi.getOptions();
        for (const k of Object.keys(o.key)) names.add(k);
        for (const [k, v] of Object.entries(o.alias)) [k, ...v].forEach((n) => names.add(n));
        subcommands = yi.getInternalMethods().getCommandInstance().getCommands();
        throw new Built();
      }) as never, true);
      try {
        await y.parseAsync();
      } catch (err) {
        if (!(err instanceof Built)) throw err;
      }
      return subcommands;
    };
    const top = await visit([]);
    expect(top.length).toBeGreaterThan(15);
    const queue = top.map((c) => [c]);
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
      for (const sub of await visit(path)) if (!top.includes(sub)) queue.push([...path, sub]);
    }
    return names;
  }

  it('knows exactly the options the commands define (cli/optionnames.ts)', async () => {
    const found = await everyOption();
    // Options only a subcommand has (snapshot load, key create, proof verify) are reached too.
    expect(found.has('key-dir')).toBe(true);
    expect([...found].sort()).toEqual([...OPTION_NAMES].sort());
  });

  it('warns once per unknown key, suggests the nearest option, and still runs; a key of another command passes quietly', async () => {
    const conf = join(dir, 'typo.conf');
    writeFileSync(conf, `chain=regtest\nrpc-pasword=x\ndatadir=${datadir}\ncors=http://a\nfrobnicate=1\nrpc-pasword=y\n`);
    const res = await run(['recount', '--conf', conf, '--json']);
    expect(res.status).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ network: 'regtest', height: 450 });
    expect(res.stderr.trimEnd().split('\n')).toEqual([
      `nodereg: warning: ${conf} line 2: "rpc-pasword" is not an option of any nodereg command, so it is ignored (did you mean "rpc-password"?)`,
      `nodereg: warning: ${conf} line 5: "frobnicate" is not an option of any nodereg command, so it is ignored`,
    ]);
    expect(unknownKeyWarnings(configLines('cors=a\nblocks-dirr=b\n', 'f'), 'f')).toEqual([
      'f line 2: "blocks-dirr" is not an option of any nodereg command, so it is ignored (did you mean "blocks-dir"?)',
    ]);
    expect(nearestOption('zzzzzz')).toBeNull();
  });
});

describe('--datadir with a real node (bcoin)', () => {
  let node: BcoinNode;
  beforeAll(async () => {
    node = await startBcoin();
  }, 120_000);
  afterAll(async () => node?.stop());

  it('authenticates with the cookie of <datadir>/regtest/, and a wrong cookie names the file', async () => {
    const dd = join(dir, 'bcoin-datadir');
    mkdirSync(join(dd, 'regtest'), { recursive: true });
    const cookie = join(dd, 'regtest', '.cookie');
    // bcoin takes any user with its API key as the password; bitcoind writes __cookie__:<random>.
    writeFileSync(cookie, `__cookie__:${node.apiKey}\n`);
    const db = join(dir, 'bcoin-db');
    const ok = await noderegAsync(['index', '--chain', 'regtest', '--datadir', dd, '--rpc', node.url, '--db', db, '--until-synced', '--log-level', 'warn'], { env: env() });
    expect({ status: ok.status, stderr: ok.stderr }).toEqual({ status: 0, stderr: '' });
    writeFileSync(cookie, '__cookie__:wrong\n');
    const bad = await noderegAsync(['index', '--chain', 'regtest', '--datadir', dd, '--rpc', node.url, '--db', db, '--until-synced', '--log-level', 'warn'], { env: env() });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain(cookie);
  }, 180_000);
});
