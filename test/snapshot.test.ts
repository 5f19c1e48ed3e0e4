import { spawn, spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { RpcClient } from '../indexer/node/rpc.js';
import { encodePrefix, encodeRow, encodeTrailerHead, END_ROW, RowReader, sha256, SnapshotFileError, TRAILER_BYTES, type SnapshotHeader } from '../indexer/snapshot/format.js';
import { loadSnapshot, readEnds, SnapshotLoadError, SnapshotLoadInterrupted } from '../indexer/snapshot/load.js';
import { checkAgainstNode } from '../indexer/snapshot/nodecheck.js';
import { createSnapshot } from '../indexer/snapshot/create.js';
import { blockHashAt, exportAt, rootAt, utxoHashAt } from '../indexer/read/queries.js';
import { proofAt } from '../indexer/read/proofs.js';
import { openIndexStore, type DB } from '../indexer/store/store.js';
import type { NetworkParams } from '../script/params.js';
import { fixturePath } from './helpers/blocksdir.js';
import { nodereg, noderegIn, ROOT } from './helpers/cli.js';

/*
 * Snapshots of the demo chain's index: a round trip gives back the same
 * index (same exports at every height, same snapshot file), and any change
 * to the file, accidental or crafted, is refused without leaving anything
 * behind.
 */

const DEMO = join(ROOT, 'fixtures', 'chains', 'demo', 'blocks');

let dir: string;
let src: string;
let file: string;
let bytes: Buffer;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nodereg-snap-'));
  src = join(dir, 'src');
  file = join(dir, 'demo.snap');
  expect(nodereg(['recount', '--network', 'regtest', '--blocks-dir', DEMO, '--db', src, '--utxo-hash']).status).toBe(0);
  const made = nodereg(['snapshot', 'create', '--db', src, '--out', file, '--json']);
  expect(made.stderr).toBe('');
  bytes = readFileSync(file);
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const fresh = (): string => join(dir, `t${++n}`);
/** What a failed load left in `dir` besides the fixtures: must be nothing. */
const leftovers = (): string[] => readdirSync(dir).filter((e) => e.includes('.loading-'));

/** The rows of a snapshot file, decompressed. */
function rowsOf(b: Buffer): Array<[Buffer, Buffer]> {
  const p = join(dir, 'read.snap');
  writeFileSync(p, b);
  const ends = readEnds(p);
  const body = gunzipSync(b.subarray(ends.prefixBytes, b.length - TRAILER_BYTES));
  const r = new RowReader(p);
  const rows = r.push(body);
  r.finish();
  return rows;
}

/** A well-formed snapshot file (valid checksum) of these rows under this header: what a forger could make. */
function forge(header: SnapshotHeader, rows: Array<[Buffer, Buffer]>): Buffer {
  const body = Buffer.concat([...rows.map(([k, v]) => encodeRow(k, v)), END_ROW]);
  const head = Buffer.concat([encodePrefix(header), gzipSync(body), encodeTrailerHead(rows.length, body.length)]);
  return Buffer.concat([head, sha256().update(head).digest()]);
}

async function loadFails(b: Buffer): Promise<Error> {
  const p = join(dir, 'bad.snap');
  writeFileSync(p, b);
  const target = fresh();
  const err = await loadSnapshot(p, target).then(() => null, (e: Error) => e);
  expect(err).not.toBeNull();
  expect(existsSync(target)).toBe(false);
  expect(leftovers()).toEqual([]);
  return err!;
}

/** Opens an index in this process, runs `fn`, closes it. */
async function withIndex<T>(path: string, fn: (db: DB, params: NetworkParams) => Promise<T>): Promise<T> {
  const { db, params } = await openIndexStore(path, null, { create: false });
  try {
    return await fn(db, params);
  } finally {
    await db.close();
  }
}

/** What the index answers at these heights: exports, roots, UTXO hashes, proofs. */
const answers = (path: string, heights: number[]): Promise<unknown[]> => withIndex(path, async (db, params) => {
  const out: unknown[] = [];
  for (const h of heights) {
    const ex = await exportAt(db, params, h);
    // Proofs from the proof-tree history the snapshot carries: of the first node there, and of a stake never seen.
    const scripts = [...ex.nodes.slice(0, 1).map((n) => Buffer.from(n.stakeScript, 'hex')), Buffer.concat([Buffer.of(0x00, 0x14), Buffer.alloc(20, 0xee)])];
    const proofs = [];
    for (const s of scripts) proofs.push(await proofAt(db, s, h, 'history'));
    out.push({ h, export: ex, root: await rootAt(db, h), utxo: await utxoHashAt(db, h), proofs });
  }
  return out;
});

describe('a snapshot round trip', () => {
  it('gives an index whose exports and roots equal the source\'s, at the tip and at past heights, and whose own snapshot is the same file', async () => {
    const dst = fresh();
    const res = await noderegIn(['snapshot', 'load', file, '--db', dst, '--json']);
    expect(res.status).toBe(0);
    const out = JSON.parse(res.stdout) as { header: SnapshotHeader; checks: Array<{ what: string; ok: boolean }>; node: unknown };
    const srcRoot = JSON.parse((await noderegIn(['root', '--db', src, '--json'])).stdout) as { proofRoot: string };
    expect(out.header).toMatchObject({ network: 'regtest', height: 450, proofRoot: srcRoot.proofRoot, undoBlocks: 12 });
    expect(out.checks.map((c) => c.what)).toEqual([
      'registry root from the registration rows', 'registry root from the event history',
      'proof root from the registration rows', 'proof root from the event history', 'proof-tree history (leaf and subtree rows) as of the tip',
      'lifetime rows from the registration rows', 'block-time rows, one per block', 'UTXO-set MuHash from the coin rows',
    ]);
    expect(out.node).toBeNull();
    const heights = [450, 443, 442, 300, 246, 150, 0];
    const before = await answers(src, heights);
    expect(await answers(dst, heights)).toEqual(before);
    const again = join(dir, 'again.snap');
    await withIndex(dst, (db) => createSnapshot(db, again, { undoBlocks: 12 }));
    expect(readFileSync(again).equals(bytes)).toBe(true);
  }, 120_000);

  it('carries undo records of the last --undo-blocks blocks only, and the header commits to the source\'s roots', async () => {
    const rows = rowsOf(bytes);
    const undoHeights = rows.filter(([k]) => k[0] === 0x55).map(([k]) => k.readUInt32BE(1));
    expect(undoHeights).toEqual(Array.from({ length: 12 }, (_, i) => 439 + i));
    const none = join(dir, 'none.snap');
    const header = await withIndex(src, async (db) => {
      expect(readEnds(file).header).toMatchObject({ tip: (await blockHashAt(db, 450)).reverse().toString('hex'), root: await rootAt(db, 450), utxoMuhash: await utxoHashAt(db, 450) });
      return (await createSnapshot(db, none, { undoBlocks: 0 })).header;
    });
    expect(header.undoBlocks).toBe(0);
    expect(rowsOf(readFileSync(none)).filter(([k]) => k[0] === 0x55)).toEqual([]);
  }, 60_000);
});

describe('a damaged snapshot is refused', () => {
  it('for a one-byte change in the header, the compressed rows or the trailer, with nothing left behind', async () => {
    const { prefixBytes } = readEnds(file);
    const positions = [0, 8, 9, 12, 20, prefixBytes - 3, prefixBytes + 4, prefixBytes + 9, prefixBytes + 40, Math.floor(bytes.length / 2),
      bytes.length - TRAILER_BYTES - 5, bytes.length - TRAILER_BYTES, bytes.length - TRAILER_BYTES + 9, bytes.length - TRAILER_BYTES + 17, bytes.length - 1];
    for (const at of positions) {
      const b = Buffer.from(bytes);
      b[at] ^= 0x01;
      const err = await loadFails(b);
      expect({ at, err: err instanceof SnapshotFileError }).toEqual({ at, err: true });
      expect(err.message).toMatch(/damaged|not a nodereg snapshot|truncated|format version/);
    }
  }, 120_000);

  it('for a truncated file, at any length', async () => {
    for (const len of [0, 5, 30, readEnds(file).prefixBytes, Math.floor(bytes.length / 2), bytes.length - 1]) {
      const err = await loadFails(bytes.subarray(0, len));
      expect(err.message).toMatch(/truncated|not a nodereg snapshot/);
    }
  }, 60_000);

  it('through the CLI: one line, exit status 1', async () => {
    const b = Buffer.from(bytes);
    b[Math.floor(b.length / 3)] ^= 0x80;
    const p = join(dir, 'cli-bad.snap');
    writeFileSync(p, b);
    const target = fresh();
    const res = await noderegIn(['snapshot', 'load', p, '--db', target]);
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(/^nodereg: .*cli-bad\.snap is damaged: .*fetch it again\n$/);
    expect(existsSync(target)).toBe(false);
  });
});

describe('a well-formed snapshot that does not hold what its header says is refused', () => {
  const header = (): SnapshotHeader => readEnds(file).header;

  it('when the header claims another registry root or UTXO hash', async () => {
    const rows = rowsOf(bytes);
    expect((await loadFails(forge({ ...header(), root: 'ab'.repeat(32) }, rows))).message).toMatch(/registry root from the registration rows is [0-9a-f]{64}, its header says abab/);
    expect((await loadFails(forge({ ...header(), utxoMuhash: 'cd'.repeat(32) }, rows))).message).toMatch(/UTXO-set MuHash from the coin rows is [0-9a-f]{64}, its header says cdcd/);
    expect((await loadFails(forge({ ...header(), tip: '00'.repeat(32) }, rows))).message).toMatch(/its tip is block 02c999.* its header says 0000/);
  });

  it('when a coin or a registration was changed', async () => {
    const rows = rowsOf(bytes);
    const coin = rows.findIndex(([k]) => k[0] === 0x75);
    const moreCoin = rows.map(([k, v], i): [Buffer, Buffer] => [k, i === coin ? Buffer.concat([Buffer.of(v[0]! ^ 1), v.subarray(1)]) : v]);
    expect((await loadFails(forge(header(), moreCoin))).message).toMatch(/UTXO-set MuHash from the coin rows \(\d+ coins\) is/);
    const reg = rows.findIndex(([k]) => k[0] === 0x67);
    const renewed = rows.map(([k, v], i): [Buffer, Buffer] => {
      if (i !== reg) return [k, v];
      const w = Buffer.from(v);
      w.writeUInt32LE(w.readUInt32LE(w.length - 13) + 1, w.length - 13); // renewals
      return [k, w];
    });
    expect((await loadFails(forge(header(), renewed))).message).toMatch(/does not hold what its header says: registration .* renewals/);
  });

  it('when it carries a row a snapshot never carries, or another network\'s rows', async () => {
    const rows = rowsOf(bytes);
    const extra: Array<[Buffer, Buffer]> = [...rows, [Buffer.of(0x7f, 1), Buffer.of(1)]];
    expect((await loadFails(forge(header(), extra))).message).toMatch(/a row \(key 7f01…\) that a snapshot at height 450 never carries/);
    expect((await loadFails(forge({ ...header(), network: 'testnet' }, rows))).message).toMatch(/its header says "testnet"/);
    expect((await loadFails(forge({ ...header(), proofRoot: 'ee'.repeat(32) }, rows))).message).toMatch(/the proof root from the registration rows is [0-9a-f]{64}, its header says e{64}/);
  });
});

describe('snapshot load refuses a target it would overwrite', () => {
  it('a non-empty directory or a file, and leaves them as they were', async () => {
    const busy = fresh();
    mkdirSync(busy);
    writeFileSync(join(busy, 'keep.txt'), 'x');
    const a = await noderegIn(['snapshot', 'load', file, '--db', busy]);
    expect(a.status).toBe(1);
    expect(a.stderr).toMatch(/is not empty; a snapshot loads only into a new or empty directory/);
    expect(readdirSync(busy)).toEqual(['keep.txt']);
    await expect(loadSnapshot(file, src)).rejects.toThrow(/is not empty/);
    await expect(loadSnapshot(file, join(busy, 'keep.txt'))).rejects.toThrow(/is a file/);
    const empty = fresh();
    mkdirSync(empty);
    expect((await loadSnapshot(file, empty)).header.height).toBe(450);
    const out = await noderegIn(['snapshot', 'create', '--db', src, '--out', file]);
    expect(out.status).toBe(1);
    expect(out.stderr).toMatch(/exists; give a new file name/);
  }, 60_000);
});

describe('a load that is stopped or was killed leaves nothing behind', () => {
  it('stops through its signal (Ctrl-C in the CLI) while reading rows, and removes its directory', async () => {
    const target = fresh();
    const stop = new AbortController();
    const err = await loadSnapshot(file, target, { signal: stop.signal, onProgress: () => stop.abort() }).then(() => null, (e: Error) => e);
    expect(err).toBeInstanceOf(SnapshotLoadInterrupted);
    expect(existsSync(target)).toBe(false);
    expect(leftovers()).toEqual([]);
    // Stopped while the node is asked, after every row was read: the same.
    const late = new AbortController();
    const err2 = await loadSnapshot(file, fresh(), { signal: late.signal, beforeCommit: async () => late.abort() }).then(() => null, (e: Error) => e);
    expect(err2).toBeInstanceOf(SnapshotLoadInterrupted);
    expect(leftovers()).toEqual([]);
  });

  it('removes what a killed load into the same --db left, but not the directory of a load still running', async () => {
    const target = fresh();
    const name = target.split('/').pop()!;
    // A process that has exited: its pid no longer runs.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const running = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)']);
    try {
      const stale = join(dir, `.${name}.loading-${dead}`);
      const live = join(dir, `.${name}.loading-${running.pid}`);
      const other = join(dir, `.someone-else.loading-${dead}`);
      for (const d of [stale, live, other]) {
        mkdirSync(d);
        writeFileSync(join(d, 'CURRENT'), 'x');
      }
      expect((await loadSnapshot(file, target)).header.height).toBe(450);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(other)).toBe(true);
      for (const d of [live, other]) rmSync(d, { recursive: true });
    } finally {
      running.kill('SIGKILL');
    }
  });
});

/**
 * A fake Core answering from node.json, which a real Core node wrote for the
 * core-regtest chain: bcoin has no `gettxoutsetinfo muhash`.
 */
const core = JSON.parse(readFileSync(fixturePath('core-regtest/node.json'), 'utf8')) as { heights: Record<string, { hash: string; utxoMuhash: string }> };
async function fakeCore(opts: { blocks: number; muhashAt?: (h: number) => string; coinstatsindex: boolean; hashOf?: (h: number) => string }): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d.toString(); });
    req.on('end', () => {
      const call = JSON.parse(body) as { id: number; method: string; params: unknown[] };
      const ok = (result: unknown): string => JSON.stringify({ result, error: null, id: call.id });
      const fail = (code: number, message: string): string => JSON.stringify({ result: null, error: { code, message }, id: call.id });
      // Above the fixture's tip (116) the node's blocks are made up: only the snapshot's height is asked about.
      const hashOf = opts.hashOf ?? ((h: number) => core.heights[String(h)]?.hash ?? 'aa'.repeat(32));
      res.setHeader('content-type', 'application/json');
      if (call.method === 'getblockchaininfo') return res.end(ok({ chain: 'regtest', blocks: opts.blocks, bestblockhash: hashOf(opts.blocks) }));
      if (call.method === 'getblockhash') return res.end(ok(hashOf(call.params[0] as number)));
      if (call.method === 'gettxoutsetinfo') {
        const h = (call.params[1] as number | undefined) ?? opts.blocks;
        if (call.params[1] !== undefined && !opts.coinstatsindex) return res.end(fail(-8, 'Querying specific block heights requires coinstatsindex'));
        return res.end(ok({ height: h, bestblock: hashOf(h), muhash: (opts.muhashAt ?? ((x: number) => core.heights[String(x)]!.utxoMuhash))(h), txouts: 1 }));
      }
      res.end(fail(-32601, 'Method not found'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

describe('snapshot load checks the tip and the UTXO-set MuHash against Core (fake RPC server replaying a real Core\'s answers)', () => {
  let coreSnap: string;
  beforeAll(async () => {
    const db = join(dir, 'core-src');
    coreSnap = join(dir, 'core.snap');
    expect((await noderegIn(['recount', '--network', 'regtest', '--blocks-dir', fixturePath('core-regtest/blocks'), '--db', db, '--utxo-hash'])).status).toBe(0);
    expect((await noderegIn(['snapshot', 'create', '--db', db, '--out', coreSnap])).status).toBe(0);
  }, 60_000);
  const withNode = async (node: Parameters<typeof fakeCore>[0]): Promise<{ result: Awaited<ReturnType<typeof checkAgainstNode>> | null; err: Error | null; target: string }> => {
    const server = await fakeCore(node);
    const target = fresh();
    let result: Awaited<ReturnType<typeof checkAgainstNode>> | null = null;
    try {
      const err = await loadSnapshot(coreSnap, target, { beforeCommit: async (_db, h) => { result = await checkAgainstNode(new RpcClient({ url: server.url, retries: 0 }), h); } })
        .then(() => null, (e: Error) => e);
      return { result, err, target };
    } finally {
      await server.close();
    }
  };

  it('accepts when the node has the tip and the same MuHash there (the CLI says both were checked)', async () => {
    const server = await fakeCore({ blocks: 116, coinstatsindex: false });
    try {
      const res = await noderegIn(['snapshot', 'load', coreSnap, '--db', fresh(), '--rpc', server.url, '--rpc-user', 'u', '--rpc-password', 'p']);
      expect(res.status).toBe(0);
      expect(res.stdout).toMatch(/ok {2}the node's block at height 116 is the snapshot's tip\n {2}ok {2}the node's UTXO-set MuHash at height 116 is the snapshot's/);
    } finally {
      await server.close();
    }
  }, 60_000);

  it('checks at a past height with coinstatsindex, and says it could not without', async () => {
    expect((await withNode({ blocks: 130, coinstatsindex: true })).result).toEqual({ tip: 'match', muhash: 'match', note: null });
    const without = await withNode({ blocks: 130, coinstatsindex: false });
    expect(without.err).toBeNull();
    expect(without.result).toMatchObject({ tip: 'match', muhash: 'not-checked', note: expect.stringMatching(/only at its tip \(height 130\) without -coinstatsindex=1/) });
    expect(existsSync(without.target)).toBe(true);
  });

  it('refuses a MuHash the node does not have, a tip off its main chain, and a node below the snapshot, leaving no index', async () => {
    const cases: Array<[Parameters<typeof fakeCore>[0], RegExp]> = [
      [{ blocks: 116, coinstatsindex: true, muhashAt: () => 'ab'.repeat(32) }, /differs from the node's abab.* do not use this snapshot/],
      [{ blocks: 116, coinstatsindex: true, hashOf: () => 'ef'.repeat(32) }, /is not in the node's main chain \(its block at height 116 is efef/],
      [{ blocks: 100, coinstatsindex: true }, /the node is at height 100, below the snapshot's 116/],
    ];
    for (const [node, message] of cases) {
      const { err, target } = await withNode(node);
      expect(err).toBeInstanceOf(SnapshotLoadError);
      expect(err!.message).toMatch(message);
      expect(existsSync(target)).toBe(false);
    }
    expect(leftovers()).toEqual([]);
  });
});
