import type { ClientBase } from 'pg';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { loadMigrations, type MigrationSet, type SqlMigration } from './sql-migrations.loader';

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
}

export interface AppliedMigration {
  version: string;
  name: string;
  durationMs: number;
}

/**
 * Applies a migration set to one schema over an owner connection. Hand-written rather than
 * TypeORM's runner because the same SQL must run into N schemas and M databases with one ledger
 * per target; TypeORM keeps one ledger per DataSource and would need a DataSource per target.
 * Each migration runs in its own transaction under a per-target advisory lock, with its ledger row.
 */
export async function migrateSchema(client: ClientBase, target: MigrateTarget): Promise<AppliedMigration[]> {
  const schema = escapeIdentifier(assertIdentifier('schema', target.schema));
  const role = escapeIdentifier(assertIdentifier('role', target.grantTo));
  const lockKey = escapeLiteral(`strata:migrate:${target.set}:${target.schema}`);
  const applied: AppliedMigration[] = [];
  const migrations = loadMigrations(target.set);

  await client.query(
    `CREATE SCHEMA IF NOT EXISTS ${schema};
     CREATE TABLE IF NOT EXISTS ${schema}.strata_migrations (
       version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
       applied_at timestamptz NOT NULL DEFAULT now(), duration_ms integer NOT NULL)`,
  );
  for (const migration of migrations) {
    const ran = await applyOne(client, schema, lockKey, migration);
    if (ran) applied.push(ran);
  }
  await client.query(
    `BEGIN;
     SELECT pg_advisory_xact_lock(hashtext(${lockKey}));
     GRANT USAGE ON SCHEMA ${schema} TO ${role};
     GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO ${role};
     REVOKE ALL ON ${schema}.strata_migrations FROM ${role};
     GRANT SELECT ON ${schema}.strata_migrations TO ${role};
     COMMIT`,
  );
  return applied;
}

async function applyOne(
  client: ClientBase,
  schema: string,
  lockKey: string,
  migration: SqlMigration,
): Promise<AppliedMigration | null> {
  const started = Date.now();
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(hashtext(${lockKey}))`);
    await client.query(`SELECT set_config('search_path', $1, true)`, [schema]);
    const done = await client.query<{ checksum: string }>(
      `SELECT checksum FROM ${schema}.strata_migrations WHERE version = $1`,
      [migration.version],
    );
    if (done.rowCount) {
      await client.query('ROLLBACK');
      if (done.rows[0].checksum !== migration.checksum) {
        throw new Error(`migration ${migration.version}_${migration.name} changed after it was applied to ${schema}`);
      }
      return null;
    }
    await client.query(migration.sql);
    const durationMs = Date.now() - started;
    await client.query(
      `INSERT INTO ${schema}.strata_migrations (version, name, checksum, duration_ms) VALUES ($1, $2, $3, $4)`,
      [migration.version, migration.name, migration.checksum, durationMs],
    );
    await client.query('COMMIT');
    return { version: migration.version, name: migration.name, durationMs };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
