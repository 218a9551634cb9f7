/**
 * Online tenant move bench: moves one tenant holding ≥ 100k rows pool → silo → bridge → pool
 * (libs/platform/moves, through the admin API) while an open-loop writer sends ~300 writes/s to that tenant
 * and two other tenants (pool, bridge) take a steady read/write load, and prints per direction the
 * phase times, catch-up lag, the write pause the writer saw at cutover, total time, lost / doubled
 * writes (the writer's acknowledged writes against the rows in the tenant's new home, read as the
 * owner), and the other tenants' p99 before vs during the move. See bench/README.md.
 *
 *   npm run bench:move -- [--rows 100000] [--rate 300] [--other-rate 100] [--before 8] [--after 2] [--warmup 5] [--rounds 1] [--keep-log]
 *
 * Exits 1 when an acknowledged write is missing or doubled in the tenant's home, or a move does
 * not finish; missing a time target is printed (✗), not fatal.
 */
import { execFileSync, fork } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from 'pg';
import type { Tier } from '#strata/control-plane';
import { withClient, type BenchDatabase } from './bench-database';
import { runBench } from './bench-run';
import { CpuMeter, machineTicks, procTicks, tickUs, type CpuUsagePerRequest } from './cpu-meter';
import type { MoveServerReady } from './move-server';
import { clock, latency, ok, OpenLoop, quantile, statsOf, type LatencyStats, type PlannedRequest, type Sample } from './open-loop';
import { call, forkApiChild, readyMessageOf, type ApiChild } from './api-child';

/** The moving and the other tenants' plan: enterprise's quotas (none) at a rate and a concurrency no run reaches. */
const BENCH_PLAN = 'bench-unmetered';

const TARGET_PAUSE_MS = 50;
const TARGET_TOTAL_MS = 10_000;
const TARGET_P99_RATIO = 1.5;
const DIRECTIONS: Array<[Tier, Tier]> = [
  ['pool', 'silo'],
  ['silo', 'bridge'],
  ['bridge', 'pool'],
];
/** A move that has not ended by then is reported as stuck (and cancelled if it still can be). */
const MOVE_DEADLINE_MS = 180_000;
/** How long to wait for the retained source to be dropped (retention 0) before the next direction. */
const SOURCE_DROP_WAIT_MS = 60_000;
const POLL_MS = 50;
/** A window in which other processes kept more than this share of the cores busy is flagged. */
const NOISY_OTHER_PCT = 10;
const TERMINAL = new Set(['done', 'failed', 'cancelled']);

// ---------------------------------------------------------------------------------------------
// options

interface Options {
  rows: number;
  rate: number;
  otherRate: number;
  beforeMs: number;
  afterMs: number;
  warmupMs: number;
  keepLog: boolean;
  /** Where to write every request's timing and the moves' phases (JSON), with the API's event-loop stalls beside it. */
  dump: string | null;
  /** Who runs the move: the API child (`npm start` alone) or a worker process beside it (with Redis). */
  executor: 'api' | 'worker';
  /** How many times the tenant goes round pool → silo → bridge → pool (each direction this many moves). */
  rounds: number;
}

function executorOf(raw: string | undefined): Options['executor'] {
  if (raw === undefined || raw === 'api' || raw === 'worker') return raw ?? 'api';
  throw new Error(`--executor must be api or worker, got ${JSON.stringify(raw)}`);
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      rows: { type: 'string' },
      rate: { type: 'string' },
      'other-rate': { type: 'string' },
      before: { type: 'string' },
      after: { type: 'string' },
      warmup: { type: 'string' },
      'keep-log': { type: 'boolean', default: false },
      dump: { type: 'string' },
      executor: { type: 'string', default: 'api' },
      rounds: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: npm run bench:move -- [--rows 100000] [--rate 300] [--other-rate 100] [--before 8] [--after 2] [--warmup 5] [--rounds 1] [--keep-log]\n' +
        '  --rows n        rows bulk-loaded into the moving tenant before the first move (10 % projects, 50 % tasks, 40 % invoices)\n' +
        '  --rate r        the writer: requests/s to the moving tenant (POST /invoices, POST and PATCH /projects)\n' +
        '  --other-rate r  requests/s to each of the other two tenants (GET /projects/:id, POST /invoices)\n' +
        '  --before s      the window before each move in which the other tenants\' p99 is measured\n' +
        '  --after s       keep the load on at least this long after a move ends, before checking\n' +
        '  --warmup s      load before the first window (JIT, pools)\n' +
        '  --keep-log      keep the API child\'s log file even when the run passes\n' +
        '  --dump f        write every request\'s [scheduled, done, op] and the moves\' phases to f (JSON), and the API\n' +
        '                  child\'s event-loop stalls over 12 ms to f.stalls ("<epoch ms> <ms late>" lines): where a p99 comes from\n' +
        '  --executor w    api (default): the API child runs the move, as `npm start` alone does; worker: a worker\n' +
        '                  process runs it (MOVES_EXECUTOR=false in the API), both with REDIS_URL, as deployed\n' +
        '  --rounds n      go round the three directions n times (default 1) and add a summary per direction over its\n' +
        '                  n moves, the other tenants\' samples pooled: one move\'s p99 is its 2nd-3rd slowest request',
    );
    process.exit(0);
  }
  const num = (name: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${name} must be a number >= ${min}, got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    rows: Math.round(num('rows', values.rows, 100_000, 1000)),
    rate: num('rate', values.rate, 300, 1),
    otherRate: num('other-rate', values['other-rate'], 100, 1),
    beforeMs: num('before', values.before, 8, 1) * 1000,
    afterMs: num('after', values.after, 2, 0) * 1000,
    warmupMs: num('warmup', values.warmup, 5, 0) * 1000,
    keepLog: values['keep-log'] ?? false,
    dump: values.dump ?? null,
    executor: executorOf(values.executor),
    rounds: Math.round(num('rounds', values.rounds, 1, 1)),
  };
}

// ---------------------------------------------------------------------------------------------
// helpers

const log = (msg: string) => console.error(`[bench:move] ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
const fmtMs = (ms: number) => (Number.isFinite(ms) ? (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)) : 'n/a');
const fmtS = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s` : 'n/a');
const mark = (good: boolean) => (good ? '✓' : '✗');

function urlFor(adminUrl: string, host: string, port: number, database: string): string {
  const u = new URL(adminUrl);
  u.hostname = host;
  u.port = String(port);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}


/** Runs fn in a transaction entered as the tenant (search_path + app.tenant_id), as the owner. */
async function asTenantOwner<T>(home: Home, tenantId: string, fn: (c: Client) => Promise<T>): Promise<T> {
  return withClient(home.url, async (c) => {
    await c.query('BEGIN');
    try {
      await c.query(`SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true)`, [`"${home.schema}"`, tenantId]);
      const r = await fn(c);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// the API child

type Server = ApiChild<MoveServerReady>;

/** The child processes' environment: the app's defaults but for what the bench sets. */
function childEnv(db: BenchDatabase, executor: Options['executor']): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    NODE_ENV: process.env.NODE_ENV ?? 'production',
    DATABASE_URL: db.ownerUrl,
    DB_APP_USER: db.appRole,
    AUTH_JWT_SECRET: `bench-${db.runId}-${'x'.repeat(40)}`,
    // The one setting the bench changes: the old home is dropped right after the move (the app
    // keeps it a day), so three moves in a row do not pile up homes, and the drop is waited for
    // before the next direction's "before" window.
    MOVE_SOURCE_RETENTION_SECONDS: '0',
    // The writer is one user at 300 writes/s: a per-user rate limit (default 20/s) would refuse most
    // of it. What is measured is the move, so no limit is reached (the tenants' plan is BENCH_PLAN).
    RATE_LIMIT_USER_PER_SECOND: '1000000',
  };
  // Everything else at the app's defaults: inherited tuning is removed.
  for (const k of [
    'DATA_POOL_MAX',
    'SILO_POOL_MAX',
    'SILO_MAX_CONNECTIONS',
    'DB_APP_PASSWORD',
    'AUTH_JWKS_URL',
    'AUTH_JWT_ISSUER',
    'BASE_DOMAIN',
    'PORT',
    'REDIS_URL',
    'PLACEMENT_FENCE',
    'MOVES_EXECUTOR',
    'MOVE_LEASE_MS',
    'MOVE_CUTOVER_LOCK_TIMEOUT_MS',
    'REGISTRY_CACHE_TTL_MS',
    'BENCH_STALLS',
  ]) {
    delete env[k];
  }
  if (executor === 'worker') {
    // As deployed: a worker runs moves (and jobs), the API serves; Redis carries jobs and invalidations.
    env.REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
    env.MOVES_EXECUTOR = 'false';
  }
  return env;
}

async function startServer(db: BenchDatabase, logFd: number, executor: Options['executor'], dump: string | null): Promise<Server> {
  const env = childEnv(db, executor);
  if (dump) env.BENCH_STALLS = `${dump}.stalls`;
  return forkApiChild<MoveServerReady>(join(__dirname, 'move-server.js'), env, ['ignore', logFd, logFd, 'ipc']);
}

/** The worker process (apps/worker) as `npm run start:worker` runs it, with moves on; its log goes with the API child's. */
async function startWorker(db: BenchDatabase, logFd: number): Promise<{ pid: number | undefined; stop(): Promise<void> }> {
  const env = { ...childEnv(db, 'worker'), MOVES_EXECUTOR: 'true' };
  const child = fork(join(__dirname, '..', 'apps', 'worker', 'src', 'main.js'), [], { env, stdio: ['ignore', logFd, logFd, 'ipc'] });
  // Its start-up (Nest, Redis, the first lease polls) must not fall into the first measured window.
  await readyMessageOf(child, 'the worker');
  return {
    pid: child.pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', () => {
          clearTimeout(kill);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// talking to the API (setup and the admin API)


interface BenchTenant {
  name: string;
  id: string;
  slug: string;
  token: string;
  projectId: string;
}

async function onboard(base: string, adminToken: string, db: BenchDatabase, name: string, tier: Tier): Promise<BenchTenant> {
  const slug = db.slug(name);
  const created = await call<{ id: string }>(base, 'POST', '/admin/tenants', { token: adminToken, body: { slug, name: `bench ${name}`, tier, plan: BENCH_PLAN } }); // no quota, rate or concurrency limit in the way of the writers
  const email = `owner@${slug}.bench.test`;
  const password = 'bench-password-123';
  await call(base, 'POST', `/admin/tenants/${created.id}/users`, { token: adminToken, body: { email, password, role: 'owner' } });
  const login = await call<{ access_token: string }>(base, 'POST', '/auth/login', { tenant: slug, body: { email, password }, expect: 200 });
  const token = login.access_token;
  const project = await call<{ id: string }>(base, 'POST', '/projects', { token, tenant: slug, body: { name: `Bench project (${name})` } });
  return { name, id: created.id, slug, token, projectId: project.id };
}

// ---------------------------------------------------------------------------------------------
// the tenant's home, as the owner sees it

interface Home {
  tier: Tier;
  url: string;
  database: string;
  schema: string;
  epoch: number;
}

async function homeOf(db: BenchDatabase, tenantId: string): Promise<Home> {
  return withClient(db.ownerUrl, async (c) => {
    const r = await c.query<{ tier: Tier; schema_name: string; database_name: string | null; placement_epoch: number; host: string; port: number; database: string }>(
      `SELECT t.tier, t.schema_name, t.database_name, t.placement_epoch, p.host, p.port, p.database
         FROM control.tenants t JOIN control.pools p ON p.id = t.pool_id WHERE t.id = $1`,
      [tenantId],
    );
    if (!r.rows[0]) throw new Error(`tenant ${tenantId} is not in control.tenants`);
    const t = r.rows[0];
    const database = t.database_name ?? t.database;
    return { tier: t.tier, url: urlFor(db.adminUrl, t.host, t.port, database), database, schema: t.schema_name, epoch: t.placement_epoch };
  });
}

interface Loaded {
  projects: number;
  tasks: number;
  invoices: number;
  /** Bulk projects, for the writer's PATCHes (each patched at most once). */
  projectIds: string[];
  sampleInvoiceId: string;
}

/**
 * The moving tenant's rows, straight into its home in bulk SQL as the owner (entered as the tenant,
 * so RLS's WITH CHECK holds even for an owner that is not a superuser): projects, 5 tasks per
 * project (FK to the project), invoices with unique numbers.
 */
async function bulkLoad(home: Home, tenantId: string, rows: number): Promise<Loaded> {
  const projects = Math.max(1, Math.round(rows / 10));
  const tasks = projects * 5;
  const invoices = Math.max(0, rows - projects - tasks);
  await asTenantOwner(home, tenantId, async (c) => {
    await c.query(
      `INSERT INTO projects (tenant_id, name, description, created_at, updated_at)
       SELECT $1, 'bulk project ' || g, 'bulk', date_trunc('milliseconds', now()) - make_interval(secs => g), now()
         FROM generate_series(1, $2::int) g`,
      [tenantId, projects],
    );
    await c.query(
      `INSERT INTO tasks (tenant_id, project_id, title, status)
       SELECT $1, p.id, 'bulk task ' || k, (ARRAY['todo', 'doing', 'done'])[1 + k % 3]
         FROM projects p CROSS JOIN generate_series(1, 5) k
        WHERE p.tenant_id = $1 AND p.description = 'bulk'`,
      [tenantId],
    );
    await c.query(
      `INSERT INTO invoices (tenant_id, number, amount, currency, created_at)
       SELECT $1, 'BULK-' || lpad(g::text, 8, '0'), 1000 + (g * 7919) % 100000, 'EUR', date_trunc('milliseconds', now()) - make_interval(secs => g)
         FROM generate_series(1, $2::int) g`,
      [tenantId, invoices],
    );
  });
  await withClient(home.url, (c) => c.query(`ANALYZE "${home.schema}".projects, "${home.schema}".tasks, "${home.schema}".invoices`));
  return asTenantOwner(home, tenantId, async (c) => {
    const counts = await c.query<{ p: string; t: string; i: string }>(
      `SELECT (SELECT count(*) FROM projects WHERE tenant_id = $1) AS p, (SELECT count(*) FROM tasks WHERE tenant_id = $1) AS t,
              (SELECT count(*) FROM invoices WHERE tenant_id = $1) AS i`,
      [tenantId],
    );
    const ids = await c.query<{ id: string }>(`SELECT id::text FROM projects WHERE tenant_id = $1 AND description = 'bulk' ORDER BY id`, [tenantId]);
    const inv = await c.query<{ id: string }>(`SELECT id::text FROM invoices WHERE tenant_id = $1 AND number = 'BULK-00000001'`, [tenantId]);
    return {
      projects: Number(counts.rows[0].p),
      tasks: Number(counts.rows[0].t),
      invoices: Number(counts.rows[0].i),
      projectIds: ids.rows.map((r) => r.id),
      sampleInvoiceId: inv.rows[0]?.id ?? '',
    };
  });
}

// ---------------------------------------------------------------------------------------------
// the writer and the other tenants' load

type WriteKind = 'invoice' | 'project' | 'patch';
interface WriteMeta {
  kind: WriteKind;
  /** invoice number, project name, or (patch) the project id */
  key: string;
  /** patch: the description sent */
  value?: string;
}

function writerPlan(t: BenchTenant, runId: string, patchTargets: string[]): (seq: number) => PlannedRequest<WriteMeta> {
  const headers = { authorization: `Bearer ${t.token}`, 'x-tenant': t.slug, 'content-type': 'application/json' };
  let nextPatch = 0;
  return (seq) => {
    const slot = seq % 10;
    if (slot < 6) {
      const number = `w-${runId}-${seq}`;
      return {
        op: 'POST /invoices',
        method: 'POST',
        path: '/invoices',
        headers,
        body: JSON.stringify({ number, amount: 100 + (seq % 1000), currency: 'EUR' }),
        meta: { kind: 'invoice', key: number },
        wantBody: true,
      };
    }
    // PATCH a bulk project nobody has patched yet (so its final description is this write's); once
    // they run out, create instead.
    if (slot >= 8 && nextPatch < patchTargets.length) {
      const id = patchTargets[nextPatch++];
      const value = `patched by write ${seq}`;
      return {
        op: 'PATCH /projects/:id',
        method: 'PATCH',
        path: `/projects/${id}`,
        headers,
        body: JSON.stringify({ description: value }),
        meta: { kind: 'patch', key: id, value },
        wantBody: true,
      };
    }
    const name = `w-${runId}-${seq}`;
    return {
      op: 'POST /projects',
      method: 'POST',
      path: '/projects',
      headers,
      body: JSON.stringify({ name, description: 'writer' }),
      meta: { kind: 'project', key: name },
      wantBody: true,
    };
  };
}

function otherPlan(t: BenchTenant, runId: string): (seq: number) => PlannedRequest {
  const auth = { authorization: `Bearer ${t.token}`, 'x-tenant': t.slug };
  const json = { ...auth, 'content-type': 'application/json' };
  return (seq) =>
    seq % 2 === 0
      ? { op: 'GET /projects/:id', method: 'GET', path: `/projects/${t.projectId}`, headers: auth }
      : { op: 'POST /invoices', method: 'POST', path: '/invoices', headers: json, body: JSON.stringify({ number: `o-${t.name}-${runId}-${seq}`, amount: 4242, currency: 'EUR' }) };
}

/** An acknowledged write, as the writer logged it. */
interface Ack {
  kind: WriteKind;
  key: string;
  id: string;
  value?: string;
  intended: number;
  done: number;
}

/**
 * The writer's log: 2xx answers become acks (checked against what was sent), everything else is a
 * failed write, which may or may not have been applied.
 */
function acksOf(samples: Sample<WriteMeta>[], until: number): { acks: Ack[]; failed: Sample<WriteMeta>[]; mismatched: number } {
  const acks: Ack[] = [];
  const failed: Sample<WriteMeta>[] = [];
  let mismatched = 0;
  for (const s of samples) {
    if (s.done > until || !s.meta) continue;
    if (!ok(s)) {
      failed.push(s);
      continue;
    }
    const r = s.response as { id?: string; number?: string; name?: string; description?: string } | undefined;
    const m = s.meta;
    const echoed = m.kind === 'invoice' ? r?.number === m.key : m.kind === 'project' ? r?.name === m.key : r?.id === m.key && r?.description === m.value;
    if (!echoed || !r?.id) mismatched++;
    acks.push({ kind: m.kind, key: m.key, id: r?.id ?? '', value: m.value, intended: s.intended, done: s.done });
  }
  return { acks, failed, mismatched };
}

interface CheckResult {
  acked: number;
  lost: Ack[];
  doubled: Ack[];
  /** Failed (non-2xx / timed out) creates whose row is nevertheless in the home. */
  failedButPresent: number;
  failed: number;
}

/** Every acked write must be in `home` exactly once (creates) or with the value sent (patches). */
async function checkAcks(home: Home, tenantId: string, acks: Ack[], failed: Sample<WriteMeta>[]): Promise<CheckResult> {
  const lost: Ack[] = [];
  const doubled: Ack[] = [];
  let failedButPresent = 0;
  await asTenantOwner(home, tenantId, async (c) => {
    const byKey = async (sql: string, keys: string[]) => {
      const map = new Map<string, string[]>();
      if (!keys.length) return map;
      const r = await c.query<{ k: string; ids: string[] }>(sql, [tenantId, keys]);
      for (const row of r.rows) map.set(row.k, row.ids);
      return map;
    };
    const keysOf = (kind: WriteKind) => [...acks.filter((a) => a.kind === kind).map((a) => a.key), ...failed.filter((s) => s.meta?.kind === kind).map((s) => s.meta!.key)];
    const invoices = await byKey(
      `SELECT number AS k, array_agg(id::text) AS ids FROM invoices WHERE tenant_id = $1 AND number = ANY($2::text[]) GROUP BY number`,
      keysOf('invoice'),
    );
    const projects = await byKey(
      `SELECT name AS k, array_agg(id::text) AS ids FROM projects WHERE tenant_id = $1 AND name = ANY($2::text[]) GROUP BY name`,
      keysOf('project'),
    );
    const patched = new Map<string, string[]>();
    const patchIds = acks.filter((a) => a.kind === 'patch').map((a) => a.key);
    if (patchIds.length) {
      const r = await c.query<{ id: string; descriptions: string[] }>(
        `SELECT id::text, array_agg(description) AS descriptions FROM projects WHERE tenant_id = $1 AND id = ANY($2::uuid[]) GROUP BY id`,
        [tenantId, patchIds],
      );
      for (const row of r.rows) patched.set(row.id, row.descriptions);
    }
    for (const a of acks) {
      if (a.kind === 'patch') {
        const d = patched.get(a.key) ?? [];
        if (!d.includes(a.value!)) lost.push(a);
        if (d.length > 1) doubled.push(a);
        continue;
      }
      const ids = (a.kind === 'invoice' ? invoices : projects).get(a.key) ?? [];
      if (!ids.includes(a.id)) lost.push(a);
      if (ids.length > 1) doubled.push(a);
    }
    for (const s of failed) {
      if (s.meta?.kind === 'patch') continue;
      if ((s.meta!.kind === 'invoice' ? invoices : projects).has(s.meta!.key)) failedButPresent++;
    }
  });
  return { acked: acks.length, lost, doubled, failedButPresent, failed: failed.length };
}

// ---------------------------------------------------------------------------------------------
// CPU by phase


interface PhaseCpuFigures {
  /** Wall time the samples covered. */
  ms: number;
  /** Cores kept busy, on average: the mover's two PostgreSQL sessions (source + target), the API child, the whole machine. */
  mover: number | null;
  api: number | null;
  machine: number | null;
}

/**
 * Attributes CPU to the move's phases while it is polled: the mover's own PostgreSQL sessions
 * (application_name strata-move-source / -target on the bench's databases, read from /proc), the
 * API child, and the machine. Each interval between two samples goes to the phase the earlier
 * sample saw. Linux and a local PostgreSQL only; elsewhere the figures are null.
 */
class PhaseCpu {
  private readonly byPhase = new Map<string, { ms: number; mover: number; api: number; busy: number; total: number }>();
  private last?: { t: number; phase: string; api: number | null; machine: { busy: number; total: number } | null };
  private readonly movers = new Map<number, number>();
  private moverSeen = false;

  constructor(
    private readonly admin: Client,
    private readonly databases: string[],
    private readonly apiPid: number | undefined,
  ) {}

  async sample(phase: string): Promise<void> {
    const t = clock();
    let moverDelta = 0;
    try {
      const r = await this.admin.query<{ pid: number }>(
        `SELECT pid FROM pg_stat_activity WHERE datname = ANY($1::text[]) AND application_name LIKE 'strata-move-%'`,
        [this.databases],
      );
      for (const { pid } of r.rows) {
        const ticks = procTicks(pid, 'postgres');
        if (ticks === null) continue;
        this.moverSeen = true;
        const prev = this.movers.get(pid);
        // A session born since the last sample: all of its CPU is the mover's.
        moverDelta += ticks - (prev ?? 0);
        this.movers.set(pid, ticks);
      }
    } catch {
      // keep going without the mover's share
    }
    const api = this.apiPid ? procTicks(this.apiPid) : null;
    const machine = machineTicks();
    if (this.last) {
      const f = this.byPhase.get(this.last.phase) ?? { ms: 0, mover: 0, api: 0, busy: 0, total: 0 };
      f.ms += t - this.last.t;
      f.mover += moverDelta;
      if (api !== null && this.last.api !== null) f.api += api - this.last.api;
      if (machine && this.last.machine) {
        f.busy += machine.busy - this.last.machine.busy;
        f.total += machine.total - this.last.machine.total;
      }
      this.byPhase.set(this.last.phase, f);
    }
    this.last = { t, phase, api, machine };
  }

  figures(phase: string): PhaseCpuFigures | null {
    const f = this.byPhase.get(phase);
    if (!f || f.ms <= 0) return null;
    const cores = cpus().length;
    return {
      ms: f.ms,
      mover: this.moverSeen ? (f.mover * tickUs) / 1000 / f.ms : null,
      api: this.apiPid ? (f.api * tickUs) / 1000 / f.ms : null,
      machine: f.total > 0 ? (cores * f.busy) / f.total : null,
    };
  }
}

// ---------------------------------------------------------------------------------------------
// one move

interface PhaseRecord {
  phase: string;
  startedAt: string;
  finishedAt?: string;
}

interface MoveView {
  id: string;
  phase: string;
  fromTier: Tier;
  toTier: Tier;
  createdAt: string;
  rowsCopied: number;
  rowsTotal: number;
  lagRows: number;
  pauseMs: number | null;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  phases: PhaseRecord[];
  checks: Array<{ table: string; sourceRows: number; targetRows: number }>;
  sourceDroppedAt: string | null;
}

interface Poll {
  t: number;
  phase: string;
  lagRows: number;
  rowsCopied: number;
}

interface DirectionResult {
  from: Tier;
  to: Tier;
  moveId: string;
  view: MoveView;
  polls: Poll[];
  requestedAt: number;
  endedAt: number;
  stuck: boolean;
  beforeFrom: number;
  sourceDropMs: number | null;
  check: CheckResult;
  /** Acks whose write was scheduled between the move request and its end, and how many of them were lost. */
  duringAcked: number;
  duringLost: number;
  mismatched: number;
  home: Home;
  cpuBefore: CpuUsagePerRequest;
  cpuDuring: CpuUsagePerRequest;
  /** Writer slots skipped (too many in flight) in the before window and during the move. */
  skippedBefore: number;
  skippedDuring: number;
  loadAvg: number;
  cpu: PhaseCpu;
}

const ts = (iso: string | null | undefined) => (iso ? Date.parse(iso) : NaN);

/** The writer's requests in flight at any time during the move's `cutover` phase: what the write pause is judged on. */
function writesAroundCutover(view: MoveView, writer: OpenLoop<WriteMeta>): Sample<WriteMeta>[] {
  const cut = phaseWindow(view, 'cutover');
  return cut ? writer.samples.filter((s) => s.intended <= cut[1] && s.done >= cut[0]) : [];
}

function phaseWindow(view: MoveView, phase: string): [number, number] | null {
  const recs = view.phases.filter((p) => p.phase === phase);
  if (!recs.length) return null;
  return [ts(recs[0].startedAt), ts(recs[recs.length - 1].finishedAt ?? view.finishedAt)];
}

async function runMove(
  server: Server,
  db: BenchDatabase,
  mover: BenchTenant,
  from: Tier,
  to: Tier,
  opts: Options,
  writer: OpenLoop<WriteMeta>,
  meter: CpuMeter,
  sampler: Client,
): Promise<DirectionResult> {
  const admin = server.ready.adminToken;
  const was = await homeOf(db, mover.id);
  if (was.tier !== from) throw new Error(`the moving tenant is on ${was.tier}, expected ${from}`);
  log(`${from} → ${to}: ${opts.beforeMs / 1000} s before window`);
  await meter.start();
  const beforeFrom = clock();
  const skipped0 = writer.skipped;
  await sleep(opts.beforeMs);
  const cpuBefore = await meter.stop(1);
  const skipped1 = writer.skipped;
  const loadAvg = loadavg()[0];
  await meter.start();
  const requestedAt = clock();
  const created = await call<MoveView>(server.base, 'POST', `/admin/tenants/${mover.id}/moves`, { token: admin, body: { toTier: to }, expect: 202 });
  log(`move ${created.id}: ${from} → ${to} requested`);
  const polls: Poll[] = [];
  let view = created;
  let stuck = false;
  const cpu = new PhaseCpu(sampler, [db.name, `strata_t_${mover.slug.replace(/-/g, '_')}`], server.child.pid);
  for (;;) {
    view = await call<MoveView>(server.base, 'GET', `/admin/moves/${created.id}`, { token: admin });
    polls.push({ t: clock(), phase: view.phase, lagRows: view.lagRows, rowsCopied: view.rowsCopied });
    await cpu.sample(view.phase);
    if (TERMINAL.has(view.phase)) break;
    if (clock() - requestedAt > MOVE_DEADLINE_MS) {
      stuck = true;
      log(`move ${created.id} still in ${view.phase} after ${MOVE_DEADLINE_MS / 1000} s: asking to cancel`);
      await call(server.base, 'POST', `/admin/moves/${created.id}/cancel`, { token: admin, expect: 202 }).catch((err) => log(`cancel: ${(err as Error).message}`));
      break;
    }
    await sleep(POLL_MS);
  }
  const endedAt = clock();
  const cpuDuring = await meter.stop(1);
  const skipped2 = writer.skipped;
  log(`move ${created.id}: ${view.phase} after ${fmtS(endedAt - requestedAt)}${view.error ? ` (${view.error})` : ''}`);

  // The old home goes right away (retention 0): wait for it, so its drop (for a pool source, a
  // DELETE of the tenant's rows from the shared tables) is not inside the next "before" window.
  let sourceDropMs: number | null = null;
  if (view.phase === 'done') {
    const finished = ts(view.finishedAt);
    const until = clock() + SOURCE_DROP_WAIT_MS;
    while (!view.sourceDroppedAt && clock() < until) {
      await sleep(200);
      view = await call<MoveView>(server.base, 'GET', `/admin/moves/${created.id}`, { token: admin });
    }
    sourceDropMs = view.sourceDroppedAt ? ts(view.sourceDroppedAt) - finished : null;
  }
  const afterUntil = endedAt + opts.afterMs;
  if (clock() < afterUntil) await sleep(afterUntil - clock());
  // Writes sent while the move ran are checked with it: wait for their answers (each bounded by the timeout).
  const answersBy = clock() + 35_000;
  while (writer.oldestInFlight() <= endedAt && clock() < answersBy) await sleep(50);

  // Every write acked so far must be in the tenant's home now (its new one when the move is done).
  const home = await homeOf(db, mover.id);
  const checkAt = clock();
  const { acks, failed, mismatched } = acksOf(writer.samples, checkAt);
  const check = await checkAcks(home, mover.id, acks, failed);
  const during = (a: Ack) => a.intended >= requestedAt && a.intended <= endedAt;
  return {
    from,
    to,
    moveId: created.id,
    view,
    polls,
    requestedAt,
    endedAt,
    stuck,
    beforeFrom,
    sourceDropMs,
    check,
    duringAcked: acks.filter(during).length,
    duringLost: check.lost.filter(during).length,
    mismatched,
    home,
    cpuBefore,
    cpuDuring,
    skippedBefore: skipped1 - skipped0,
    skippedDuring: skipped2 - skipped1,
    loadAvg,
    cpu,
  };
}

// ---------------------------------------------------------------------------------------------
// report

interface OtherLoad {
  tenant: BenchTenant;
  tier: Tier;
  loop: OpenLoop;
}

function report(results: DirectionResult[], writer: OpenLoop<WriteMeta>, others: OtherLoad[], finalCheck: CheckResult | null, meta: Record<string, string>): string {
  const lines: string[] = ['## Strata online move bench', ''];
  for (const [k, v] of Object.entries(meta)) lines.push(`- ${k}: ${v}`);
  for (const r of results) {
    const v = r.view;
    const dur = (phase: string) => {
      const w = phaseWindow(v, phase);
      return w ? w[1] - w[0] : NaN;
    };
    const total = ts(v.finishedAt) - ts(v.startedAt);
    const catching = r.polls.filter((p) => p.phase === 'catching_up');
    const maxLag = catching.length ? Math.max(...catching.map((p) => p.lagRows)) : NaN;
    const copying = r.polls.filter((p) => p.phase === 'copying');
    const maxLagCopying = copying.length ? Math.max(...copying.map((p) => p.lagRows)) : NaN;
    const around = writesAroundCutover(v, writer);
    const cutMax = around.length ? Math.max(...around.map(latency)) : NaN;
    const cutFailed = around.filter((s) => !ok(s)).length;
    const wBefore = statsOf(writer.samples, r.beforeFrom, r.requestedAt);
    const wDuring = statsOf(writer.samples, r.requestedAt, r.endedAt);
    const lostAll = r.check.lost.length;
    const doubled = r.check.doubled.length;
    const pauseOk = Number.isFinite(cutMax) && cutMax <= TARGET_PAUSE_MS;
    const selfPauseOk = v.pauseMs !== null && v.pauseMs <= TARGET_PAUSE_MS;

    const round = results.length > DIRECTIONS.length ? `round ${Math.floor(results.indexOf(r) / DIRECTIONS.length) + 1}: ` : '';
    lines.push('', `### ${round}${r.from} → ${r.to}`, '');
    lines.push(
      `Move ${v.id}: **${v.phase}**${v.error ? ` — error: ${v.error}` : ''}${r.stuck ? ' (did not end in time; cancel asked)' : ''}; ` +
        `${fmtInt(v.rowsTotal)} rows (${v.checks.map((c) => `${c.table} ${fmtInt(c.sourceRows)}`).join(', ') || 'no checks'}); ` +
        `now in ${r.home.tier} ${r.home.database}/${r.home.schema}.`,
      '',
    );
    lines.push('| measure | value | target | met |', '|---|--:|--:|:-:|');
    lines.push(`| copy (\`copying\` phase) | ${fmtS(dur('copying'))} (${fmtInt(v.rowsCopied)} rows) | | |`);
    lines.push(
      `| catch-up (\`catching_up\` phase) | ${fmtS(dur('catching_up'))}; max lag ${Number.isFinite(maxLag) ? `${fmtInt(maxLag)} rows` : 'n/a'} ` +
        `(${catching.length} poll${catching.length === 1 ? '' : 's'} in the phase; max seen while copying ${Number.isFinite(maxLagCopying) ? fmtInt(maxLagCopying) : 'n/a'}) | | |`,
    );
    lines.push(`| verify (\`verifying\` phase) | ${fmtS(dur('verifying'))} | | |`);
    lines.push(`| cutover (\`cutover\` phase) | ${fmtS(dur('cutover'))} | | |`);
    lines.push(
      `| write pause: writer's max latency around cutover | ${fmtMs(cutMax)} ms (${around.length} writes in flight during the phase, ${cutFailed} failed) | ≤ ${TARGET_PAUSE_MS} ms | ${mark(pauseOk)} |`,
    );
    lines.push(`| write pause: the move's \`pauseMs\` | ${v.pauseMs === null ? 'n/a' : `${v.pauseMs} ms`} | ≤ ${TARGET_PAUSE_MS} ms | ${mark(selfPauseOk)} |`);
    lines.push(`| total (startedAt → finishedAt) | ${fmtS(total)} (requested → ended as polled: ${fmtS(r.endedAt - r.requestedAt)}) | ≤ ${TARGET_TOTAL_MS / 1000} s | ${mark(total <= TARGET_TOTAL_MS)} |`);
    lines.push(
      `| lost writes (acked, not in the new home) | ${lostAll} of ${fmtInt(r.check.acked)} acked so far (${r.duringLost} of ${fmtInt(r.duringAcked)} acked during the move) | 0 | ${mark(lostAll === 0)} |`,
    );
    lines.push(`| doubled writes | ${doubled} | 0 | ${mark(doubled === 0)} |`);
    lines.push(
      `| writer before → during (p50 / p99 / max ms) | ${fmtMs(wBefore.p50)} / ${fmtMs(wBefore.p99)} / ${fmtMs(wBefore.max)} → ${fmtMs(wDuring.p50)} / ${fmtMs(wDuring.p99)} / ${fmtMs(wDuring.max)}; ` +
        `${fmtInt(wDuring.count)} writes during, ${wDuring.failed} failed${wDuring.failed ? ` ${JSON.stringify(wDuring.failures)}` : ''} | | |`,
    );
    for (const o of others) {
      const b = statsOf(o.loop.samples, r.beforeFrom, r.requestedAt);
      const d = statsOf(o.loop.samples, r.requestedAt, r.endedAt);
      const ratio = d.p99 / b.p99;
      lines.push(
        `| other ${o.tier} tenant p99, before → during | ${fmtMs(b.p99)} → ${fmtMs(d.p99)} ms (**${ratio.toFixed(2)}×**; max ${fmtMs(d.max)} ms; ${d.failed} failed of ${fmtInt(d.count)}) | ≤ ${TARGET_P99_RATIO}× | ${mark(ratio <= TARGET_P99_RATIO)} |`,
      );
    }
    const pct = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(0)} %`);
    lines.push(
      `| machine busy before → during (of it other processes) | ${pct(r.cpuBefore.machineBusyPct)} (${pct(r.cpuBefore.otherBusyPct)}) → ` +
        `${pct(r.cpuDuring.machineBusyPct)} (${pct(r.cpuDuring.otherBusyPct)}); load average ${r.loadAvg.toFixed(1)} | | |`,
    );
    lines.push('');
    const achieved = statsOf(writer.samples, r.beforeFrom, r.requestedAt);
    const noisy = [r.cpuBefore.otherBusyPct, r.cpuDuring.otherBusyPct].some((x) => (x ?? 0) > NOISY_OTHER_PCT);
    const overloaded = r.skippedBefore + r.skippedDuring > 0 || wBefore.p99 > 1000;
    if (noisy || overloaded) {
      lines.push(
        `**Warning:** ${overloaded ? `the box did not keep up with the offered load (writer p99 ${fmtMs(wBefore.p99)} ms before the move, ${r.skippedBefore + r.skippedDuring} writer slots skipped with ${fmtInt(writer.inflightCap)} in flight, ${fmtInt(achieved.count)} writes in a ${fmtS(r.requestedAt - r.beforeFrom)} window); ` : ''}` +
          `${noisy ? `other processes kept more than ${NOISY_OTHER_PCT} % of the cores busy; ` : ''}latencies and ratios here measure queueing on the machine, not the move. Rerun on a quiet machine.`,
        '',
      );
    }
    // Where the time and the latency went, phase by phase.
    lines.push(
      `| phase | duration | writer p50 / p99 / max ms (n, failed) | ${others.map((o) => `other ${o.tier} p99 GET / POST, max ms`).join(' | ')} | cores busy: mover's PG sessions / API / machine |`,
    );
    lines.push(`|---|--:|---|${others.map(() => '---').join('|')}|---|`);
    const cores = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(2));
    const windows: Array<{ label: string; a: number; b: number; cpu: string }> = v.phases
      .filter((x) => !TERMINAL.has(x.phase))
      .map((p) => {
        const c = r.cpu.figures(p.phase);
        return {
          label: p.phase,
          a: ts(p.startedAt),
          b: ts(p.finishedAt ?? v.finishedAt),
          cpu: c ? `${cores(c.mover)} / ${cores(c.api)} / ${cores(c.machine)} of ${cpus().length}` : 'n/a (no poll)',
        };
      });
    // The new home's first second: cold pools (a new silo DataSource), units that waited at the fence.
    if (v.phase === 'done') windows.push({ label: 'first 1 s on the new home', a: ts(v.finishedAt), b: ts(v.finishedAt) + 1000, cpu: '' });
    for (const { label, a, b, cpu } of windows) {
      const w = statsOf(writer.samples, a, b);
      const cells = others.map((o) => {
        const get = statsOf(o.loop.samples.filter((x) => x.op.startsWith('GET')), a, b);
        const post = statsOf(o.loop.samples.filter((x) => x.op.startsWith('POST')), a, b);
        return `${fmtMs(get.p99)} / ${fmtMs(post.p99)}, ${fmtMs(Math.max(get.max, post.max))}`;
      });
      lines.push(`| ${label} | ${fmtS(b - a)} | ${fmtMs(w.p50)} / ${fmtMs(w.p99)} / ${fmtMs(w.max)} (${w.count}, ${w.failed}) | ${cells.join(' | ')} | ${cpu} |`);
    }
    const slow = writer.samples.filter((s) => s.intended >= r.requestedAt && s.intended < r.endedAt).sort((x, y) => latency(y) - latency(x))[0];
    if (slow) {
      const inPhase = v.phases.find((p) => slow.intended >= ts(p.startedAt) && slow.intended < ts(p.finishedAt ?? v.finishedAt));
      const where = inPhase
        ? `${fmtS(slow.intended - ts(inPhase.startedAt))} into \`${inPhase.phase}\``
        : slow.intended < ts(v.startedAt)
          ? 'while the move was queued'
          : 'after the move finished';
      lines.push(
        '',
        `Slowest write during the move: ${fmtMs(latency(slow))} ms, ${slow.op} → ${slow.status || slow.error}, scheduled ` +
          `${where}. ` +
          `Failed writes so far: ${r.check.failed} (${r.check.failedButPresent} of those creates are in the home anyway). ` +
          `Old home dropped ${r.sourceDropMs === null ? 'n/a' : fmtS(r.sourceDropMs)} after the move finished.`,
      );
    }
    if (r.mismatched) lines.push(`Warning: ${r.mismatched} acked answers did not echo what was sent.`);
    if (r.check.lost.length) {
      lines.push(
        `Lost writes (first 10): ${r.check.lost
          .slice(0, 10)
          .map((a) => `${a.kind} ${a.key} (acked ${fmtS(a.done - r.requestedAt)} after the move request)`)
          .join('; ')}`,
      );
    }
  }
  if (results.length > DIRECTIONS.length) lines.push('', ...summaryByDirection(results, writer, others));
  if (finalCheck) {
    lines.push(
      '',
      `Final check, load stopped: ${fmtInt(finalCheck.acked)} acknowledged writes of the whole run against the tenant's final home: ` +
        `**${finalCheck.lost.length} lost, ${finalCheck.doubled.length} doubled** (${finalCheck.failed} writes failed, ` +
        `${finalCheck.failedButPresent} of those creates present anyway). Writer slots skipped (too many in flight): ${writer.skipped}; ` +
        `other tenants: ${others.map((o) => `${o.tier} ${o.loop.skipped}`).join(', ')}.`,
    );
  }
  lines.push(
    '',
    `Targets: lost and doubled writes 0 (the run exits 1 otherwise); write pause ≤ ${TARGET_PAUSE_MS} ms (judged on the writer's ` +
      `max latency over the writes in flight during the \`cutover\` phase, latency from each request's scheduled time); ` +
      `total ≤ ${TARGET_TOTAL_MS / 1000} s; other tenants' p99 during the move ≤ ${TARGET_P99_RATIO}× their p99 in the ` +
      `window before it. Time targets are shown, not enforced.`,
  );
  return lines.join('\n');
}

/**
 * Every direction over its moves (`--rounds`): the targets' ranges, and the other tenants' p99 with
 * their samples pooled — before windows together, moves together. A half-load move of 2–4 s gives
 * each other tenant ~150 requests, so its p99 is the 2nd–3rd slowest, decided by one slow moment;
 * pooled over rounds it is a figure two runs of the same code agree on.
 */
function summaryByDirection(results: DirectionResult[], writer: OpenLoop<WriteMeta>, others: OtherLoad[]): string[] {
  const lines = [
    `### Summary over ${results.length / DIRECTIONS.length} rounds`,
    '',
    "| direction | moves done | `pauseMs` | writer max at cutover (≤ 50 ms) | total (≤ 10 s) | other tenants' p99 before → during, pooled (≤ 1.5×) | p50 before → during | each move's ratio (both tenants) |",
    '|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  const range = (xs: number[], f: (x: number) => string) => (xs.length ? `${f(Math.min(...xs))}–${f(Math.max(...xs))}` : 'n/a');
  for (const [from, to] of DIRECTIONS) {
    const mine = results.filter((r) => r.from === from && r.to === to);
    const done = mine.filter((r) => r.view.phase === 'done');
    const pauses = done.map((r) => r.view.pauseMs).filter((x): x is number => x !== null);
    const cutMax = done.map((r) => {
      const around = writesAroundCutover(r.view, writer);
      return around.length ? Math.max(...around.map(latency)) : NaN;
    });
    const totals = done.map((r) => ts(r.view.finishedAt) - ts(r.view.startedAt));
    const pooled = (window: (r: DirectionResult) => [number, number]) =>
      others.flatMap((o) => mine.flatMap((r) => o.loop.samples.filter((x) => x.intended >= window(r)[0] && x.intended < window(r)[1]))).map(latency).sort((a, b) => a - b);
    const before = pooled((r) => [r.beforeFrom, r.requestedAt]);
    const during = pooled((r) => [r.requestedAt, r.endedAt]);
    const ratio = quantile(during, 0.99) / quantile(before, 0.99);
    const each = mine.flatMap((r) => others.map((o) => statsOf(o.loop.samples, r.requestedAt, r.endedAt).p99 / statsOf(o.loop.samples, r.beforeFrom, r.requestedAt).p99));
    lines.push(
      `| ${from} → ${to} | ${done.length} of ${mine.length} | ${range(pauses, (x) => `${x}`)} ms | ${range(cutMax.filter(Number.isFinite), fmtMs)} ms | ${range(totals, fmtS)} | ` +
        `${fmtMs(quantile(before, 0.99))} → ${fmtMs(quantile(during, 0.99))} ms (**${ratio.toFixed(2)}×**, ${fmtInt(during.length)} requests) ${mark(ratio <= TARGET_P99_RATIO)} | ` +
        `${fmtMs(quantile(before, 0.5))} → ${fmtMs(quantile(during, 0.5))} ms | ${each.map((x) => x.toFixed(2)).join(', ')} |`,
    );
  }
  return lines;
}

function describeEnvironment(opts: Options, server: Server, pgVersion: string, pg: Record<string, string>, loaded: Loaded, logPath: string): Record<string, string> {
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    // not a git checkout
  }
  const cpu = cpus();
  const s = server.ready.settings;
  return {
    command: `node dist/bench/move.bench.js ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'cpu'}, Node ${process.version}, PostgreSQL ${pgVersion} (${Object.entries(pg).map(([k, v]) => `${k}=${v}`).join(', ')}), commit ${commit}`,
    data: `moving tenant bulk-loaded in its pool home: ${fmtInt(loaded.projects)} projects, ${fmtInt(loaded.tasks)} tasks, ${fmtInt(loaded.invoices)} invoices (${fmtInt(loaded.projects + loaded.tasks + loaded.invoices)} rows); one tenant chained ${DIRECTIONS.map(([f, t]) => `${f} → ${t}`).join(', ')}`,
    load:
      `open loop, latency from the scheduled time: writer ${opts.rate} req/s to the moving tenant (60 % POST /invoices, 20 % POST /projects, 20 % PATCH /projects/:id); ` +
      `other pool and bridge tenants ${opts.otherRate} req/s each (GET /projects/:id, POST /invoices alternating); ${opts.warmupMs / 1000} s warm-up, ` +
      `${opts.beforeMs / 1000} s "before" window per move, ≥ ${opts.afterMs / 1000} s after each move`,
    'API child': `app defaults (DATA_POOL_MAX ${s.dataPoolMax}, SILO_POOL_MAX ${s.siloPoolMax}, placement fence ${s.placementFence ? 'on' : 'off'}, cutover lock timeout ${s.moveCutoverLockTimeoutMs} ms, registry cache ${s.registryCacheTtlMs} ms) except MOVE_SOURCE_RETENTION_SECONDS=0${opts.executor === 'worker' ? '; moves run by a worker process (apps/worker, MOVES_EXECUTOR=false in the API), both with REDIS_URL' : '; the API child runs the moves'}; log: ${logPath}`,
  };
}

// ---------------------------------------------------------------------------------------------
// main

const options = parseOptions(process.argv.slice(2));
void runBench(
  'move',
  async ({ db, logFd, logPath, onCleanup, keepLog }) => {
    const opts = options;
    const pgVersion = await db.serverVersion();
    const pgSettings = await db.settings(['synchronous_commit', 'fsync', 'max_connections', 'shared_buffers']);
    const s = await startServer(db, logFd, opts.executor, opts.dump);
    onCleanup(() => s.stop().catch((err) => console.error('stopping the API child failed:', err)));
    if (opts.executor === 'worker') {
      const worker = await startWorker(db, logFd);
      onCleanup(() => worker.stop());
      log(`worker pid ${worker.pid} runs the moves`);
    }
    const loops: OpenLoop<any>[] = [];
    onCleanup(() => Promise.all(loops.map((l) => l.stop().catch(() => undefined))));
    log(`API child pid ${s.child.pid} on ${s.base} (log ${logPath})`);
    if (!s.ready.settings.placementFence || s.ready.settings.movesExecutor !== (opts.executor === 'api') || s.ready.settings.moveSourceRetentionMs !== 0) {
      throw new Error(`the API child loaded unexpected settings: ${JSON.stringify(s.ready.settings)}`);
    }

    // Enterprise's quotas (none) at a rate and a concurrency no run reaches.
    await db.addPlan(BENCH_PLAN, 1_000_000, 1000);
    const admin = s.ready.adminToken;
    const mover = await onboard(s.base, admin, db, 'move', 'pool');
    const otherPool = await onboard(s.base, admin, db, 'other-pool', 'pool');
    const otherBridge = await onboard(s.base, admin, db, 'other-bridge', 'bridge');
    log(`tenants: ${mover.slug} (moving, starts on pool), ${otherPool.slug} (pool), ${otherBridge.slug} (bridge)`);

    const t0 = clock();
    const loaded = await bulkLoad(await homeOf(db, mover.id), mover.id, opts.rows);
    log(`bulk-loaded ${fmtInt(loaded.projects + loaded.tasks + loaded.invoices)} rows in ${fmtS(clock() - t0)}`);
    // The app must see them: a bulk project, its tasks and a bulk invoice through the real routes.
    const auth = { token: mover.token, tenant: mover.slug };
    await call(s.base, 'GET', `/projects/${loaded.projectIds[0]}`, auth);
    const tasks = await call<{ items: unknown[] }>(s.base, 'GET', `/projects/${loaded.projectIds[0]}/tasks?limit=10`, auth);
    if (tasks.items.length !== 5) throw new Error(`the app sees ${tasks.items.length} tasks of a bulk project, expected 5`);
    if (loaded.sampleInvoiceId) await call(s.base, 'GET', `/invoices/${loaded.sampleInvoiceId}`, auth);

    // Loads: bounded by count, time and requests in flight; all to 127.0.0.1.
    const maxDurationMs = opts.warmupMs + opts.rounds * DIRECTIONS.length * (opts.beforeMs + MOVE_DEADLINE_MS + SOURCE_DROP_WAIT_MS + opts.afterMs) + 60_000;
    const writer = new OpenLoop<WriteMeta>({
      name: 'writer',
      origin: s.base,
      rate: opts.rate,
      plan: writerPlan(mover, db.runId, loaded.projectIds),
      maxRequests: Math.ceil((opts.rate * maxDurationMs) / 1000),
      maxDurationMs,
      maxInFlight: Math.max(100, Math.ceil(opts.rate * 5)),
      connections: 64,
      timeoutMs: 30_000,
    });
    const others: OtherLoad[] = [otherPool, otherBridge].map((t, i) => ({
      tenant: t,
      tier: (i === 0 ? 'pool' : 'bridge') as Tier,
      loop: new OpenLoop({
        name: t.name,
        origin: s.base,
        rate: opts.otherRate,
        plan: otherPlan(t, db.runId),
        maxRequests: Math.ceil((opts.otherRate * maxDurationMs) / 1000),
        maxDurationMs,
        maxInFlight: Math.max(50, Math.ceil(opts.otherRate * 5)),
        connections: 32,
        timeoutMs: 30_000,
      }),
    }));
    loops.push(writer, ...others.map((o) => o.loop));
    for (const l of loops) l.start();
    log(`load on: writer ${opts.rate} req/s, other tenants ${opts.otherRate} req/s each; warming up ${opts.warmupMs / 1000} s`);
    await sleep(opts.warmupMs);

    const results: DirectionResult[] = [];
    // The homes the moving tenant passes through: the bench database (pool, bridge) and its silo database.
    const meter = await CpuMeter.open(db.adminUrl, s.child.pid, [db.name, `strata_t_${mover.slug.replace(/-/g, '_')}`]);
    onCleanup(() => meter.close());
    const sampler = new Client({ connectionString: db.adminUrl, application_name: 'strata-bench-move-cpu' });
    await sampler.connect();
    onCleanup(() => sampler.end());
    rounds: for (let round = 1; round <= opts.rounds; round++) {
      for (const [from, to] of DIRECTIONS) {
        const r = await runMove(s, db, mover, from, to, opts, writer, meter, sampler);
        results.push(r);
        log(`${opts.rounds > 1 ? `round ${round}, ` : ''}${from} → ${to}: ${r.check.lost.length} lost, ${r.check.doubled.length} doubled of ${fmtInt(r.check.acked)} acked so far`);
        if (r.view.phase !== 'done') break rounds;
      }
    }

    await Promise.all(loops.map((l) => l.stop()));
    const home = await homeOf(db, mover.id);
    const { acks, failed } = acksOf(writer.samples, Infinity);
    const finalCheck = await checkAcks(home, mover.id, acks, failed);

    if (opts.dump) {
      writeFileSync(opts.dump, JSON.stringify({
        moves: results.map((r) => ({ from: r.from, to: r.to, requestedAt: r.requestedAt, endedAt: r.endedAt, phases: r.view.phases })),
        writer: writer.samples.map((x) => [x.intended, x.done, x.op]),
        others: others.map((o) => ({ tier: o.tier, samples: o.loop.samples.map((x) => [x.intended, x.done, x.op]) })),
      }));
    }
    const text = report(results, writer, others, finalCheck, describeEnvironment(opts, s, pgVersion, pgSettings, loaded, logPath));
    console.log(text);
    // The executor's own account (pause, retries, failures), from the API child's log.
    const moveLines = readFileSync(logPath, 'utf8')
      .split('\n')
      .filter((l) => /"context":"MoveExecutor"|MoveExecutor/.test(l))
      .map((l) => {
        try {
          const j = JSON.parse(l) as { msg?: string; level?: number };
          return `  [${j.level}] ${j.msg}`;
        } catch {
          return `  ${l}`;
        }
      });
    if (moveLines.length) console.error(`\nMoveExecutor log:\n${moveLines.join('\n')}`);

    const lostOrDoubled = results.some((r) => r.check.lost.length || r.check.doubled.length) || finalCheck.lost.length + finalCheck.doubled.length > 0;
    const unfinished = results.length < opts.rounds * DIRECTIONS.length || results.some((r) => r.view.phase !== 'done');
    if (lostOrDoubled || unfinished) {
      keepLog();
      if (lostOrDoubled) console.error('\n!! BENCH FAILED: acknowledged writes are missing from or doubled in the tenant\'s home (see above)');
      if (unfinished) console.error('\n!! BENCH FAILED: a move did not finish (see above)');
      return 1;
    }
    return 0;
  },
  { keepLog: options.keepLog },
);
