import type pg from 'pg';

/*
 * The mirror's tables (docs/schema.md, "The PostgreSQL mirror"). Migrations
 * are numbered and only ever appended: each runs once, in its own
 * transaction, and is recorded in schema_migrations.
 */

export const MIGRATIONS: readonly string[] = [
  // 1: the registry, per block.
  `
  CREATE TYPE registry_event AS ENUM ('registered', 'renewed', 'expired', 'lapsed');
  CREATE TYPE registration_status AS ENUM ('active', 'expired', 'lapsed');

  CREATE TABLE mirror_meta (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    network text NOT NULL,
    params_hash text NOT NULL,
    tip_height integer,
    tip_hash text,
    updated_at timestamptz NOT NULL DEFAULT now()
  );

  CREATE TABLE blocks (
    height integer PRIMARY KEY,
    hash text NOT NULL,
    registry_root text NOT NULL,
    proof_root text,
    utxo_muhash text
  );

  CREATE TABLE registrations (
    first_height integer NOT NULL,
    first_index integer NOT NULL,
    stake_script text NOT NULL,
    address text,
    status registration_status NOT NULL,
    first_txid text NOT NULL,
    tip_height integer NOT NULL,
    tip_txid text NOT NULL,
    timestamp bigint NOT NULL,
    renewals integer NOT NULL,
    expiry_height integer NOT NULL,
    ended_height integer,
    is_current boolean NOT NULL,
    PRIMARY KEY (first_height, first_index)
  );
  CREATE INDEX registrations_by_script ON registrations (stake_script);
  CREATE INDEX registrations_by_address ON registrations (address);
  CREATE INDEX registrations_current_by_status ON registrations (status, first_height, first_index) WHERE is_current;

  CREATE TABLE events (
    stake_script text NOT NULL,
    height integer NOT NULL,
    position integer,
    kind registry_event NOT NULL,
    txid text,
    first_height integer NOT NULL,
    first_index integer NOT NULL,
    timestamp bigint NOT NULL,
    expiry_height integer NOT NULL
  );
  CREATE UNIQUE INDEX events_by_script ON events (stake_script, height, (coalesce(position, 2147483647)), kind);
  CREATE INDEX events_by_height ON events (height);
  CREATE INDEX events_by_registration ON events (first_height, first_index);

  CREATE TABLE rejections (
    height integer NOT NULL,
    position integer NOT NULL,
    vout integer NOT NULL,
    txid text NOT NULL,
    reason text NOT NULL,
    PRIMARY KEY (height, position, vout)
  );
  CREATE INDEX rejections_by_txid ON rejections (txid);

  CREATE TABLE balances (
    stake_script text NOT NULL,
    height integer NOT NULL,
    balance bigint NOT NULL,
    PRIMARY KEY (stake_script, height)
  );
  CREATE INDEX balances_by_height ON balances (height);
  `,
  // 2: what the API needs to serve from the mirror alone (`nodereg serve --postgres`): each block's header time
  // and proof root, and every announcement's outcome. Rows mirrored before lack them, so the registry tables are
  // emptied and the tip unset: the next sync refills them from the index.
  `
  ALTER TABLE blocks ADD COLUMN time bigint;
  CREATE TYPE announcement_kind AS ENUM ('newnode', 'renewal');
  CREATE TABLE outcomes (
    txid text NOT NULL,
    vout integer NOT NULL,
    height integer NOT NULL,
    position integer NOT NULL,
    kind announcement_kind,
    reason text,
    PRIMARY KEY (txid, vout)
  );
  CREATE INDEX outcomes_by_height ON outcomes (height);
  TRUNCATE blocks, registrations, events, rejections, balances;
  UPDATE mirror_meta SET tip_height = NULL, tip_hash = NULL;
  `,
  // 3: the last routes from the mirror alone. The explorer views (search, a stake's balances and rejected attempts,
  // the rejected list): each rejection's stake script (the index's 'J' rows), whether the index keeps those, and
  // indexes for the pages. /v1/scripts/{stake}/utxos: the coins (the index's 'u' rows), with the height that spent
  // each kept a while so that a rewind can bring it back, and the height the coins stand at (coins_height).
  // A rejection mirrored before does not say its stake, and nothing in PostgreSQL does: the tables are emptied and
  // the tip unset, as in 2, and the next sync refills them from the index.
  `
  ALTER TABLE rejections ADD COLUMN stake_script text;
  CREATE INDEX rejections_by_script ON rejections (stake_script, height, position, vout) WHERE stake_script IS NOT NULL;
  CREATE INDEX rejections_by_reason ON rejections (reason, height, position, vout);
  CREATE INDEX registrations_current_first_seen ON registrations (first_height, first_index) WHERE is_current;
  ALTER TABLE mirror_meta ADD COLUMN stake_rejections boolean NOT NULL DEFAULT false;
  CREATE TABLE coins (
    outpoint bytea PRIMARY KEY,
    script text NOT NULL,
    value bigint NOT NULL,
    height integer NOT NULL,
    coinbase boolean NOT NULL,
    spent_height integer
  );
  CREATE INDEX coins_unspent_by_script ON coins (script, outpoint) WHERE spent_height IS NULL;
  CREATE INDEX coins_by_height ON coins (height);
  CREATE INDEX coins_by_spent_height ON coins (spent_height) WHERE spent_height IS NOT NULL;
  ALTER TABLE mirror_meta ADD COLUMN coins_height integer DEFAULT -1, ADD COLUMN coins_since integer NOT NULL DEFAULT -1;
  TRUNCATE blocks, registrations, events, rejections, balances, outcomes;
  UPDATE mirror_meta SET tip_height = NULL, tip_hash = NULL;
  `,
];

/** The highest migration this build knows. */
export const MIRROR_SCHEMA_VERSION = MIGRATIONS.length;

export class MirrorSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MirrorSchemaError';
  }
}

/**
 * Brings the database's schema up to this build's, one migration per
 * transaction. A schema newer than this build is refused: an older nodereg
 * must not write rows it does not understand.
 */
export async function migrate(client: pg.ClientBase): Promise<number[]> {
  await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
  const done = new Set(rows.map((r) => r.version));
  const newest = rows.length > 0 ? rows[rows.length - 1]!.version : 0;
  if (newest > MIRROR_SCHEMA_VERSION) {
    throw new MirrorSchemaError(`the mirror's schema is version ${newest}, newer than this nodereg's ${MIRROR_SCHEMA_VERSION}; upgrade nodereg`);
  }
  const applied: number[] = [];
  for (let v = 1; v <= MIRROR_SCHEMA_VERSION; v++) {
    if (done.has(v)) continue;
    await client.query('BEGIN');
    try {
      await client.query(MIGRATIONS[v - 1]!);
      await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v]);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    applied.push(v);
  }
  return applied;
}
