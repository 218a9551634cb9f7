import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../support/extra-postgres';
import { buildCli, MIGRATE_CLI } from '../support/fleet-fixture';
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

  /** Resolves once `text` is in the output, or fails with the output. */
  async function waitFor(run: { output: () => string; child: ChildProcess }, text: string, timeoutMs = 120_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!run.output().includes(text)) {
      if (run.child.exitCode !== null) throw new Error(`the API exited (${run.child.exitCode}):\n${run.output()}`);
      if (Date.now() > deadline) throw new Error(`no ${JSON.stringify(text)} in the output:\n${run.output()}`);
      await sleep(200);
    }
  }

  /** Whether a TCP connection to host:port is accepted. */
  const accepts = (host: string, port: number) =>
    new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });

  /** This machine's first IPv4 address that is not loopback (a container's eth0), if it has one. */
  const externalAddress = () =>
    Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

  /** `sh -c` with the environment of a user who has no DATABASE_URL. */
  function shell(command: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const base: NodeJS.ProcessEnv = { ...process.env, STRATA_DATA_DIR: dataDir, EMBEDDED_PG_PORT: String(pgPort), ...env };
    for (const k of ['DATABASE_URL', 'DB_APP_PASSWORD', 'DB_CONTROL_PASSWORD', 'AUTH_JWT_SECRET', 'DB_APP_USER', 'STRATA_MIGRATIONS_DIR']) delete base[k];
    return new Promise((resolve) => {
      execFile('sh', ['-c', command], { cwd: ROOT, env: base }, (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  it('the demo listens on 127.0.0.1 only and prints its banner last, after the boot logs, with curl lines that end in a newline', async () => {
    // Logs on (tests run with LOG_LEVEL=silent): the banner must come after them.
    const demo = start({ STRATA_DEMO: '1', LOG_LEVEL: 'info' });
    try {
      await waitFor(demo, 'access-control-request-headers');
      const out = demo.output();
      const banner = out.indexOf('Strata API on http://127.0.0.1:');
      expect(banner).toBeGreaterThan(0);
      for (const bootLog of ['Nest application successfully started', `listening on http://127.0.0.1:${apiPort}`, 'Mapped {/files/signed, GET} route']) {
        expect([bootLog, out.indexOf(bootLog) >= 0 && out.indexOf(bootLog) < banner]).toEqual([bootLog, true]);
      }
      expect(await accepts('127.0.0.1', apiPort)).toBe(true);
      const external = externalAddress();
      if (external) expect(await accepts(external, apiPort)).toBe(false);

      // The banner's own lines, pasted into a shell: each answer ends with a newline.
      const lines = out.slice(banner).split('\n');
      const login = lines.findIndex((l) => l.startsWith('TOKEN=$(curl'));
      const projects = lines.find((l) => l.startsWith(`curl -s -w '\\n' http://127.0.0.1:${apiPort}/t/acme/projects `))!;
      const pasted = await shell(`${lines[login]}\n${lines[login + 1]}\n${projects}`);
      expect(pasted.stdout).toMatch(/^\{"items":\[.*\],"nextCursor":(null|"[^"]+")\}\n$/);

      // npm run migrate finds this database with DATABASE_URL unset, as the worker does.
      const status = await shell(`"${process.execPath}" ${MIGRATE_CLI} status`);
      expect(status).toEqual({ code: 0, stdout: expect.stringMatching(/status: 3 targets in .*; 3 current/), stderr: `DATABASE_URL is unset: using the embedded PostgreSQL of npm start on 127.0.0.1:${pgPort}\n` });
      expect((await shell(`"${process.execPath}" ${MIGRATE_CLI} check`)).code).toBe(0);
    } finally {
      demo.child.kill('SIGTERM');
      await demo.exited;
    }
  });

  it('listens where HOST says (0.0.0.0: every interface)', async () => {
    const run = start({ HOST: '0.0.0.0', LOG_LEVEL: 'info' });
    try {
      await waitFor(run, `listening on http://0.0.0.0:${apiPort}`);
      expect(await accepts('127.0.0.1', apiPort)).toBe(true);
      const external = externalAddress();
      if (external) expect(await accepts(external, apiPort)).toBe(true);
    } finally {
      run.child.kill('SIGTERM');
      await run.exited;
    }
  });

  it('npm run migrate without DATABASE_URL and no API running says to start it, with exit 2', async () => {
    const res = await shell(`"${process.execPath}" ${MIGRATE_CLI} status`);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(new RegExp(`the embedded PostgreSQL \\(127\\.0\\.0\\.1:${pgPort}\\) is not running: start the API first \\(npm start\\), or set DATABASE_URL`));
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
