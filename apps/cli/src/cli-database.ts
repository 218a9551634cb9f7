import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';

/** A database the CLI cannot reach or find; the message says what to do. */
export class CliDatabaseError extends Error {}

export interface CliDatabase {
  /** The environment to load the config from: `env` itself, or a copy with the embedded defaults filled in. */
  env: NodeJS.ProcessEnv;
  /** Set when DATABASE_URL was unset and the embedded database of `npm start` is used. */
  embedded?: { host: string; port: number; secretsFile: string };
}

interface DevSecrets {
  ownerPassword: string;
  appPassword: string;
  controlPassword?: string;
  jwtSecret: string;
}

/** Whether something accepts TCP connections on host:port (within `timeoutMs`). */
function listening(host: string, port: number, timeoutMs = 1500): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/**
 * The database an operator CLI talks to. DATABASE_URL when set; otherwise the embedded PostgreSQL
 * that `npm start` runs (apps/api/src/embedded-database.ts), found the same way the worker finds
 * it: the secrets in `.data/dev-secrets.json` (STRATA_DATA_DIR) and EMBEDDED_PG_PORT (54329).
 * Fills DATABASE_URL, DB_APP_PASSWORD, DB_CONTROL_PASSWORD and AUTH_JWT_SECRET (unless set) in a
 * copy of `env`. It never starts that server: two processes must not own one data directory.
 */
export async function resolveCliDatabase(env: NodeJS.ProcessEnv, cwd = process.cwd()): Promise<CliDatabase> {
  if (env.DATABASE_URL) return { env };
  const dir = resolve(cwd, env.STRATA_DATA_DIR ?? '.data');
  const secretsFile = join(dir, 'dev-secrets.json');
  if (!existsSync(secretsFile)) {
    throw new CliDatabaseError(`DATABASE_URL is not set and no embedded database was found (${secretsFile}): set DATABASE_URL, or start the API first (npm start)`);
  }
  const s = JSON.parse(readFileSync(secretsFile, 'utf8')) as DevSecrets;
  const host = '127.0.0.1';
  const port = Number(env.EMBEDDED_PG_PORT ?? 54329);
  if (!(await listening(host, port))) {
    throw new CliDatabaseError(`DATABASE_URL is not set and the embedded PostgreSQL (${host}:${port}) is not running: start the API first (npm start), or set DATABASE_URL`);
  }
  const filled: NodeJS.ProcessEnv = { ...env };
  filled.DATABASE_URL = `postgres://postgres:${encodeURIComponent(s.ownerPassword)}@${host}:${port}/strata`;
  filled.DB_APP_PASSWORD ??= s.appPassword;
  filled.DB_CONTROL_PASSWORD ??= s.controlPassword ?? s.appPassword;
  filled.AUTH_JWT_SECRET ??= s.jwtSecret;
  return { env: filled, embedded: { host, port, secretsFile } };
}
