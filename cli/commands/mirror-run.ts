import type pg from 'pg';
import { QueryError } from '../../indexer/read/queries.js';
import { connectPostgres, PostgresUnavailableError } from '../../indexer/mirror/connect.js';
import { MirrorSchemaError } from '../../indexer/mirror/schema.js';
import { MirrorBusyError, MirrorMismatchError, prepareMirror, syncMirror } from '../../indexer/mirror/sync.js';
import { printJson, UserError, type NetworkArgs } from '../common.js';
import { asUserError, openIndexForRead } from '../index-access.js';
import { Progress } from '../progress.js';

/* What `nodereg mirror` does, loaded only when it runs. */

export interface MirrorArgs extends NetworkArgs {
  db: string;
  postgres: string;
  postgresRebuild: boolean;
  batch: number;
  json: boolean;
}

/** The mirror's expected failures as one-line CLI errors; anything else stays a bug. */
export function mirrorUserError(err: unknown): unknown {
  if (err instanceof PostgresUnavailableError || err instanceof MirrorMismatchError || err instanceof MirrorBusyError || err instanceof MirrorSchemaError) {
    return new UserError(err.message);
  }
  // A server-side refusal (permissions, a full disk, a dropped connection) names its own cause.
  if (err instanceof Error && 'severity' in err && 'code' in err) return new UserError(`PostgreSQL: ${err.message} (SQLSTATE ${String((err as { code: unknown }).code)})`);
  if (err instanceof Error && /Connection terminated|ECONNRESET|EPIPE/.test(err.message)) return new UserError(`PostgreSQL went away: ${err.message}; run the same command again to resume`);
  return err;
}

export async function runMirror(args: MirrorArgs): Promise<void> {
  const { db, params } = await openIndexForRead(args.db, args);
  const progress = new Progress();
  let client: pg.Client | null = null;
  try {
    client = await connectPostgres(args.postgres);
    await prepareMirror(client, params, { rebuild: args.postgresRebuild });
    let started = false;
    const r = await syncMirror(client, db, params, {
      blocksPerTx: args.batch,
      rebuild: args.postgresRebuild,
      onProgress: (height, target) => {
        if (!started) progress.start('mirroring', target + 1, 'blocks');
        started = true;
        progress.update(height + 1);
      },
    });
    progress.stop();
    // Fresh statistics after a bulk load, so readers' plans use the indexes before autovacuum gets to it.
    if (r.applied > 0) await client.query('ANALYZE');
    if (args.json) {
      printJson({ network: params.name, before: r.before, rewoundTo: r.rewoundTo, tip: r.tip, blocks: r.applied });
    } else {
      const rewound = r.rewoundTo === null ? '' : `rewound from ${r.before} to ${r.rewoundTo}, then `;
      process.stdout.write(r.tip === null ? 'the index is empty: nothing to mirror\n' : `mirror ${rewound}at height ${r.tip.height} (${r.tip.hash}): ${r.applied} block(s) applied\n`);
    }
  } catch (err) {
    progress.stop();
    if (err instanceof QueryError) throw new UserError(err.message);
    throw asUserError(mirrorUserError(err), args.db);
  } finally {
    await client?.end().catch(() => undefined);
    await db.close();
  }
}
