import { Client } from 'pg';
import type { StrataConfig } from '#strata/common';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { appliedVersions, assertIdentifier, migrateSchema } from './schema-migrator';
import { latestVersion } from './sql-migrations.loader';

export const CONTROL_SCHEMA = 'control';
// The schema of pool homes and silo databases: the tiers' knowledge, in libs/platform/tenancy.
export { SHARED_SCHEMA } from '#strata/tenancy/platform';
import { SHARED_SCHEMA } from '#strata/tenancy/platform';

export interface DatabaseBootstrapOptions {
  /** Owner connection to the control-plane database (DATABASE_URL). */
  ownerUrl: string;
  /** A connection pooler in front of ownerUrl's server (DATABASE_POOLED_URL): the default pools' units of work go through it. */
  pooledUrl?: string;
  /** Data-plane role (tenant tables). */
  appRole: string;
  appPassword?: string;
  /** Control-plane role; defaults to `<appRole>_control` like DB_CONTROL_USER. */
  controlRole?: string;
  controlPassword?: string;
}

/** Bootstrap options from the app's configuration (owner URL, both roles and their passwords). */
export function bootstrapOptionsFrom(config: StrataConfig): DatabaseBootstrapOptions {
  return {
    ownerUrl: config.databaseUrl,
    pooledUrl: config.databasePooledUrl,
    appRole: config.appDbUser,
    appPassword: config.appDbPassword,
    controlRole: config.controlDbUser,
    controlPassword: config.controlDbPassword,
  };
}

/**
 * Idempotent first-run setup of a server: the data-plane and control-plane roles (NOSUPERUSER,
 * NOBYPASSRLS, own nothing, each granted only its own schemas),
 * the control-plane schema, default pools on the same server, and the pool tier's shared schema.
 */
export async function bootstrapDatabase(opts: DatabaseBootstrapOptions): Promise<void> {
  const role = assertIdentifier('role', opts.appRole);
  const controlRole = assertIdentifier('role', opts.controlRole ?? `${opts.appRole}_control`);
  const client = new Client({ connectionString: opts.ownerUrl });
  await client.connect();
  try {
    await ensureAppRole(client, role, opts.appPassword);
    await ensureAppRole(client, controlRole, opts.controlPassword ?? opts.appPassword);
    await migrateSchema(client, { schema: CONTROL_SCHEMA, set: 'control', grantTo: controlRole });
    await seedDefaultPools(client, opts.ownerUrl, opts.pooledUrl);
    // Only a fresh server's shared schema is created here, at the current version. Later tenant
    // migrations reach it through the fleet runner like every other target (canary, central
    // ledger, per-target report): `migrate up --canary x` and an API start must not migrate the
    // pool's shared schema — every pool tenant's data — on the side, nor fail on it.
    if ((await appliedVersions(client, SHARED_SCHEMA)).size === 0) {
      await migrateSchema(client, { schema: SHARED_SCHEMA, set: 'tenant', grantTo: role });
      await client.query(
        `UPDATE ${CONTROL_SCHEMA}.pools SET schema_version = $1 WHERE kind = 'pool' AND database = current_database() AND schema_version < $1`,
        [latestVersion('tenant')],
      );
    }
  } finally {
    await client.end();
  }
}

export async function ensureAppRole(client: Client, role: string, password?: string): Promise<void> {
  const ident = escapeIdentifier(assertIdentifier('role', role));
  const pw = password ? `PASSWORD ${escapeLiteral(password)}` : '';
  // pg_advisory_xact_lock: parallel bootstraps (test workers) must not race on CREATE ROLE.
  await client.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtext('strata:app-role'));
    DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ${escapeLiteral(role)}) THEN
        CREATE ROLE ${ident} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE ${pw};
      ELSE
        ALTER ROLE ${ident} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE ${pw};
      END IF;
    END $$;
    ${ROLE_BACKSTOPS.map(([name, value]) => backstopSql(role, name, value)).join('\n')}
    COMMIT`);
}

/**
 * Server-side backstops on the app and control roles: whatever a bug or a stuck client does, no
 * statement runs, waits for a lock, or sits in an open transaction forever on a shared server. Set
 * only where the role has no value yet, so an operator's `ALTER ROLE … SET` stays.
 */
export const ROLE_BACKSTOPS: ReadonlyArray<[name: string, value: string]> = [
  ['statement_timeout', '60s'],
  ['lock_timeout', '10s'],
  ['idle_in_transaction_session_timeout', '30s'],
];

function backstopSql(role: string, name: string, value: string): string {
  return `DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                      WHERE r.rolname = ${escapeLiteral(role)} AND s.setdatabase = 0
                        AND EXISTS (SELECT 1 FROM unnest(s.setconfig) c WHERE c LIKE ${escapeLiteral(`${name}=%`)})) THEN
        ALTER ROLE ${escapeIdentifier(role)} SET ${name} = ${escapeLiteral(value)};
      END IF;
    END $$;`;
}

const addressOf = (u: string): { host: string; port: number } => {
  const url = new URL(u);
  return { host: url.hostname || '127.0.0.1', port: Number(url.port || 5432) };
};

/**
 * The default pools on DATABASE_URL's server, created once. Their addresses follow the
 * configuration at every start: with DATABASE_POOLED_URL units of work connect through the pooler
 * (host/port) and session work to DATABASE_URL's address (direct), without it both are DATABASE_URL's.
 * Only default pools still on that server and database are re-pointed, never one an operator moved.
 */
async function seedDefaultPools(client: Client, ownerUrl: string, pooledUrl: string | undefined): Promise<void> {
  const server = addressOf(ownerUrl);
  const data = pooledUrl ? addressOf(pooledUrl) : server;
  const direct = pooledUrl ? server : { host: null, port: null };
  const database = decodeURIComponent(new URL(ownerUrl).pathname.replace(/^\//, '')) || 'postgres';
  await client.query(
    `INSERT INTO ${CONTROL_SCHEMA}.pools AS p (id, kind, host, port, database, is_default, direct_host, direct_port) VALUES
       ('main-pool', 'pool', $1, $2, $3, true, $4, $5),
       ('main-bridge', 'bridge', $1, $2, $3, true, $4, $5),
       ('main-silo', 'silo', $1, $2, $3, true, $4, $5)
     ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port, direct_host = EXCLUDED.direct_host, direct_port = EXCLUDED.direct_port
      WHERE p.database = EXCLUDED.database AND coalesce(p.direct_host, p.host) = $6 AND coalesce(p.direct_port, p.port) = $7
        AND (p.host, p.port, p.direct_host, p.direct_port) IS DISTINCT FROM (EXCLUDED.host, EXCLUDED.port, EXCLUDED.direct_host, EXCLUDED.direct_port)`,
    [data.host, data.port, database, direct.host, direct.port, server.host, server.port],
  );
}
