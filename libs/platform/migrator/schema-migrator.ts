import type { ClientBase } from 'pg';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { loadMigrations, type MigrationSet, type SqlMigration } from './sql-migrations.loader';
import { callsTenantTableHelper, DROP_HELPER_SQL, dropTenantTableHelper, HELPER_SQL, installTenantTableHelper } from './tenant-table.helper';

const IDENT = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertIdentifier(kind: string, value: string): string {
  if (!IDENT.test(value)) throw new Error(`invalid ${kind} identifier ${JSON.stringify(value)}`);
  return value;
}

export interface MigrateTarget {
  /** Schema the set runs into; created when missing. */
  schema: string;
  set: MigrationSet;
  /** Role granted DML on the schema's tables; it never owns them. */
  grantTo: string;
  /** The set to apply; defaults to every file of `set` (the fleet runner loads them once). */
  migrations?: SqlMigration[];
  /** Called after each step commits (so a later failure still knows what landed). */
  onApplied?: (m: AppliedMigration) => void;
  /**
   * A target with no ledger yet (a home onboarding just created) gets every step in one
   * transaction sent as one string — one round trip instead of ~9 per step. Any failure rolls it
   * all back and the steps run one by one as usual. Off unless asked for (TENANT_HOME_MIGRATOR).
   */
  batchFresh?: boolean;
}

export interface AppliedMigration {
  version: string;
  name: string;
  durationMs: number;
}

export class MigrationFailedError extends Error {
  constructor(
    readonly version: string,
    readonly migrationName: string,
    readonly cause: unknown,
  ) {
    super(`migration ${version}_${migrationName} failed: ${(cause as Error)?.message ?? String(cause)}`);
    this.name = 'MigrationFailedError';
  }
}

/** An applied migration whose file no longer has the content it was applied with. */
export interface DriftedMigration {
  version: string;
  name: string;
  /** sha256 recorded in the target's ledger when the step ran. */
  appliedChecksum: string;
  /** sha256 of the file as it is now. */
  fileChecksum: string;
}

/**
 * Applied steps whose file changed since (checksum drift). A target with drift runs a history that
 * the files no longer describe: a new target would get different SQL than the ones already there.
 */
export function driftOf(applied: Map<string, string>, migrations: readonly SqlMigration[]): DriftedMigration[] {
  return migrations
    .filter((m) => applied.has(m.version) && applied.get(m.version) !== m.checksum)
    .map((m) => ({ version: m.version, name: m.name, appliedChecksum: applied.get(m.version)!, fileChecksum: m.checksum }));
}

export class MigrationDriftError extends Error {
  constructor(
    readonly schema: string,
    readonly drifted: DriftedMigration[],
  ) {
    super(
      `${drifted.map((d) => `migration ${d.version}_${d.name}`).join(', ')} changed after it was applied to ${schema}: ` +
        `restore the file as it was applied and put the change in a new migration, or, if the change is harmless ` +
        `(a comment, whitespace), record the file as applied with 'npm run migrate -- repair --target <target> --yes'`,
    );
    this.name = 'MigrationDriftError';
  }
}

const NO_TRANSACTION = /^\s*--\s*strata:no-transaction\b/m;

/** Versions recorded in a target's ledger, or [] when the target has none yet. */
export async function appliedVersions(client: ClientBase, schema: string): Promise<Map<string, string>> {
  const s = assertIdentifier('schema', schema);
  const exists = await client.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [`${escapeIdentifier(s)}.strata_migrations`]);
  if (!exists.rows[0].ok) return new Map();
  const rows = await client.query<{ version: string; checksum: string }>(
    `SELECT version, checksum FROM ${escapeIdentifier(s)}.strata_migrations ORDER BY version`,
  );
  return new Map(rows.rows.map((r) => [r.version, r.checksum]));
}

/**
 * Applies a migration set to one schema over an owner connection. Hand-written rather than
 * TypeORM's runner because the same SQL must run into N schemas and M databases with one ledger
 * per target; TypeORM keeps one ledger per DataSource and would need a DataSource per target.
 *
 * Each migration runs in its own transaction together with its ledger row, under a per-target
 * advisory lock, re-checking the ledger inside the lock: a killed runner leaves the step either
 * applied and recorded or not at all, and two runners never apply the same step twice. A file
 * starting with `-- strata:no-transaction` (e.g. CREATE INDEX CONCURRENTLY) runs outside one.
 */
export async function migrateSchema(client: ClientBase, target: MigrateTarget): Promise<AppliedMigration[]> {
  const schema = escapeIdentifier(assertIdentifier('schema', target.schema));
  const role = escapeIdentifier(assertIdentifier('role', target.grantTo));
  const lockKey = escapeLiteral(`strata:migrate:${target.set}:${target.schema}`);
  const migrations = target.migrations ?? loadMigrations(target.set);

  const done = await appliedVersions(client, target.schema);
  const pending = migrations.filter((m) => !done.has(m.version));
  const drifted = driftOf(done, migrations);
  if (drifted.length) throw new MigrationDriftError(target.schema, drifted);
  if (pending.length === 0) return [];

  if (done.size === 0 && target.batchFresh && pending.every((m) => !NO_TRANSACTION.test(m.sql))) {
    const batched = await applyFreshBatch(client, schema, role, target.grantTo, lockKey, pending);
    if (batched) {
      for (const m of batched) target.onApplied?.(m);
      return batched;
    }
  }
  if (done.size === 0) {
    await client.query(
      `CREATE SCHEMA IF NOT EXISTS ${schema};
       CREATE TABLE IF NOT EXISTS ${schema}.strata_migrations (
         version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
         started_at timestamptz NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
         duration_ms integer NOT NULL)`,
    );
  }
  const applied: AppliedMigration[] = [];
  for (const migration of pending) {
    const ran = await applyOne(client, schema, role, target.grantTo, lockKey, migration);
    if (ran) {
      applied.push(ran);
      target.onApplied?.(ran);
    }
  }
  return applied;
}

/**
 * A `strata:no-transaction` step: its statements under a session-level search_path, which needs a
 * session. Behind a pooler in transaction mode every statement here may run on another server
 * connection (the step on a backend whose search_path is not the target's), so the backend is read
 * before and after, and a step that did not stay on one backend fails — fix: give the pool a direct
 * address (`directHost`/`directPort`), which migrations use. The step is idempotent, so a rerun there is safe.
 */
async function runOutsideTransaction(client: ClientBase, schema: string, sql: string, helpers: boolean): Promise<void> {
  const before = await client.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid, set_config('search_path', $1, false)`, [schema]);
  let after: number | undefined;
  try {
    if (helpers) await installTenantTableHelper(client);
    await client.query(sql);
    if (helpers) await dropTenantTableHelper(client);
  } finally {
    after = (await client.query<{ pid: number }>(`SELECT pg_backend_pid() AS pid`).catch(() => undefined))?.rows[0]?.pid;
    await client.query(`RESET search_path`);
  }
  if (after !== before.rows[0].pid) {
    throw new Error(
      `a strata:no-transaction step needs one session, but its statements ran on server connections ${before.rows[0].pid} and ${after ?? '?'}: ` +
        'migrations are behind a transaction-mode connection pooler; give the pool a direct address (directHost/directPort)',
    );
  }
}

async function applyOne(
  client: ClientBase,
  schema: string,
  role: string,
  roleName: string,
  lockKey: string,
  migration: SqlMigration,
): Promise<AppliedMigration | null> {
  const started = new Date();
  const transactional = !NO_TRANSACTION.test(migration.sql);
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`);
    const done = await client.query(`SELECT 1 FROM ${schema}.strata_migrations WHERE version = $1`, [migration.version]);
    if (done.rowCount) {
      // Another runner applied it while we waited for the lock.
      await client.query('ROLLBACK');
      return null;
    }
    // strata.app_role: a step that creates objects outside its target schema (the placement fence)
    // grants them to the app role by name, which the SQL file cannot know.
    await client.query(`SELECT set_config('search_path', $1, true), set_config('strata.app_role', $2, true)`, [schema, roleName]);
    const helpers = callsTenantTableHelper(migration.sql);
    if (transactional) {
      // The helpers live in this transaction only: behind a pooler the next one may run elsewhere.
      if (helpers) await installTenantTableHelper(client);
      await client.query(migration.sql);
      if (helpers) await dropTenantTableHelper(client);
    } else {
      // Postgres refuses these inside a transaction block: run them on their own (under the
      // session's search_path), then record them. They must be idempotent (IF NOT EXISTS).
      await client.query('COMMIT');
      await runOutsideTransaction(client, schema, migration.sql, helpers);
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`);
    }
    // Grants travel with the step: the app role sees a new table exactly when it exists.
    // The same tables as GRANT … ON ALL TABLES IN SCHEMA (relkinds r, p, v, m, f), found through
    // pg_depend's index on the schema: ON ALL TABLES heap-scans the whole pg_class of the database
    // once per relkind, so with N bridge schemas in a database each grant cost O(N) and a fleet
    // migration O(N²) (bench:migrate, 3,000 schemas: 146 ms per target, 67 % of the run; 4.6 ms this way).
    await client.query(grantsSql(schema, role));
    const durationMs = Date.now() - started.getTime();
    await client.query(
      `INSERT INTO ${schema}.strata_migrations (version, name, checksum, started_at, duration_ms) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (version) DO NOTHING`,
      [migration.version, migration.name, migration.checksum, started, durationMs],
    );
    await client.query('COMMIT');
    return { version: migration.version, name: migration.name, durationMs };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw new MigrationFailedError(migration.version, migration.name, err);
  }
}

/**
 * Grants travel with the step: the app role sees a new table exactly when it exists. The same
 * tables as GRANT … ON ALL TABLES IN SCHEMA, found through pg_depend (see applyOne).
 */
function grantsSql(schema: string, role: string): string {
  return `GRANT USAGE ON SCHEMA ${schema} TO ${role};
       DO $grant$ DECLARE tables text; BEGIN
         SELECT string_agg(format('%I.%I', n.nspname, c.relname), ', ') INTO tables
           FROM pg_depend d JOIN pg_class c ON c.oid = d.objid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE d.refclassid = 'pg_namespace'::regclass AND d.refobjid = ${escapeLiteral(schema)}::regnamespace AND d.refobjsubid = 0
            AND d.classid = 'pg_class'::regclass AND c.relkind IN ('r', 'p', 'v', 'm', 'f');
         IF tables IS NOT NULL THEN EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ' || tables || ' TO ' || ${escapeLiteral(role)}; END IF;
       END $grant$;
       REVOKE ALL ON ${schema}.strata_migrations FROM ${role};
       GRANT SELECT ON ${schema}.strata_migrations TO ${role}`;
}

/**
 * Every pending step of a fresh target in one transaction, sent as one string: parameters cannot
 * be bound there, so only values this code produced are inlined (identifiers checked and quoted,
 * versions, names and checksums from the migration files as literals). Returns null after rolling
 * back when anything failed (another runner got there first, a step broke): the caller then runs
 * the steps one by one, which re-checks the ledger and reports the failing step by name.
 */
async function applyFreshBatch(
  client: ClientBase,
  schema: string,
  role: string,
  roleName: string,
  lockKey: string,
  pending: SqlMigration[],
): Promise<AppliedMigration[] | null> {
  const parts = [
    'BEGIN',
    `SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`,
    `CREATE SCHEMA IF NOT EXISTS ${schema}`,
    `CREATE TABLE ${schema}.strata_migrations (
       version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
       started_at timestamptz NOT NULL, applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
       duration_ms integer NOT NULL)`,
  ];
  for (const m of pending) {
    const helpers = callsTenantTableHelper(m.sql);
    parts.push(
      `SELECT set_config('search_path', ${escapeLiteral(schema)}, true), set_config('strata.app_role', ${escapeLiteral(roleName)}, true)`,
      `INSERT INTO ${schema}.strata_migrations (version, name, checksum, started_at, duration_ms)
       VALUES (${escapeLiteral(m.version)}, ${escapeLiteral(m.name)}, ${escapeLiteral(m.checksum)}, clock_timestamp(), 0)`,
      ...(helpers ? [HELPER_SQL] : []),
      m.sql,
      ...(helpers ? [DROP_HELPER_SQL] : []),
      grantsSql(schema, role),
      `UPDATE ${schema}.strata_migrations SET duration_ms = (extract(epoch FROM clock_timestamp() - started_at) * 1000)::int,
              applied_at = clock_timestamp() WHERE version = ${escapeLiteral(m.version)}`,
    );
  }
  parts.push('COMMIT');
  try {
    // A newline before each ';': a file may end in a line comment.
    await client.query(parts.join('\n;\n'));
  } catch {
    await client.query('ROLLBACK').catch(() => undefined);
    return null;
  }
  const rows = await client.query<{ version: string; name: string; duration_ms: number }>(
    `SELECT version, name, duration_ms FROM ${schema}.strata_migrations ORDER BY version`,
  );
  return rows.rows.map((r) => ({ version: r.version, name: r.name, durationMs: r.duration_ms }));
}
