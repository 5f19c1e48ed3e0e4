/**
 * Comparing a PostgreSQL mirror with the LevelDB index it mirrors: the
 * export at every height (registrations, balances, rejections, root and
 * block hash), the registrations table row by row, the rows the explorer
 * views read (each stake's balance history and rejections), the unspent
 * coins and the tips.
 */
import { isDeepStrictEqual } from 'node:util';
import pg from 'pg';
import { exportAt, exportNode, registeredScripts, replay, eventsOf, requireTip } from '../../indexer/read/queries.js';
import { mirrorExportAt, mirrorRegistrationRows } from '../../indexer/mirror/read.js';
import { readMeta } from '../../indexer/mirror/writer.js';
import { decodeAmount, decodeCoin, decodeRejected } from '../../indexer/store/codec.js';
import { K, P, parse } from '../../indexer/store/layout.js';
import { openIndexStore, STAKE_REJECTIONS_META } from '../../indexer/store/store.js';

export interface MirrorComparison {
  indexTip: { height: number; hash: string };
  mirrorTip: { height: number; hash: string } | null;
  /** Heights whose export differs (at most 5, with the first difference's two sides). */
  differing: Array<{ height: number; index: unknown; mirror: unknown }>;
  /** The registrations table against every registration the index replays at its tip. */
  registrationsEqual: boolean;
  /** The mirror's tables (or meta) whose rows differ from the index's: 'balances', 'rejections by stake', 'stake_rejections', 'coins', 'coins_height'. */
  tablesDiffering: string[];
  heightsCompared: number;
}

const rpcHex = (b: Uint8Array): string => Buffer.from(b).reverse().toString('hex');

/** Opens the index at `dbPath` (no process may hold it) and the mirror at `url`, and compares them at every height. */
export async function compareMirror(dbPath: string, url: string): Promise<MirrorComparison> {
  const { db, params } = await openIndexStore(dbPath, null, { create: false });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const tip = await requireTip(db);
    const meta = await readMeta(client);
    const differing: MirrorComparison['differing'] = [];
    for (let h = 0; h <= tip.height; h++) {
      const [want, got] = await Promise.all([
        exportAt(db, params, h),
        mirrorExportAt(client, params, h).catch((err: Error) => err.message),
      ]);
      if (!isDeepStrictEqual(got, want) && differing.length < 5) {
        differing.push({ height: h, index: summary(want), mirror: typeof got === 'string' ? got : summary(got as typeof want) });
      }
    }
    const all: Array<{ key: [number, number]; row: unknown }> = [];
    for (const script of await registeredScripts(db)) {
      const regs = replay(script, await eventsOf(db, script), tip.height);
      regs.forEach((r, i) => {
        const { balance: _b, ...n } = exportNode(r, 0n, params);
        all.push({ key: [r.firstHeight, r.firstIndex], row: { ...n, current: i === regs.length - 1 } });
      });
    }
    all.sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1]);
    const rows = await mirrorRegistrationRows(client);
    const tablesDiffering: string[] = [];
    const balances: string[] = [];
    for await (const [k, v] of db.iterator(K.all(P.stakeBalance))) {
      const b = parse.stakeBalance(k);
      balances.push(`${b.script.toString('hex')} ${b.height} ${decodeAmount(v)}`);
    }
    const mirroredBalances = (await client.query<{ r: string }>("SELECT stake_script || ' ' || height || ' ' || balance AS r FROM balances ORDER BY stake_script, height")).rows;
    if (!isDeepStrictEqual(mirroredBalances.map((x) => x.r).sort(), balances.sort())) tablesDiffering.push('balances');
    const byStake: string[] = [];
    for await (const [k, v] of db.iterator(K.all(P.stakeRejected))) {
      const j = parse.stakeRejected(k);
      const { txid, reason } = decodeRejected(v);
      byStake.push(`${j.script.toString('hex')} ${j.height} ${j.txIndex} ${j.vout} ${rpcHex(txid)} ${reason}`);
    }
    const mirroredByStake = (await client.query<{ r: string }>(`SELECT stake_script || ' ' || height || ' ' || position || ' ' || vout || ' ' || txid || ' ' || reason AS r
      FROM rejections WHERE stake_script IS NOT NULL ORDER BY stake_script, height, position, vout`)).rows;
    if (!isDeepStrictEqual(mirroredByStake.map((x) => x.r).sort(), byStake.sort())) tablesDiffering.push('rejections by stake');
    const recorded = (await db.get(K.meta(STAKE_REJECTIONS_META))) !== undefined;
    if ((await client.query<{ s: boolean }>('SELECT stake_rejections AS s FROM mirror_meta')).rows[0]?.s !== recorded) tablesDiffering.push('stake_rejections');
    const coins: string[] = [];
    for await (const [k, v] of db.iterator(K.all(P.coin))) {
      const c = decodeCoin(v);
      coins.push(`${k.subarray(1).toString('hex')} ${c.script.toString('hex')} ${c.value} ${c.height} ${c.coinbase}`);
    }
    const mirroredCoins = (await client.query<{ r: string }>(`SELECT encode(outpoint, 'hex') || ' ' || script || ' ' || value || ' ' || height || ' ' || coinbase AS r
      FROM coins WHERE spent_height IS NULL`)).rows;
    if (!isDeepStrictEqual(mirroredCoins.map((x) => x.r).sort(), coins.sort())) tablesDiffering.push('coins');
    if ((await client.query<{ h: number | null }>('SELECT coins_height AS h FROM mirror_meta')).rows[0]?.h !== tip.height) tablesDiffering.push('coins_height');
    return {
      indexTip: { height: tip.height, hash: rpcHex(tip.hash) },
      mirrorTip: meta?.tip ?? null,
      differing,
      registrationsEqual: isDeepStrictEqual(rows, all.map((a) => a.row)),
      tablesDiffering,
      heightsCompared: tip.height + 1,
    };
  } finally {
    await client.end();
    await db.close();
  }
}

function summary(e: { height: number; tip: string; root: string; nodes: unknown[]; rejected: unknown[] }): unknown {
  return { height: e.height, tip: e.tip, root: e.root, nodes: e.nodes, rejected: e.rejected.length };
}

/** Runs `sql` on the database at `url` and returns its rows. */
export async function sqlRows<T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}
