import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../support/extra-postgres';
import { buildCli } from '../support/fleet-fixture';
import { sleep } from '../support/tenancy-fixture';

jest.setTimeout(240_000);

const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/apps/api/src/main.js');

/** `npm start` as a user runs it: no DATABASE_URL, the embedded PostgreSQL under its own data folder. */
describe('the embedded default (npm start without DATABASE_URL)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'strata-embedded-'));
  let pgPort: number;
  let apiPort: number;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    // As root the cluster runs as the postgres user, which must reach the folder (mkdtemp makes it 0700).
    chmodSync(dataDir, 0o755);
    buildCli();
    pgPort = await freePort();
    apiPort = await freePort();
  }, 180_000);

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    const pid = clusterPid();
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dataDir, { recursive: true, force: true });
  });

  function start(env: NodeJS.ProcessEnv = {}): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
    const base: NodeJS.ProcessEnv = { ...process.env, STRATA_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), PORT: String(apiPort), STRATA_DEMO: '0' };
    for (const k of ['DATABASE_URL', 'REDIS_URL', 'DB_APP_PASSWORD', 'DB_CONTROL_PASSWORD', 'AUTH_JWT_SECRET', 'DB_APP_USER']) delete base[k];
    const child = spawn(process.execPath, [MAIN], { cwd: ROOT, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d) => (out += String(d)));
    child.stderr!.on('data', (d) => (out += String(d)));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    return { child, output: () => out, exited };
  }

  async function live(): Promise<boolean> {
    try {
      return (await fetch(`http://127.0.0.1:${apiPort}/health/live`)).status === 200;
    } catch {
      return false;
    }
  }

  async function waitLive(run: { output: () => string; child: ChildProcess }, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await live())) {
      if (run.child.exitCode !== null) throw new Error(`the API exited (${run.child.exitCode}):\n${run.output()}`);
      if (Date.now() > deadline) throw new Error(`the API did not come up:\n${run.output()}`);
      await sleep(200);
    }
  }

  function clusterPid(): number | undefined {
    const file = join(dataDir, 'pg', 'postmaster.pid');
    if (!existsSync(file)) return undefined;
    const pid = Number(readFileSync(file, 'utf8').split('\n')[0]);
    try {
      process.kill(pid, 0);
      return pid;
    } catch {
      return undefined;
    }
  }

  it('comes back after the API was killed with -9, taking over the cluster its predecessor left running', async () => {
    const first = start();
    await waitLive(first);
    const orphan = clusterPid();
    expect(orphan).toBeDefined();
    first.child.kill('SIGKILL');
    await first.exited;
    expect(clusterPid()).toBe(orphan); // still running: nothing stopped it

    const second = start();
    await waitLive(second);
    expect(second.output()).toMatch(/still runs on .*; stopping it/);
    const fresh = clusterPid();
    expect(fresh).toBeDefined();
    expect(fresh).not.toBe(orphan);

    // A graceful stop takes its cluster with it.
    second.child.kill('SIGTERM');
    await second.exited;
    for (let i = 0; i < 50 && clusterPid(); i++) await sleep(100);
    expect(clusterPid()).toBeUndefined();
  });

  it('names the cause and what to do when something else holds the port, instead of printing `undefined`', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(pgPort, '127.0.0.1', () => r()));
    try {
      const run = start();
      expect(await run.exited).toBe(1);
      expect(run.output()).toMatch(new RegExp(`EMBEDDED_PG_PORT ${pgPort} is in use by another process`));
      expect(run.output()).toMatch(/start with EMBEDDED_PG_PORT set to a free port/);
      expect(run.output()).not.toMatch(/^undefined$/m);
    } finally {
      await new Promise<void>((r) => squatter.close(() => r()));
    }
  });
});
