import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './extra-postgres';

/**
 * A private Redis server for fault tests (stop it, start it again): its own process on a free port
 * of 127.0.0.1, nothing persisted (`--save ''`, no AOF), so a restart comes back empty, as a Redis
 * without persistence does. Tests never stop the shared Redis on 6379; they start one of these.
 */
export interface ExtraRedis {
  port: number;
  /** `redis://127.0.0.1:<port>` */
  url: string;
  /** Kills the server (SIGKILL: no goodbye to its clients, like a crash). Idempotent. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty) and waits until it answers PING. */
  start(): Promise<void>;
  /** Kills it for good and removes its directory. Idempotent. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The binary: `EXTRA_REDIS_SERVER`, else the Debian package's. */
function serverBinary(): string {
  const bin = process.env.EXTRA_REDIS_SERVER ?? '/usr/bin/redis-server';
  if (!existsSync(bin)) throw new Error(`no redis-server at ${bin}; install redis-server or set EXTRA_REDIS_SERVER`);
  return bin;
}

/** One PING over a raw socket: true when the server answers +PONG. */
function pings(port: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = connect({ host: HOST, port });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      res(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString('utf8');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

const live = new Set<ChildProcess>();
let exitHook = false;

export async function startExtraRedis(): Promise<ExtraRedis> {
  const bin = serverBinary();
  if (!exitHook) {
    exitHook = true;
    // A test process that dies leaves no Redis behind.
    process.once('exit', () => {
      for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'strata-extra-redis-'));
  let port = 0;
  let child: ChildProcess | undefined;
  let log = '';

  const kill = async () => {
    const c = child;
    child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await exited;
    live.delete(c);
  };

  const start = async () => {
    if (child) throw new Error('start(): the server is running');
    log = '';
    const c = spawn(bin, ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = c;
    live.add(c);
    // Drained always (a full pipe would block the server); the tail explains a failed start.
    c.stdout!.on('data', (d: Buffer) => (log = (log + d.toString('utf8')).slice(-4000)));
    c.stderr!.on('data', (d: Buffer) => (log = (log + d.toString('utf8')).slice(-4000)));
    let exited: string | undefined;
    c.once('exit', (code, signal) => (exited = `exited (${code ?? signal})`));
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (exited) throw new Error(`redis-server on port ${port} ${exited}: ${log}`);
      if (await pings(port)) return;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} not answering after ${READY_TIMEOUT_MS} ms: ${log}`);
      await sleep(25);
    }
  };

  // The free port may be taken between the probe and the bind: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await start();
      break;
    } catch (err) {
      await kill();
      if (attempt >= 3 || !/Address already in use/i.test((err as Error).message)) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  let stopped = false;
  return {
    port,
    url: `redis://${HOST}:${port}`,
    kill,
    start,
    async stop() {
      if (stopped) return;
      stopped = true;
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
