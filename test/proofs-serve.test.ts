import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { recount } from '../indexer/engine/recount.js';
import { buildServer, type ApiServer } from '../indexer/http/server.js';
import type { ExportJson } from '../indexer/read/queries.js';
import { checkDiff, type DiffJson } from '../indexer/read/proofs.js';
import { addressToScript } from '../script/address.js';
import { BUILTIN_NETWORKS } from '../script/params.js';
import { verifyProof, type ProofJson } from '../script/verifyproof.js';
import { nodereg, noderegAsync, ROOT } from './helpers/cli.js';
import { tempIndex } from './helpers/db.js';
import { refHash, refLeaves, refProof, sha } from './helpers/reftree.js';

/*
 * Proofs and diffs over HTTP and from the CLI, on the demo chain: alice and
 * two others live at the tip, carol expired, dave lapsed.
 */

const regtest = BUILTIN_NETWORKS.regtest!;
const DEMO_BLOCKS = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');
const ALICE = 'bcrt1qw08gd26j454qfj0986nae4pemvk8uu8d454g2g';
const CAROL = 'mxYdWYFhFqno9w1eWkkcCqJTJrtDMN9LXx';
const DAVE = '2NE1HNBLoroM1MmHdQDpSRBUUnP2ovE2mzL';
const NEVER = '0014' + 'ee'.repeat(20);

let dir: string;
let cliDb: string;
let idx: Awaited<ReturnType<typeof tempIndex>>;
let server: ApiServer;
let base: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-proofs-'));
  cliDb = join(dir, 'db');
  const cli = noderegAsync(['recount', '--network', 'regtest', '--blocks-dir', DEMO_BLOCKS, '--db', cliDb]);
  idx = await tempIndex(regtest);
  await recount({ blocksDir: DEMO_BLOCKS, params: regtest, db: idx.db });
  server = await buildServer({ db: idx.db, params: regtest });
  base = await server.listen('127.0.0.1', 0);
  expect((await cli).status).toBe(0);
});

afterAll(async () => {
  await server.close();
  await idx.close();
  rmSync(dir, { recursive: true, force: true });
});

const get = async <T>(path: string): Promise<{ status: number; body: T }> => {
  let res: Response;
  try {
    res = await fetch(new URL(path, base));
  } catch {
    // A synchronous CLI run blocks this process past the server's keep-alive
    // timeout, so fetch may reuse a socket the server has just closed. The
    // request never reached the server; once more on a new socket.
    res = await fetch(new URL(path, base));
  }
  return { status: res.status, body: (await res.json()) as T };
};

const scriptHex = (stake: string): string => (stake.startsWith('00') ? stake : addressToScript(stake, regtest).toString('hex'));

describe('GET /v1/proof and /v1/root', () => {
  it.each([[450, 'the tip'], [440, 'dave not yet lapsed'], [200, 'carol not yet expired']])('serve, at %i (%s), proofs that an independent tree confirms: included, expired, lapsed and never seen', async (height) => {
    const ex = (await get<ExportJson>(`/v1/export?height=${height}`)).body;
    const leaves = refLeaves(ex.nodes);
    const root = (await get<{ proofRoot: string }>(`/v1/root?height=${height}`)).body.proofRoot;
    expect(root).toBe(refHash(leaves).toString('hex'));
    const seen = new Set<string>();
    for (const stake of [ALICE, CAROL, DAVE, NEVER]) {
      const { status, body } = await get<ProofJson>(`/v1/proof/${stake}?height=${height}`);
      expect(status).toBe(200);
      const live = ex.nodes.some((n) => n.stakeScript === scriptHex(stake) && n.status === 'active');
      seen.add(String(live));
      expect(body).toMatchObject({ height, tip: ex.tip, proofRoot: root, stakeScript: scriptHex(stake), included: live });
      expect(body.siblings).toEqual(refProof(leaves, sha(Buffer.from(scriptHex(stake), 'hex'))).siblings);
      expect(verifyProof(body, root)).toEqual({ valid: true, included: live });
    }
    expect(seen).toEqual(new Set(['true', 'false']));
  });

  it('refuses a bad stake and a height above the tip, with the API\'s error shape', async () => {
    expect(await get('/v1/proof/nonsense')).toMatchObject({ status: 400, body: { error: 'bad_address' } });
    expect(await get(`/v1/proof/${ALICE}?height=451`)).toMatchObject({ status: 400, body: { message: expect.stringMatching(/above the index tip 450/) } });
  });

  it('lists the proof and diff routes in the OpenAPI document', async () => {
    const doc = (await get<{ paths: Record<string, unknown> }>('/v1/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/proof/{stake}', '/v1/diff']));
  });
});

describe('GET /v1/diff', () => {
  it('gives the changes between two heights that lead from one height\'s roots to the other\'s', async () => {
    const diff = (await get<DiffJson>('/v1/diff?from=300&to=450')).body;
    const live = (await get<ExportJson>('/v1/export?height=300')).body.nodes.filter((n) => n.status === 'active');
    expect(checkDiff(live, diff)).toBeNull();
    expect(diff.added.length + diff.removed.length + diff.changed.length).toBeGreaterThan(0);
    expect((await get('/v1/diff?from=300')).status).toBe(400);
  });
});

describe('nodereg proof and diff', () => {
  it('proof prints the proof the API serves; proof verify says valid (0), invalid (3), or not a proof (1)', async () => {
    const res = nodereg(['proof', ALICE, '--db', cliDb, '--height', '300']);
    expect(res.status).toBe(0);
    const proof = JSON.parse(res.stdout) as ProofJson;
    expect(proof).toEqual((await get<ProofJson>(`/v1/proof/${ALICE}?height=300`)).body);
    const file = join(dir, 'proof.json');
    writeFileSync(file, res.stdout);
    const ok = nodereg(['proof', 'verify', file, '--root', proof.proofRoot]);
    expect([ok.status, ok.stdout]).toEqual([0, `valid: stake ${proof.stakeScript} is ${proof.included ? 'live' : 'not live'} at height 300 under proof root ${proof.proofRoot}\n`]);

    const tampered = { ...proof, siblings: proof.siblings.length > 0 ? [proof.siblings[0]!.replace(/^./, (c) => (c === '0' ? '1' : '0')), ...proof.siblings.slice(1)] : ['00'.repeat(32)] };
    const bad = nodereg(['proof', 'verify', '-'], { input: JSON.stringify(tampered) });
    expect(bad.status).toBe(3);
    expect(bad.stdout).toMatch(/^INVALID: the path leads to [0-9a-f]{64}, not to the proof root [0-9a-f]{64}\n$/);

    const notJson = nodereg(['proof', 'verify', '-'], { input: '{"height": 3' });
    expect([notJson.status, notJson.stderr]).toEqual([1, 'nodereg: standard input is not JSON: give the output of "nodereg proof" or of GET /v1/proof\n']);
    const shape = nodereg(['proof', 'verify', '-'], { input: JSON.stringify({ ...proof, siblings: 'x' }) });
    expect([shape.status, shape.stderr]).toEqual([1, 'nodereg: not a proof: "siblings" must be an array of hashes\n']);
    expect(nodereg(['proof', 'verify', file, '--root', 'abc']).status).toBe(2);
  });

  it('proof --api asks a running daemon; an exclusion is an answer, not an error', async () => {
    const res = await noderegAsync(['proof', CAROL, '--api', base]);
    expect(res.status).toBe(0);
    const proof = JSON.parse(res.stdout) as ProofJson;
    expect(proof.included).toBe(false);
    expect(verifyProof(proof, (await get<{ proofRoot: string }>('/v1/root')).body.proofRoot)).toEqual({ valid: true, included: false });
  });

  it('diff --check applies the diff and says the roots match', async () => {
    const res = nodereg(['diff', '--db', cliDb, '--from', '120', '--to', '450', '--check']);
    expect(res.status).toBe(0);
    expect(res.stdout).toMatch(/^ok: the \d+ nodes live at 120 with the diff \(\d+ added, \d+ removed, \d+ changed\) give the registry root [0-9a-f]{64} and proof root [0-9a-f]{64} of height 450\n$/);
    const json = JSON.parse(nodereg(['diff', '--db', cliDb, '--from', '120', '--to', '450']).stdout) as DiffJson;
    expect(json.to).toEqual((await get<DiffJson>('/v1/diff?from=120&to=450')).body.to);
    expect(json.to.proofRoot).toBe((await get<{ proofRoot: string }>('/v1/root')).body.proofRoot);
  });
});
