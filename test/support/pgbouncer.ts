import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { freePort } from './extra-postgres';

/**
 * A PgBouncer in transaction mode in front of a PostgreSQL server, started by the test on a free
 * port of 127.0.0.1 (tests that put the app's data pools behind a pooler). `scripts/ensure-services.sh`
 * installs the Debian package when it is missing; when it is still missing the test fails saying so
 * (never skips: a pooler regression must not pass silently).
 */
export interface PgBouncer {
  host: '127.0.0.1';
  port: number;
  /** A URL through the pooler for `user` (no password: trust) to `database`. */
  url(database: string, user?: string): string;
  /** Admin console `RECONNECT`: every server connection is closed once released and opened anew. */
  reconnect(): Promise<void>;
  /** Admin console `SHOW <what>` rows (POOLS, SERVERS, STATS …). */
  show(what: string): Promise<Array<Record<string, unknown>>>;
  /** The last lines PgBouncer logged (to explain a failure). */
  log(): string;
  /** Stops the pooler (SIGINT: immediate shutdown) and deletes its files. Idempotent. */
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** The server behind it. */
  upstream: { host: string; port: number };
  /** Roles that may log in through it (trust: PgBouncer still wants them listed). `postgres` is always added (admin console). */
  users: string[];
  /** Server connections per database/user pair (default 3: small, so clients share them). */
  poolSize?: number;
  /** Seconds a server connection lives before it is closed when released (default 1: frequent renewal). */
  serverLifetime?: number;
  /** Seconds an idle server connection is kept (default 1). */
  serverIdleTimeout?: number;
}

const HOST = '127.0.0.1' as const;
const ADMIN = 'postgres';
const READY_TIMEOUT_MS = 15_000;

/** The pgbouncer binary, or a clear failure: the test needs it and CI installs it. */
export function pgbouncerBinary(): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    if (existsSync(join(dir, 'pgbouncer'))) return join(dir, 'pgbouncer');
  }
  const which = spawnSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' });
  if (which.status === 0 && which.stdout.trim()) return which.stdout.trim();
  throw new Error(
    'pgbouncer is not installed: this test runs the app behind PgBouncer in transaction mode. ' +
      'Install it (apt-get install pgbouncer) or run bash scripts/test.sh, which installs it.',
  );
}

/** PgBouncer refuses to run as root: then it runs as the OS user `postgres`, as PostgreSQL does. */
function runAs(): { uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const id = (flag: string) => spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) throw new Error('running as root, but there is no OS user postgres to run pgbouncer as (useradd postgres)');
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function startPgBouncer(opts: PgBouncerOptions): Promise<PgBouncer> {
  const bin = pgbouncerBinary();
  const ids = runAs();
  const dir = mkdtempSync(join(resolve(tmpdir()), 'strata-pgbouncer-'));
  const users = [...new Set([ADMIN, ...opts.users])];
  let child: ChildProcess | undefined;
  let tail = '';
  let port = 0;

  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    chmodSync(file, 0o644);
    return file;
  };
  const cleanup = () => rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGINT');
    const timer = setTimeout(() => c.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const onExit = () => child?.kill('SIGKILL');
  process.once('exit', onExit);

  const admin = async <T>(sql: string, read: (rows: Array<Record<string, unknown>>) => T): Promise<T> => {
    const c = new Client({ host: HOST, port, user: ADMIN, database: 'pgbouncer', connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      // No parameters: the simple protocol, the only one the admin console speaks.
      const r = await c.query(sql);
      return read(r.rows ?? []);
    } finally {
      await c.end().catch(() => undefined);
    }
  };

  try {
    if (ids.uid !== undefined) chownSync(dir, ids.uid, ids.gid!);
    const userlist = write('userlist.txt', users.map((u) => `"${u}" ""`).join('\n') + '\n');
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      const ini = write(
        'pgbouncer.ini',
        [
          '[databases]',
          // Every database of the server, including silo databases created while it runs.
          `* = host=${opts.upstream.host} port=${opts.upstream.port}`,
          '[pgbouncer]',
          `listen_addr = ${HOST}`,
          `listen_port = ${port}`,
          'unix_socket_dir =',
          'auth_type = trust',
          `auth_file = ${userlist}`,
          `admin_users = ${ADMIN}`,
          'pool_mode = transaction',
          `default_pool_size = ${opts.poolSize ?? 3}`,
          'max_client_conn = 2000',
          `server_lifetime = ${opts.serverLifetime ?? 1}`,
          `server_idle_timeout = ${opts.serverIdleTimeout ?? 1}`,
          'server_login_retry = 1',
          // pg and TypeORM send only parameters PgBouncer tracks; these are what other clients send.
          'ignore_startup_parameters = extra_float_digits,options',
          `pidfile = ${join(dir, 'pgbouncer.pid')}`,
          'logfile =',
          'log_connections = 0',
          'log_disconnections = 0',
          '',
        ].join('\n'),
      );
      tail = '';
      const c = spawn(bin, [ini], { ...ids, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, stdio: ['ignore', 'pipe', 'pipe'] });
      child = c;
      let exited: string | undefined;
      // The admin console's own RECONNECTs would drown what explains a failure.
      const keep = (d: Buffer) => {
        const lines = d.toString('utf8').split('\n').filter((l) => !l.includes('RECONNECT command issued'));
        tail = (tail + lines.join('\n')).slice(-20000);
      };
      c.stdout!.on('data', keep);
      c.stderr!.on('data', keep);
      c.once('error', (err) => (exited = err.message));
      c.once('exit', (code, signal) => (exited ??= `exited (${code ?? signal})`));
      const deadline = Date.now() + READY_TIMEOUT_MS;
      let ready = false;
      while (!ready) {
        if (exited) break;
        try {
          await admin('SHOW VERSION', () => undefined);
          ready = true;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`pgbouncer on port ${port} not ready after ${READY_TIMEOUT_MS} ms: ${(err as Error).message}; ${tail}`);
          await sleep(50);
        }
      }
      if (ready) break;
      await kill();
      const taken = /Address already in use|bind/i.test(tail);
      if (!taken || attempt >= 3) throw new Error(`pgbouncer failed to start: ${exited}: ${tail}`);
    }
  } catch (err) {
    await kill().catch(() => undefined);
    process.removeListener('exit', onExit);
    cleanup();
    throw err;
  }

  let stopped = false;
  return {
    host: HOST,
    get port() {
      return port;
    },
    url: (database, user = ADMIN) => `postgres://${encodeURIComponent(user)}@${HOST}:${port}/${encodeURIComponent(database)}`,
    reconnect: () => admin('RECONNECT', () => undefined),
    log: () => tail,
    show: (what) => admin(`SHOW ${what}`, (rows) => rows),
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await kill();
      } finally {
        process.removeListener('exit', onExit);
        cleanup();
      }
    },
  };
}
