import pg from 'pg';
import { paramsHash, type NetworkParams } from '../../script/params.js';
import type { ReasonCode } from '../../script/reasons.js';
import { HttpError } from '../http/errors.js';
import { balanceHistoryOf, rejectedPageOf, searchOf, stakeRejectionsOf, type RejectedRow } from '../read/explore.js';
import { clockOf, INTERVAL_WINDOW } from '../read/forecast.js';
import { pageOf, payeesOf, summaryOf, type PageRows } from '../read/listing.js';
import { checkPayoutRequest, recipientsOf, tableOf, type LifetimeRow } from '../read/payouts.js';
import { diffOf, liveOf, proofFrom, type DiffEnd } from '../read/proofs.js';
import { explainOutcomes, heightUpTo, nodeInfoOf, QueryError, scriptUtxo, tipOrRefuse } from '../read/queries.js';
import type { DataSource, HeightRoots, RegistryView, TipRef } from '../read/source.js';
import { OPEN } from '../store/layout.js';
import type { Outcome, Registration, RegistryEvent } from '../types.js';
import { PostgresUnavailableError } from './connect.js';
import { histories, mirrorExportAt, mirrorRegistrationsAt, readMirrorTip, registrationOfRow, toEvent, type EventRow, type RegistrationRow } from './read.js';
import { MIRROR_SCHEMA_VERSION } from './schema.js';
import { readMeta } from './writer.js';

/*
 * The API's reads from the PostgreSQL mirror (`nodereg serve --postgres`).
 * Each request reads one REPEATABLE READ transaction, so it sees the mirror
 * at one block boundary, as a LevelDB snapshot does. The rows go through the
 * same functions of read/* as the index's.
 */

/** Heights of current registrations read per query while paging at the tip. */
const PAGE_BATCH = 1000;

/**
 * A pooled connection that opens its read-only REPEATABLE READ transaction
 * on the first query: an answer of one statement (a node's page) needs none,
 * as a statement reads one snapshot by itself.
 */
class Session {
  begun = false;

  constructor(readonly raw: pg.ClientBase) {}

  /** The connection, in the transaction. */
  readonly tx = {
    query: async (text: string, values?: unknown[]) => {
      if (!this.begun) {
        this.begun = true;
        await this.raw.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      }
      return this.raw.query(text, values);
    },
  } as unknown as pg.ClientBase;

  /** One statement: in the transaction if it is open, else alone. */
  one<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    return (this.begun ? this.tx : this.raw).query<R>(text, values);
  }
}

class MirrorView implements RegistryView {
  private tipRead: Promise<TipRef | null> | null = null;
  private readonly c: pg.ClientBase;

  constructor(private readonly session: Session, private readonly params: NetworkParams) {
    this.c = session.tx;
  }

  tip(): Promise<TipRef | null> {
    return (this.tipRead ??= readMirrorTip(this.c));
  }

  private async tipHeight(): Promise<number> {
    return tipOrRefuse(await this.tip()).height;
  }

  private async block(h: number): Promise<{ hash: string; registry_root: string; proof_root: string | null; utxo_muhash: string | null } | undefined> {
    return (await this.c.query('SELECT hash, registry_root, proof_root, utxo_muhash FROM blocks WHERE height = $1', [h])).rows[0];
  }

  async blockHash(h: number): Promise<string> {
    const b = await this.block(h);
    if (!b) throw new QueryError(`no block at height ${h} in the index`);
    return b.hash;
  }

  async roots(h: number): Promise<HeightRoots> {
    const b = await this.block(h);
    if (!b || b.proof_root === null) throw new QueryError(`no registry state stored for height ${h}`);
    return { root: b.registry_root, proofRoot: b.proof_root, utxoMuhash: b.utxo_muhash };
  }

  async summary(): ReturnType<RegistryView['summary']> {
    const all = await histories(this.c, await this.tipHeight());
    return summaryOf([...all].map(([script, events]): [Buffer, RegistryEvent[]] => [Buffer.from(script, 'hex'), events]));
  }

  private async clock(h: number): ReturnType<PageRows['clock']> {
    const { rows } = await this.c.query<{ time: string }>(
      'SELECT time FROM blocks WHERE height BETWEEN $1 AND $2 AND time IS NOT NULL ORDER BY height', [Math.max(0, h - INTERVAL_WINDOW), h]);
    return clockOf(h, rows.map((r) => Number(r.time)));
  }

  /** Each script's balance at the end of block `h` (hex script → balance); every script when `scripts` is null. */
  private async balancesAt(scripts: string[] | null, h: number): Promise<Map<string, bigint>> {
    const { rows } = await this.c.query<{ stake_script: string; balance: string }>(
      `SELECT DISTINCT ON (stake_script) stake_script, balance FROM balances WHERE height <= $1 ${scripts ? 'AND stake_script = ANY($2::text[])' : ''}
        ORDER BY stake_script, height DESC`, scripts ? [h, scripts] : [h]);
    return new Map(rows.map((r) => [r.stake_script, BigInt(r.balance)]));
  }

  /** `scripts`' balances at the end of block `h`, in their order. */
  private async balancesOf(scripts: Buffer[], h: number): Promise<bigint[]> {
    const hex = scripts.map((s) => s.toString('hex'));
    const got = await this.balancesAt(hex, h);
    return hex.map((s) => got.get(s) ?? 0n);
  }

  /** The hot route in one statement: the tip, the script's events and balance, and the tip's clock. */
  async nodeInfo(script: Buffer): ReturnType<RegistryView['nodeInfo']> {
    const { rows } = await this.session.one<{ tip_height: number | null; tip_hash: string | null; events: EventRow[]; balance: string | null; times: number[] }>(`
      WITH m AS (SELECT tip_height, tip_hash FROM mirror_meta)
      SELECT m.tip_height, m.tip_hash,
        (SELECT coalesce(json_agg(e ORDER BY e.height, coalesce(e.position, 2147483647), e.kind), '[]') FROM (
          SELECT stake_script, height, position, kind, txid, first_height, first_index, timestamp, expiry_height FROM events
           WHERE stake_script = $1 AND height <= m.tip_height) e) AS events,
        (SELECT balance FROM balances WHERE stake_script = $1 AND height <= m.tip_height ORDER BY height DESC LIMIT 1) AS balance,
        (SELECT coalesce(json_agg(time ORDER BY height), '[]') FROM blocks
          WHERE height BETWEEN greatest(0, m.tip_height - ${INTERVAL_WINDOW}) AND m.tip_height AND time IS NOT NULL) AS times
      FROM m`, [script.toString('hex')]);
    const r = rows[0];
    const tip = tipOrRefuse(r && r.tip_height !== null ? { height: r.tip_height, hash: r.tip_hash! } : null);
    this.tipRead ??= Promise.resolve(tip);
    return nodeInfoOf(script, r!.events.map(toEvent), r!.balance === null ? 0n : BigInt(r!.balance), clockOf(tip.height, r!.times.map(Number)), this.params);
  }

  async pageNodes(q: Parameters<RegistryView['pageNodes']>[0]): ReturnType<RegistryView['pageNodes']> {
    const tip = await this.tipHeight();
    const c = this.c;
    // The current registrations at the tip from just after `after`, in FIRST_SEEN order; only the active ones
    // through the partial index on (status, first_height, first_index), so a page of them never reads the ended ones.
    async function* current(after: { firstHeight: number; firstIndex: number } | null, activeOnly: boolean): AsyncGenerator<Registration> {
      let from = after ?? { firstHeight: -1, firstIndex: -1 };
      for (;;) {
        const { rows: batch } = await c.query<RegistrationRow>(
          `SELECT * FROM registrations WHERE is_current ${activeOnly ? "AND status = 'active'" : ''} AND (first_height, first_index) > ($1, $2)
            ORDER BY first_height, first_index LIMIT ${PAGE_BATCH}`, [from.firstHeight, from.firstIndex]);
        for (const r of batch) yield registrationOfRow(r);
        if (batch.length < PAGE_BATCH) return;
        from = { firstHeight: batch[batch.length - 1]!.first_height, firstIndex: batch[batch.length - 1]!.first_index };
      }
    }
    const rows: PageRows = {
      async* registrations(h, after) {
        if (h === tip) yield* current(after, false);
        else yield* await mirrorRegistrationsAt(c, h);
      },
      // A past height replays every history up to it, as `registrations` does (a bounded reading would need an index on ended_height).
      async* live(h, after) {
        if (h === tip) yield* current(after, true);
        else yield* liveOf(await mirrorRegistrationsAt(c, h));
      },
      balances: (scripts, h) => this.balancesOf(scripts, h),
      clock: (h) => this.clock(h),
    };
    return pageOf(rows, tip, this.params, q);
  }

  async utxos(script: Buffer): ReturnType<RegistryView['utxos']> {
    const tip = await this.tipHeight();
    const { rows: [meta] } = await this.c.query<{ coins_height: number | null }>('SELECT coins_height FROM mirror_meta');
    if (meta?.coins_height !== tip) {
      throw new HttpError(503, 'coins_loading', 'the mirror is loading its coins (after a long catch-up or a deep reorg); retry in a moment');
    }
    const { rows } = await this.c.query<{ outpoint: Buffer; value: string; height: number; coinbase: boolean }>(
      'SELECT outpoint, value, height, coinbase FROM coins WHERE script = $1 AND spent_height IS NULL ORDER BY outpoint', [script.toString('hex')]);
    return rows.map((r) => scriptUtxo(r.outpoint, { value: BigInt(r.value), height: r.height, coinbase: r.coinbase }));
  }

  async explainTx(txid: string): ReturnType<RegistryView['explainTx']> {
    const { rows } = await this.c.query<{ vout: number; height: number; position: number; kind: Outcome['kind']; reason: string | null }>(
      'SELECT vout, height, position, kind, reason FROM outcomes WHERE txid = $1 ORDER BY vout', [txid]);
    return explainOutcomes(rows.map((r) => ({ vout: r.vout, height: r.height, txIndex: r.position, kind: r.kind, reason: r.reason })));
  }

  private async end(h: number): Promise<DiffEnd> {
    const roots = await this.roots(h);
    return { height: h, tip: await this.blockHash(h), root: roots.root, proofRoot: roots.proofRoot };
  }

  async proof(script: Buffer, height?: number): ReturnType<RegistryView['proof']> {
    const h = heightUpTo(await this.tipHeight(), height);
    const live = liveOf(await mirrorRegistrationsAt(this.c, h));
    const { tip, proofRoot } = await this.end(h);
    return proofFrom(live, { height: h, tip, proofRoot }, script);
  }

  async diff(from: number, to: number): ReturnType<RegistryView['diff']> {
    const ends = { from: await this.end(from), to: await this.end(to) };
    const balances = new Map([...await this.balancesAt(null, to)].map(([s, b]) => [Buffer.from(s, 'hex').toString('latin1'), b]));
    return diffOf(liveOf(await mirrorRegistrationsAt(this.c, from)), await mirrorRegistrationsAt(this.c, to), balances, ends, this.params);
  }

  exportAt(height?: number): ReturnType<RegistryView['exportAt']> {
    return mirrorExportAt(this.c, this.params, height);
  }

  async payoutTable(q: Parameters<RegistryView['payoutTable']>[0]): ReturnType<RegistryView['payoutTable']> {
    checkPayoutRequest(await this.tipHeight(), q);
    // Every registration's lifetime: the registrations table holds each one's ended height as of the tip.
    const { rows } = await this.c.query<{ first_height: number; first_index: number; ended_height: number | null; stake_script: string }>(
      'SELECT first_height, first_index, ended_height, stake_script FROM registrations WHERE ended_height IS NULL OR ended_height > $1', [q.from]);
    const lifetimes: LifetimeRow[] = rows.map((r) => ({
      firstHeight: r.first_height, firstIndex: r.first_index, endedHeight: r.ended_height ?? OPEN, script: r.stake_script,
    }));
    return tableOf(recipientsOf(lifetimes, this.params, q.from, q.to, q.weight ?? 'uptime'), this.params, q);
  }

  async search(query: string, limit: number): ReturnType<RegistryView['search']> {
    const tip = await this.tipHeight();
    const c = this.c;
    return searchOf<RegistrationRow>({
      async* candidates() {
        let from = { firstHeight: -1, firstIndex: -1 };
        for (;;) {
          const { rows: batch } = await c.query<RegistrationRow>(
            `SELECT * FROM registrations WHERE is_current AND (first_height, first_index) > ($1, $2)
              ORDER BY first_height, first_index LIMIT ${PAGE_BATCH}`, [from.firstHeight, from.firstIndex]);
          for (const r of batch) yield { script: Buffer.from(r.stake_script, 'hex'), key: r };
          if (batch.length < PAGE_BATCH) return;
          from = { firstHeight: batch[batch.length - 1]!.first_height, firstIndex: batch[batch.length - 1]!.first_index };
        }
      },
      registrations: async (rows) => rows.map(registrationOfRow),
      balances: (scripts, h) => this.balancesOf(scripts, h),
      clock: (h) => this.clock(h),
    }, tip, this.params, query, limit);
  }

  async balanceHistory(script: Buffer, limit: number): ReturnType<RegistryView['balanceHistory']> {
    const tip = await this.tipHeight();
    const { rows } = await this.c.query<{ height: number; balance: string }>(
      'SELECT height, balance FROM balances WHERE stake_script = $1 AND height <= $2 ORDER BY height DESC LIMIT $3', [script.toString('hex'), tip, limit + 1]);
    return balanceHistoryOf(rows, tip, limit);
  }

  /** Rejections with their outcome's kind, as the explorer views read them. */
  private async rejections(where: string, order: string, values: unknown[]): Promise<RejectedRow[]> {
    const { rows } = await this.c.query<{ height: number; position: number; vout: number; txid: string; reason: ReasonCode; kind: RejectedRow['kind'] }>(
      `SELECT j.height, j.position, j.vout, j.txid, j.reason, o.kind FROM rejections j LEFT JOIN outcomes o ON o.txid = j.txid AND o.vout = j.vout
        WHERE ${where} ORDER BY ${order}`, values);
    return rows.map((r) => ({ height: r.height, txIndex: r.position, vout: r.vout, txid: r.txid, reason: r.reason, kind: r.kind }));
  }

  async stakeRejections(script: Buffer): ReturnType<RegistryView['stakeRejections']> {
    const tip = await this.tipHeight();
    const { rows: [meta] } = await this.c.query<{ stake_rejections: boolean }>('SELECT stake_rejections FROM mirror_meta');
    const rows = await this.rejections('j.stake_script = $1 AND j.height <= $2', 'j.height, j.position, j.vout', [script.toString('hex'), tip]);
    return stakeRejectionsOf(rows, tip, meta?.stake_rejections ?? false);
  }

  async rejectedPage(q: Parameters<RegistryView['rejectedPage']>[0]): ReturnType<RegistryView['rejectedPage']> {
    const tip = await this.tipHeight();
    // Cursor parts reach 2^32 - 1, past an integer column: compared as bigint.
    return rejectedPageOf((before, reason, want) => this.rejections(
      `j.height <= $1 AND ($2::text IS NULL OR j.reason = $2) AND ($3::bigint IS NULL OR (j.height, j.position, j.vout) < ($3::bigint, $4::bigint, $5::bigint))`,
      `j.height DESC, j.position DESC, j.vout DESC LIMIT ${want}`,
      [tip, reason ?? null, before?.height ?? null, before?.txIndex ?? null, before?.vout ?? null],
    ), tip, q);
  }

  async payouts(from: number, to: number, minAge: number): ReturnType<RegistryView['payouts']> {
    if (from > to) throw new QueryError(`from (${from}) must not be above to (${to})`);
    heightUpTo(await this.tipHeight(), to);
    return payeesOf(await mirrorRegistrationsAt(this.c, to), this.params, from, to, minAge);
  }
}

/** A connection refused, broken, or closed by a server shutting down (SQLSTATE class 57). */
function isConnectionLoss(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('57')) return true;
  return err instanceof Error && !('severity' in err) && /Connection terminated|ECONNRESET|ECONNREFUSED|ENOENT|EPIPE|timeout/i.test(`${code ?? ''} ${err.message}`);
}

/** What a request gets while PostgreSQL is away: a 503 to retry, as the pool reconnects by itself. */
function unavailable(err: unknown): HttpError {
  const why = err instanceof Error ? ((err as NodeJS.ErrnoException).code ?? err.message) : String(err);
  return new HttpError(503, 'postgres_unavailable', `PostgreSQL does not answer (${why}); retry in a moment`);
}

export interface MirrorSource extends DataSource {
  readonly pool: pg.Pool;
  close(): Promise<void>;
}

/**
 * Opens the API's reads of the mirror at `url`: checks that PostgreSQL
 * answers, that the mirror's schema is this build's and that it is a mirror
 * of the chosen params, which `choose` picks knowing the mirror's network
 * (null for an empty mirror). `poolSize` connections serve the requests.
 */
export async function openMirrorSource(url: string, choose: (mirrorNetwork: string | null) => NetworkParams, opts: { poolSize?: number } = {}): Promise<MirrorSource> {
  // No JIT: its compile time (tens of ms) dwarfs the API's statements, which read a few index pages each.
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10, connectionTimeoutMillis: 10_000, application_name: 'nodereg-serve', options: '-c jit=off' });
  // An idle connection that breaks (PostgreSQL restarted) is dropped by the pool; the next request opens another.
  pool.on('error', () => undefined);
  let client: pg.PoolClient;
  let params: NetworkParams;
  try {
    client = await pool.connect();
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new PostgresUnavailableError(url, err);
  }
  try {
    const known = (await client.query<{ t: string | null }>("SELECT to_regclass('schema_migrations')::text AS t")).rows[0]?.t ?? null;
    const v = known === null ? null : (await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations')).rows[0]?.v ?? null;
    if (v === null) throw new QueryError('this database holds no nodereg mirror; build one with `nodereg mirror --db … --postgres …` or `nodereg index … --postgres …`');
    if (v !== MIRROR_SCHEMA_VERSION) throw new QueryError(`the mirror's schema is version ${v}, this nodereg's ${MIRROR_SCHEMA_VERSION}; run this nodereg's \`mirror\` or \`index --postgres\` on it first`);
    const meta = await readMeta(client);
    params = choose(meta?.network ?? null);
    if (meta && (meta.network !== params.name || meta.paramsHash !== paramsHash(params))) {
      throw new QueryError(`the mirror holds network ${meta.network} (params hash ${meta.paramsHash.slice(0, 12)}…), not ${params.name} (${paramsHash(params).slice(0, 12)}…); pass the mirror's --network and --params`);
    }
  } catch (err) {
    client.release();
    await pool.end().catch(() => undefined);
    throw err;
  }
  client.release();
  return {
    params,
    kind: 'postgres',
    pool,
    async read(fn) {
      const c = await pool.connect().catch((err: unknown) => {
        throw unavailable(err);
      });
      const session = new Session(c);
      let broken = false;
      try {
        const out = await fn(new MirrorView(session, params));
        if (session.begun) await c.query('COMMIT');
        return out;
      } catch (err) {
        if (isConnectionLoss(err)) broken = true;
        else if (session.begun) {
          await c.query('ROLLBACK').catch(() => {
            broken = true;
          });
        }
        throw isConnectionLoss(err) ? unavailable(err) : err;
      } finally {
        c.release(broken);
      }
    },
    close: () => pool.end(),
  };
}
