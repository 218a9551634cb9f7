import type { DynamicModule } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { Client, escapeIdentifier } from 'pg';
import type { StrataConfig } from '#strata/common';
import type { Tier } from '#strata/control-plane';
import { checkFleetGuardrails } from '#strata/migrator';
import { ExecutorKilled, MOVE_EXECUTOR_HOOKS, MoveExecutor, type MoveExecutorHooks, type MoveStep, type TenantMoveView } from '#strata/moves';
import { FENCE_CHECK_SQL, RETIRED_HOME_SQLSTATE, tenantSetupSql } from '#strata/tenancy/platform';
import { createApp } from '../../apps/api/src/app.factory';
import { startExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

/**
 * Faults around online tenant moves (libs/platform/moves), through the real API on real PostgreSQL:
 * an executor killed at each step and resumed by another instance, cancel, an unreachable target
 * server, the old home's cleanup and retention, and the RLS guardrails after moves.
 *
 * Instances, all on one control plane (one test database):
 * - T (startTestApp): the admin API and half of the tenant traffic; its executor does not poll
 *   (`movesExecutor: false`) — tests call `drain()` on it to resume a move "elsewhere";
 * - S: a second serving instance (executor off) that hears of a cutover only through pub/sub or the fence;
 * - A: per kill case, an instance whose executor dies at one step (hook throws ExecutorKilled), then is closed;
 * - E: a polling executor for the cancel / cleanup / guardrail / unreachable-server tests, whose hook can pause;
 * - L: a polling executor with a one-hour source retention.
 *
 * The stalled-executor test below fails today (a bug in libs/platform/moves, not in the test): an executor
 * that lost its lease while stalled at `provisioning` still runs `provision()` when it wakes, and
 * `driver.drop(to)` drops the home that another executor has meanwhile made the tenant's live one.
 */

jest.setTimeout(180_000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
type Http = () => ReturnType<typeof request>;

function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

async function waitUntil<T>(probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number, what: string, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(everyMs);
  }
}

/** A global module handing MOVE_EXECUTOR_HOOKS to the MoveExecutor of one app. */
function hooksModule(hooks: MoveExecutorHooks): DynamicModule {
  class MoveFaultHooksModule {}
  return { module: MoveFaultHooksModule, global: true, providers: [{ provide: MOVE_EXECUTOR_HOOKS, useValue: hooks }], exports: [MOVE_EXECUTOR_HOOKS] };
}

interface Instance {
  app: NestExpressApplication;
  http: Http;
  executor: MoveExecutor;
  close(): Promise<void>;
}

/** Another API instance on the same control plane (and database) as `config`. */
async function startInstance(config: StrataConfig, hooks?: MoveExecutorHooks): Promise<Instance> {
  const app = await createApp(config, { logger: ['error', 'fatal'], extra: hooks ? { imports: [hooksModule(hooks)] } : {} });
  await app.init();
  const server = app.getHttpServer();
  let closed = false;
  return {
    app,
    http: () => request(server),
    executor: app.get(MoveExecutor),
    async close() {
      if (closed) return;
      closed = true;
      await app.close();
    },
  };
}

const TERMINAL = ['done', 'failed', 'cancelled'];
const KILL_PHASE: Record<MoveStep, string> = {
  provisioning: 'provisioning',
  copying: 'copying',
  catching_up: 'catching_up',
  verifying: 'verifying',
  'cutover:before-lock': 'cutover',
  'cutover:retired': 'cutover',
  'cutover:flipped': 'cutover',
};

/** Where a tenant's rows are, as the owner sees it. */
interface HomeRef {
  tier: Tier;
  poolId: string;
  host: string;
  port: number;
  /** The database the rows are in (a silo's own; the pool's otherwise). */
  database: string;
  /** The pool's database (a silo's maintenance database). */
  poolDatabase: string;
  schema: string;
}

interface Failure {
  op: string;
  via: string;
  status: number;
  error?: string;
  retryAfter?: string;
  ms: number;
}

interface ProjectLog {
  name: string;
  /** A rename whose outcome is unknown (no answer): either name is acceptable. */
  alt?: string;
  deleted: boolean;
  deleteUnknown?: boolean;
}

/**
 * Writes to one tenant over HTTP from several loops (one per instance) and keeps a log of what the
 * API acknowledged: projects created, renamed and deleted, tasks created. Reads back its own
 * acknowledged projects and records any read that does not show the acknowledged state.
 */
class Writer {
  readonly projects = new Map<string, ProjectLog>();
  readonly tasks = new Map<string, string>();
  /** Names of creates without an answer: the row may or may not exist (never twice). */
  readonly unknownCreates = new Set<string>();
  /** Names of creates refused with 503 tenant_moving: rolled back, must not exist. */
  readonly refusedCreates = new Set<string>();
  readonly failures: Failure[] = [];
  readonly staleReads: string[] = [];
  readonly latencies: number[] = [];
  private stopped = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  constructor(
    private readonly tenant: OnboardedTenant,
    private readonly via: Array<{ name: string; http: Http }>,
    private readonly label: string,
  ) {}

  start(): void {
    this.loops = this.via.map((v) => this.loop(v));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.loops);
  }

  get ops(): number {
    return this.latencies.length;
  }

  get maxMs(): number {
    return Math.round(Math.max(0, ...this.latencies));
  }

  private headers() {
    return { 'X-Tenant': this.tenant.slug, authorization: `Bearer ${this.tenant.token}` };
  }

  private async call(op: string, via: string, req: ReturnType<ReturnType<Http>['get']>): Promise<request.Response | undefined> {
    const started = performance.now();
    try {
      const res = await req.set(this.headers()).timeout(30_000);
      const ms = performance.now() - started;
      this.latencies.push(ms);
      if (res.status >= 300) {
        this.failures.push({ op, via, status: res.status, error: res.body?.error, retryAfter: res.headers['retry-after'], ms: Math.round(ms) });
      }
      return res;
    } catch (err) {
      const ms = performance.now() - started;
      this.latencies.push(ms);
      this.failures.push({ op, via, status: 0, error: (err as Error).message, ms: Math.round(ms) });
      return undefined;
    }
  }

  private refused(res: request.Response | undefined): boolean {
    return res?.status === 503 && res.body?.error === 'tenant_moving';
  }

  private async loop(v: { name: string; http: Http }): Promise<void> {
    const mine: string[] = [];
    for (let i = 0; !this.stopped; i++) {
      const op = i % 6;
      const pick = mine.length ? mine[mine.length - 1 - (i % Math.min(mine.length, 5))] : undefined;
      if (op === 0 || op === 3 || !pick) {
        const name = `${this.label}-${v.name}-${++this.seq}`;
        const res = await this.call('create', v.name, v.http().post('/projects').send({ name }));
        if (res?.status === 201) {
          this.projects.set(res.body.id, { name, deleted: false });
          mine.push(res.body.id);
        } else if (this.refused(res)) this.refusedCreates.add(name);
        else this.unknownCreates.add(name);
      } else if (op === 1) {
        const log = this.projects.get(pick)!;
        const name = `${log.name}-u${i}`.slice(0, 200);
        const res = await this.call('rename', v.name, v.http().patch(`/projects/${pick}`).send({ name }));
        if (res?.status === 200) this.projects.set(pick, { name, deleted: false });
        else if (!this.refused(res)) log.alt = name;
      } else if (op === 2) {
        const log = this.projects.get(pick)!;
        const res = await this.call('read', v.name, v.http().get(`/projects/${pick}`));
        if (res?.status === 200 && res.body.name !== log.name && res.body.name !== log.alt) {
          this.staleReads.push(`${v.name}: project ${pick} read as ${JSON.stringify(res.body.name)}, acknowledged ${JSON.stringify(log.name)}`);
        }
        if (res?.status === 404 && !log.alt) this.staleReads.push(`${v.name}: acknowledged project ${pick} read as 404`);
      } else if (op === 4) {
        const res = await this.call('task', v.name, v.http().post(`/projects/${pick}/tasks`).send({ title: `task ${i}` }));
        if (res?.status === 201) this.tasks.set(res.body.id, pick);
      } else if (op === 5 && i % 12 === 5 && mine.length > 3) {
        const victim = mine.shift()!;
        const log = this.projects.get(victim)!;
        const res = await this.call('delete', v.name, v.http().delete(`/projects/${victim}`));
        if (res?.status === 204) log.deleted = true;
        else if (!this.refused(res)) log.deleteUnknown = true;
      }
      await sleep(2);
    }
  }

  summary() {
    const byKind = new Map<string, number>();
    for (const f of this.failures) {
      const k = `${f.status} ${f.error ?? ''}${f.retryAfter ? ` (Retry-After ${f.retryAfter})` : ''}`;
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
    }
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      ops: this.ops,
      failures: Object.fromEntries(byKind),
      p50Ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
      maxMs: this.maxMs,
      over1s: this.latencies.filter((l) => l > 1000).length,
      staleReads: this.staleReads.length,
    };
  }
}

const SEED = { projects: 100, invoices: 25 };

describe('tenant moves under faults: killed executors, cancel, an unreachable target, cleanup, guardrails', () => {
  let t: TestApp;
  let s: Instance;
  const observations: Record<string, unknown>[] = [];
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });

  beforeAll(async () => {
    t = await startTestApp({ movesExecutor: false });
    s = await startInstance({ ...t.config, movesExecutor: false });
  });

  afterAll(async () => {
    await s?.close();
    await t?.close();
    if (observations.length) console.log(`tenant-move-faults observations:\n${observations.map((o) => JSON.stringify(o)).join('\n')}`);
  });

  // --- owner-side SQL -------------------------------------------------------------------------------

  function urlOn(host: string, port: number, database: string, user?: string): string {
    const u = new URL(t.db.ownerUrl);
    u.hostname = host;
    u.port = String(port);
    u.pathname = `/${encodeURIComponent(database)}`;
    if (user) {
      u.username = user;
      u.password = '';
    }
    return u.toString();
  }

  async function sql<R = Record<string, unknown>>(url: string, text: string, params: unknown[] = []): Promise<R[]> {
    const c = new Client({ connectionString: url, connectionTimeoutMillis: 5000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      return (await c.query(text, params)).rows as R[];
    } finally {
      await c.end().catch(() => undefined);
    }
  }
  const control = <R = Record<string, unknown>>(text: string, params: unknown[] = []) => sql<R>(t.db.ownerUrl, text, params);

  async function homeRef(tier: Tier, poolId: string, schema: string, databaseName: string | null): Promise<HomeRef> {
    const [p] = await control<{ host: string; port: number; database: string }>(`SELECT host, port, database FROM control.pools WHERE id = $1`, [poolId]);
    return { tier, poolId, host: p.host, port: p.port, poolDatabase: p.database, database: tier === 'silo' ? databaseName! : p.database, schema };
  }

  async function currentHome(tenantId: string): Promise<HomeRef> {
    const [r] = await control<{ tier: Tier; pool_id: string; schema_name: string; database_name: string | null }>(
      `SELECT tier, pool_id, schema_name, database_name FROM control.tenants WHERE id = $1`,
      [tenantId],
    );
    return homeRef(r.tier, r.pool_id, r.schema_name, r.database_name);
  }

  async function moveHomes(moveId: string): Promise<{ from: HomeRef; to: HomeRef }> {
    const [m] = await control<Record<string, string | null>>(`SELECT * FROM control.tenant_moves WHERE id = $1`, [moveId]);
    return {
      from: await homeRef(m.from_tier as Tier, m.from_pool_id!, m.from_schema!, m.from_database),
      to: await homeRef(m.to_tier as Tier, m.to_pool_id!, m.to_schema!, m.to_database),
    };
  }

  const homeUrl = (h: HomeRef) => urlOn(h.host, h.port, h.database);
  const q = (h: HomeRef, table: string) => `${escapeIdentifier(h.schema)}.${escapeIdentifier(table)}`;

  async function databaseExists(h: HomeRef): Promise<boolean> {
    const rows = await sql(urlOn(h.host, h.port, h.poolDatabase), `SELECT 1 FROM pg_database WHERE datname = $1`, [h.database]);
    return rows.length > 0;
  }

  /** Whether the home still holds anything of the tenant: the schema (bridge), the database (silo), its rows (pool). */
  async function homeExists(h: HomeRef, tenantId: string): Promise<boolean> {
    if (h.tier === 'silo') return databaseExists(h);
    if (h.tier === 'bridge') return (await sql(homeUrl(h), `SELECT 1 FROM pg_namespace WHERE nspname = $1`, [h.schema])).length > 0;
    return (await tenantRows(h, tenantId)) > 0;
  }

  /** Rows of the tenant in every tenant table of the home. */
  async function tenantRows(h: HomeRef, tenantId: string): Promise<number> {
    const tables = await sql<{ table_name: string }>(
      homeUrl(h),
      `SELECT table_name FROM information_schema.columns WHERE table_schema = $1 AND column_name = 'tenant_id'`,
      [h.schema],
    );
    let n = 0;
    for (const { table_name } of tables) {
      n += Number((await sql<{ n: string }>(homeUrl(h), `SELECT count(*) AS n FROM ${q(h, table_name)} WHERE tenant_id = $1`, [tenantId]))[0].n);
    }
    return n;
  }

  /** A few hundred rows of the tenant written straight into its home as the owner. */
  async function seed(h: HomeRef, tenantId: string): Promise<void> {
    const c = new Client({ connectionString: homeUrl(h) });
    await c.connect();
    try {
      await c.query(`INSERT INTO ${q(h, 'projects')} (tenant_id, name, description) SELECT $1, 'seed-' || g, repeat('x', g) FROM generate_series(1, $2::int) g`, [
        tenantId,
        SEED.projects,
      ]);
      await c.query(`INSERT INTO ${q(h, 'tasks')} (tenant_id, project_id, title) SELECT tenant_id, id, 'task of ' || name FROM ${q(h, 'projects')} WHERE tenant_id = $1`, [
        tenantId,
      ]);
      await c.query(`INSERT INTO ${q(h, 'invoices')} (tenant_id, number, amount, currency) SELECT $1, 'INV-' || g, g * 100, 'EUR' FROM generate_series(1, $2::int) g`, [
        tenantId,
        SEED.invoices,
      ]);
    } finally {
      await c.end();
    }
  }

  /** The capture triggers of this move and its change-log rows still in the source database (null: the database is gone). */
  async function captureLeftovers(h: HomeRef, moveId: string): Promise<{ triggers: string[]; changes: number } | null> {
    if (h.tier === 'silo' && !(await databaseExists(h))) return null;
    const prefix = `strata_move_${moveId.replace(/-/g, '').slice(0, 16)}_`;
    const triggers = await sql<{ tgname: string }>(homeUrl(h), `SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND starts_with(tgname, $1) ORDER BY 1`, [prefix]);
    const [{ ok }] = await sql<{ ok: boolean }>(homeUrl(h), `SELECT to_regclass('strata_fence.move_changes') IS NOT NULL AS ok`);
    const changes = ok ? Number((await sql<{ n: string }>(homeUrl(h), `SELECT count(*) AS n FROM strata_fence.move_changes WHERE move_id = $1`, [moveId]))[0].n) : 0;
    return { triggers: triggers.map((r) => r.tgname), changes };
  }

  /**
   * The home holds exactly the seeded rows and what the writer's log says: every acknowledged
   * project once with its acknowledged name (deleted ones absent), every acknowledged task, no
   * refused (503) write, no name twice, nothing nobody wrote.
   */
  async function expectHomeMatchesLog(h: HomeRef, tenantId: string, w?: Writer): Promise<Record<string, number>> {
    const projects = await sql<{ id: string; name: string }>(homeUrl(h), `SELECT id::text, name FROM ${q(h, 'projects')} WHERE tenant_id = $1`, [tenantId]);
    const tasks = await sql<{ id: string; project_id: string; title: string }>(
      homeUrl(h),
      `SELECT id::text, project_id::text, title FROM ${q(h, 'tasks')} WHERE tenant_id = $1`,
      [tenantId],
    );
    const [{ n: invoices }] = await sql<{ n: string }>(homeUrl(h), `SELECT count(*) AS n FROM ${q(h, 'invoices')} WHERE tenant_id = $1`, [tenantId]);
    const problems: string[] = [];
    const byName = new Map<string, number>();
    for (const p of projects) byName.set(p.name, (byName.get(p.name) ?? 0) + 1);
    for (const [name, n] of byName) if (n > 1) problems.push(`project ${name} present ${n} times`);
    const byId = new Map(projects.map((p) => [p.id, p]));
    const seeded = projects.filter((p) => p.name.startsWith('seed-'));
    if (seeded.length !== SEED.projects) problems.push(`${seeded.length} seeded projects, expected ${SEED.projects}`);
    const seededTasks = tasks.filter((x) => x.title.startsWith('task of seed-'));
    if (seededTasks.length !== SEED.projects) problems.push(`${seededTasks.length} seeded tasks, expected ${SEED.projects}`);
    if (Number(invoices) !== SEED.invoices) problems.push(`${invoices} invoices, expected ${SEED.invoices}`);
    let live = 0;
    if (w) {
      for (const [id, log] of w.projects) {
        const row = byId.get(id);
        if (log.deleted) {
          if (row) problems.push(`project ${id} (${log.name}) was deleted (204) but is present`);
          continue;
        }
        if (!row) {
          if (!log.deleteUnknown) problems.push(`acknowledged project ${id} (${log.name}) is missing`);
          continue;
        }
        live++;
        if (row.name !== log.name && row.name !== log.alt) problems.push(`project ${id} is named ${row.name}, acknowledged ${log.name}`);
      }
      for (const p of projects) {
        if (p.name.startsWith('seed-') || w.projects.has(p.id)) continue;
        if (!w.unknownCreates.has(p.name)) problems.push(`project ${p.id} (${p.name}) was never acknowledged${w.refusedCreates.has(p.name) ? ' (its create was refused with 503)' : ''}`);
      }
      const taskIds = new Set(tasks.map((x) => x.id));
      for (const [id, projectId] of w.tasks) {
        const parent = w.projects.get(projectId);
        if (parent?.deleted || parent?.deleteUnknown) continue;
        if (!taskIds.has(id)) problems.push(`acknowledged task ${id} is missing`);
      }
    }
    expect(problems).toEqual([]);
    return { projects: projects.length, tasks: tasks.length, invoices: Number(invoices), writerProjectsLive: live };
  }

  // --- the admin API ---------------------------------------------------------------------------------

  async function requestMove(via: Http, tenantId: string, body: { toTier: Tier; toPoolId?: string }): Promise<TenantMoveView> {
    const res = await via().post(`/admin/tenants/${tenantId}/moves`).set(admin()).send(body);
    expect({ status: res.status, body: res.body }).toMatchObject({ status: 202, body: { phase: 'queued', toTier: body.toTier } });
    return res.body as TenantMoveView;
  }

  async function getMove(id: string): Promise<TenantMoveView> {
    const res = await t.http().get(`/admin/moves/${id}`).set(admin());
    expect(res.status).toBe(200);
    return res.body as TenantMoveView;
  }

  const waitForMove = (id: string, timeoutMs = 20_000, phases = TERMINAL) =>
    waitUntil(() => getMove(id), (m) => phases.includes(m.phase), timeoutMs, `move ${id} to reach ${phases.join('|')}`, 100);

  async function tenantView(id: string): Promise<{ tier: Tier; poolId: string }> {
    const res = await t.http().get(`/admin/tenants/${id}`).set(admin());
    expect(res.status).toBe(200);
    return res.body;
  }

  const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

  /** How long each recorded phase took (a resumed phase counts from its first start). */
  function phaseDurations(m: TenantMoveView): Record<string, number> {
    return Object.fromEntries(
      m.phases.filter((p) => p.finishedAt).map((p) => [p.phase, new Date(p.finishedAt!).getTime() - new Date(p.startedAt).getTime()]),
    );
  }

  /** Verification's per-table figures agree on both sides. */
  function expectChecksAgree(m: TenantMoveView): void {
    expect(m.checks.length).toBeGreaterThanOrEqual(3);
    for (const c of m.checks) expect({ table: c.table, rows: c.targetRows, sum: c.targetChecksum }).toEqual({ table: c.table, rows: c.sourceRows, sum: c.sourceChecksum });
  }

  /** Onboards a tenant of `tier` with a few hundred rows in its home. */
  async function seededTenant(base: string, tier: Tier): Promise<{ tenant: OnboardedTenant; home: HomeRef }> {
    const tenant = await t.onboard(base, tier);
    const home = await currentHome(tenant.id);
    await seed(home, tenant.id);
    return { tenant, home };
  }

  // --- 1. kill the executor at each step ----------------------------------------------------------

  describe('an executor killed at any step is resumed by another instance', () => {
    const cases: Array<[MoveStep, Tier, Tier]> = [
      ['provisioning', 'pool', 'bridge'],
      ['copying', 'bridge', 'silo'],
      ['catching_up', 'silo', 'pool'],
      ['verifying', 'pool', 'silo'],
      ['cutover:before-lock', 'silo', 'bridge'],
      ['cutover:retired', 'bridge', 'pool'],
      ['cutover:flipped', 'pool', 'bridge'],
    ];

    /**
     * Executor A dies at `step` while T and S serve the tenant's writer; after A's lease ran out
     * (and not before `resumeNotBeforeMs` after the kill: a late next executor) T's executor resumes
     * the move. Returns the writer for case-specific checks.
     */
    async function killAndResume(step: MoveStep, fromTier: Tier, toTier: Tier, resumeNotBeforeMs = 0): Promise<Writer> {
      const { tenant } = await seededTenant(`k${fromTier[0]}${toTier[0]}`, fromTier);
      const killed = deferred<number>();
      let fired = false;
      const a = await startInstance({ ...t.config, movesExecutor: true }, {
        onStep(at, move) {
          if (fired || at !== step || move.tenantId !== tenant.id) return;
          fired = true;
          killed.resolve(Date.now());
          throw new ExecutorKilled(`killed at ${step}`);
        },
      });
      const writer = new Writer(tenant, [{ name: 'T', http: t.http }, { name: 'S', http: s.http }], `k-${step.replace(':', '-')}`);
      try {
        writer.start();
        await sleep(200);
        const move = await requestMove(a.http, tenant.id, { toTier });
        const killedAt = await within(killed.promise, 15_000, `executor A to reach ${step}`);
        // The process is gone: its lease stays until it runs out, nothing was cleaned up.
        await a.close();
        expect((await getMove(move.id)).phase).toBe(KILL_PHASE[step]);
        const [lease] = await control<{ held: boolean; owner: string | null }>(
          `SELECT lease_until > now() + interval '500 ms' AS held, lease_owner AS owner FROM control.tenant_moves WHERE id = $1`,
          [move.id],
        );
        expect(lease.owner).toBe(a.executor.owner);
        if (lease.held) {
          // Another instance cannot take it before the lease runs out …
          await t.app.get(MoveExecutor).drain();
          expect((await getMove(move.id)).phase).toBe(KILL_PHASE[step]);
        }
        // … and resumes it after.
        await waitUntil(
          () => control<{ free: boolean }>(`SELECT lease_until < now() AS free FROM control.tenant_moves WHERE id = $1`, [move.id]),
          (r) => r[0].free,
          t.config.moveLeaseMs + 2000,
          'the dead executor’s lease to run out',
        );
        const leaseFreeAt = Date.now();
        await sleep(Math.max(0, killedAt + resumeNotBeforeMs - Date.now()));
        const resumedAt = Date.now();
        await t.app.get(MoveExecutor).drain();
        const done = await getMove(move.id);
        // Traffic on the new home for a little while.
        await sleep(300);
        await writer.stop();

        expect({ phase: done.phase, error: done.error }).toEqual({ phase: 'done', error: null });
        expectChecksAgree(done);
        expect(done.phases.map((p) => p.phase)).toEqual(['provisioning', 'copying', 'catching_up', 'verifying', 'cutover', 'done']);
        expect(await tenantView(tenant.id)).toMatchObject({ tier: toTier, poolId: `main-${toTier}` });

        const { from, to } = await moveHomes(move.id);
        const counts = await expectHomeMatchesLog(to, tenant.id, writer);
        // Capture is gone from the source; the source itself is dropped (retention 0) by the same drain.
        expect(await captureLeftovers(from, move.id)).toEqual(from.tier === 'silo' ? null : { triggers: [], changes: 0 });
        expect(await homeExists(from, tenant.id)).toBe(false);
        expect(writer.staleReads).toEqual([]);
        // Both serving instances write the tenant's new home now.
        for (const [name, via] of [['T', t.http], ['S', s.http]] as const) {
          const res = await via().post('/projects').set(as(tenant)).send({ name: `after the move via ${name}` });
          expect({ via: name, status: res.status }).toEqual({ via: name, status: 201 });
          expect(await sql(homeUrl(to), `SELECT 1 AS n FROM ${q(to, 'projects')} WHERE id = $1`, [res.body.id])).toEqual([{ n: 1 }]);
        }
        // Whatever failed is a 503 tenant_moving with Retry-After (and expectHomeMatchesLog showed none of those wrote).
        for (const f of writer.failures) expect(f).toEqual(expect.objectContaining({ status: 503, error: 'tenant_moving', retryAfter: expect.stringMatching(/^\d+$/) }));

        observations.push({
          case: `kill at ${step} (${fromTier}→${toTier})${resumeNotBeforeMs ? `, resumed ${resumeNotBeforeMs} ms after the kill` : ''}`,
          killToLeaseFreeMs: leaseFreeAt - killedAt,
          killToResumeMs: resumedAt - killedAt,
          resumeToDoneMs: new Date(done.finishedAt!).getTime() - resumedAt,
          pauseMs: done.pauseMs,
          phaseMs: phaseDurations(done),
          rowsCopied: done.rowsCopied,
          ...counts,
          writer: writer.summary(),
        });
        return writer;
      } finally {
        await writer.stop();
        await a.close();
      }
    }

    it.each(cases)(
      'killed at %s (%s → %s): another instance resumes after the lease, the move ends done, every acknowledged write is in the new home once, the tenant is served throughout without a failed request',
      async (step, fromTier, toTier) => {
        const writer = await killAndResume(step, fromTier, toTier);
        expect(writer.failures).toEqual([]);
      },
    );

    it('killed at cutover:retired (silo → bridge) with the next executor 6.5 s late: requests in the gap answer 503 tenant_moving with Retry-After after waiting 5 s, none of them wrote, nothing acknowledged is lost, and the tenant is served again after the flip', async () => {
      const writer = await killAndResume('cutover:retired', 'silo', 'bridge', 6500);
      // The source was retired and the placement not flipped for longer than a unit waits (5 s).
      expect(writer.failures.length).toBeGreaterThan(0);
      for (const f of writer.failures) expect(f.ms).toBeGreaterThanOrEqual(4900);
    });
  });

  // --- 1b. an executor that outlives its lease ---------------------------------------------------

  describe('an executor whose lease ran out while it stalled', () => {
    /**
     * A stalls inside a step (the hook holds it; in production a GC or event-loop stall, or a
     * partition from the control plane, longer than the lease). Its lease is made to run out — the
     * row looks as a lapsed lease does to `claim()`, and A's next heartbeat learns it lost the move —
     * and B claims the move and finishes it; the tenant then writes to its new home. When A wakes up
     * it must not touch the move's homes any more.
     *
     * Fails today: nothing between the step and its work re-checks the lease (assertLease() runs
     * before the hook only, and reads a flag the heartbeat sets), and provision() drops the target
     * unconditionally — here the tenant's live bridge schema: every row gone, recreated empty, and
     * A's startCapture() leaves its triggers on the old pool tables for good.
     */
    it.each<[MoveStep, Tier, Tier, number]>([['provisioning', 'pool', 'bridge', 0]])(
      'stalled at %s (%s → %s, retention %i ms) and woken after another executor finished the move: the tenant’s live home keeps every write made after the cutover',
      async (step, fromTier, toTier, retentionMs) => {
        const { tenant } = await seededTenant(`z${fromTier[0]}${toTier[0]}`, fromTier);
        const reached = deferred();
        const gate = deferred();
        let held = false;
        const a = await startInstance({ ...t.config, movesExecutor: true }, {
          async onStep(at, move) {
            if (held || at !== step || move.tenantId !== tenant.id) return;
            held = true;
            reached.resolve();
            await gate.promise;
          },
        });
        const b = await startInstance({ ...t.config, movesExecutor: false, moveSourceRetentionMs: retentionMs });
        // To wait for A's own end of the move (not for an app shutdown that pulls its connections away).
        const runs: Promise<void>[] = [];
        const execute = a.executor.execute.bind(a.executor);
        jest.spyOn(a.executor, 'execute').mockImplementation((m) => {
          const run = execute(m);
          runs.push(run);
          return run;
        });
        try {
          const move = await requestMove(a.http, tenant.id, { toTier });
          await within(reached.promise, 15_000, `executor A to reach ${step}`);
          // A's lease lapses while it stalls …
          await control(`UPDATE control.tenant_moves SET lease_owner = NULL, lease_until = now() - interval '1 second' WHERE id = $1`, [move.id]);
          // … B claims the move and finishes it; A's heartbeat meanwhile finds the move taken.
          await b.executor.drain();
          const done = await getMove(move.id);
          expect({ phase: done.phase, error: done.error }).toEqual({ phase: 'done', error: null });
          await sleep(t.config.moveLeaseMs / 3 + 300);
          const { from, to } = await moveHomes(move.id);

          // The tenant works on its new home: a rename, a delete, a create, all acknowledged.
          const [seed1] = await sql<{ id: string }>(homeUrl(to), `SELECT id::text FROM ${q(to, 'projects')} WHERE tenant_id = $1 AND name = 'seed-1'`, [tenant.id]);
          const [seed2] = await sql<{ id: string }>(homeUrl(to), `SELECT id::text FROM ${q(to, 'projects')} WHERE tenant_id = $1 AND name = 'seed-2'`, [tenant.id]);
          expect((await t.http().patch(`/projects/${seed1.id}`).set(as(tenant)).send({ name: 'renamed after the move' })).status).toBe(200);
          expect((await t.http().delete(`/projects/${seed2.id}`).set(as(tenant))).status).toBe(204);
          const created = await t.http().post('/projects').set(as(tenant)).send({ name: 'created after the move' });
          expect(created.status).toBe(201);
          const expected = [
            { id: seed1.id, name: 'renamed after the move' },
            { id: created.body.id, name: 'created after the move' },
          ].sort((x, y) => x.id.localeCompare(y.id));
          const watched = () =>
            sql<{ id: string; name: string }>(
              homeUrl(to),
              `SELECT id::text, name FROM ${q(to, 'projects')} WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY id`,
              [tenant.id, [seed1.id, seed2.id, created.body.id]],
            );
          expect(await watched()).toEqual(expected);
          const liveCount = await tenantRows(to, tenant.id);

          // A wakes up and runs until it notices.
          gate.resolve();
          await within(Promise.all(runs), 20_000, 'executor A to give the move up');
          await a.close();

          const after = { rows: await tenantRows(to, tenant.id), watched: await watched(), tenant: await tenantView(tenant.id) };
          observations.push({
            case: `stalled past the lease at ${step} (${fromTier}→${toTier})`,
            liveRowsBefore: liveCount,
            liveRowsAfterZombie: after.rows,
            watchedAfter: after.watched,
            captureLeftOnSource: await captureLeftovers(from, move.id),
          });
          expect(after).toEqual({ rows: liveCount, watched: expected, tenant: expect.objectContaining({ tier: toTier }) });
          expect((await t.http().get(`/projects/${created.body.id}`).set(as(tenant))).status).toBe(200);
        } finally {
          gate.resolve();
          await a.close();
          await b.close();
        }
      },
    );
  });

  // --- 2–5 with a polling executor ----------------------------------------------------------------

  describe('with a polling executor', () => {
    let e: Instance;
    let hook: MoveExecutorHooks['onStep'] | undefined;

    beforeAll(async () => {
      e = await startInstance({ ...t.config, movesExecutor: true }, { onStep: (step, move) => hook?.(step, move) });
    });
    afterAll(async () => {
      hook = undefined;
      await e?.close();
    });

    /** Holds the executor at `step` of the tenant's move until released. */
    function pauseAt(step: MoveStep, tenantId: string): { reached: Promise<void>; release: () => void } {
      const reached = deferred();
      const gate = deferred();
      hook = async (at, move) => {
        if (at !== step || move.tenantId !== tenantId) return;
        reached.resolve();
        await gate.promise;
      };
      return {
        reached: within(reached.promise, 15_000, `the executor to reach ${step}`),
        release: () => {
          hook = undefined;
          gate.resolve();
        },
      };
    }

    it.each<[MoveStep, Tier, Tier]>([
      ['copying', 'bridge', 'silo'],
      ['catching_up', 'pool', 'bridge'],
      ['catching_up', 'silo', 'pool'],
    ])(
      'cancel while %s (%s → %s): 202, the move ends cancelled, the tenant stays on its source with its data and writable, the target and the capture are gone',
      async (step, fromTier, toTier) => {
        const { tenant, home } = await seededTenant(`c${fromTier[0]}${toTier[0]}`, fromTier);
        const before = await tenantView(tenant.id);
        const writer = new Writer(tenant, [{ name: 'T', http: t.http }, { name: 'S', http: s.http }], `c-${step}`);
        const paused = pauseAt(step, tenant.id);
        let move: TenantMoveView | undefined;
        try {
          writer.start();
          move = await requestMove(t.http, tenant.id, { toTier });
          await paused.reached;
          const cancel = await t.http().post(`/admin/moves/${move.id}/cancel`).set(admin());
          expect({ status: cancel.status, phase: cancel.body.phase, cancelRequested: cancel.body.cancelRequested }).toEqual({
            status: 202,
            phase: step,
            cancelRequested: true,
          });
          paused.release();
          const ended = await waitForMove(move.id);
          await sleep(200);
          await writer.stop();
          expect({ phase: ended.phase, error: ended.error }).toEqual({ phase: 'cancelled', error: null });

          // Still on the source, its data intact (every acknowledged write) and writable.
          expect(await tenantView(tenant.id)).toMatchObject({ tier: before.tier, poolId: before.poolId });
          const counts = await expectHomeMatchesLog(home, tenant.id, writer);
          const wrote = await t.http().post('/projects').set(as(tenant)).send({ name: 'after the cancel' });
          expect(wrote.status).toBe(201);
          expect((await s.http().get(`/projects/${wrote.body.id}`).set(as(tenant))).status).toBe(200);
          expect(await sql(homeUrl(home), `SELECT name FROM ${q(home, 'projects')} WHERE id = $1`, [wrote.body.id])).toEqual([{ name: 'after the cancel' }]);

          // The target is gone, the capture too.
          const { from, to } = await moveHomes(move.id);
          expect(await homeExists(to, tenant.id)).toBe(false);
          expect(await captureLeftovers(from, move.id)).toEqual({ triggers: [], changes: 0 });
          expect(writer.failures).toEqual([]);
          expect(writer.staleReads).toEqual([]);
          observations.push({ case: `cancel at ${step} (${fromTier}→${toTier})`, ...counts, writer: writer.summary() });
        } finally {
          paused.release();
          await writer.stop();
        }
      },
    );

    it('a cutover whose last changes can never be applied (two invoices swap their numbers before the fence) fails after its attempts instead of retrying without end: the tenant stays on its source with its data and writable, the target and the capture are gone', async () => {
      const { tenant, home } = await seededTenant('swap', 'pool');
      const invoice = async (number: string) => (await t.http().post('/invoices').set(as(tenant)).send({ number, amount: 1, currency: 'EUR' }).expect(201)).body.id as string;
      const [a, b] = [await invoice('SWAP-A'), await invoice('SWAP-B')];
      const paused = pauseAt('cutover:before-lock', tenant.id);
      try {
        // Into a silo: the instances hold warm connections to the new database when it is dropped.
        const move = await requestMove(t.http, tenant.id, { toTier: 'silo' });
        await paused.reached;
        // The source's own unique index makes the swap go through a placeholder; the target only
        // ever gets each row's final state, one upsert after the other.
        await sql(
          homeUrl(home),
          `BEGIN;
           UPDATE ${q(home, 'invoices')} SET number = 'SWAP-TMP' WHERE tenant_id = '${tenant.id}' AND id = '${a}';
           UPDATE ${q(home, 'invoices')} SET number = 'SWAP-A' WHERE tenant_id = '${tenant.id}' AND id = '${b}';
           UPDATE ${q(home, 'invoices')} SET number = 'SWAP-B' WHERE tenant_id = '${tenant.id}' AND id = '${a}';
           COMMIT`,
        );
        paused.release();
        const ended = await waitForMove(move.id);
        expect({ phase: ended.phase, error: ended.error }).toEqual({ phase: 'failed', error: expect.stringMatching(/duplicate key value violates unique constraint/) });
        expect(ended.phases.map((p) => p.phase)).toContain('cutover');

        expect(await tenantView(tenant.id)).toMatchObject({ tier: 'pool' });
        const numbers = await sql<{ id: string; number: string }>(homeUrl(home), `SELECT id, number FROM ${q(home, 'invoices')} WHERE tenant_id = $1 AND id = ANY($2::uuid[]) ORDER BY number`, [
          tenant.id,
          [a, b],
        ]);
        expect(numbers).toEqual([
          { id: b, number: 'SWAP-A' },
          { id: a, number: 'SWAP-B' },
        ]);
        expect((await t.http().post('/projects').set(as(tenant)).send({ name: 'after the failed cutover' })).status).toBe(201);
        const { from, to } = await moveHomes(move.id);
        expect(await homeExists(to, tenant.id)).toBe(false);
        expect(await captureLeftovers(from, move.id)).toEqual({ triggers: [], changes: 0 });
      } finally {
        paused.release();
      }
    });

    it.each<[Tier, Tier]>([
      ['bridge', 'silo'],
      ['silo', 'pool'],
      ['pool', 'bridge'],
    ])(
      'with a source retention of 0 the old %s home is dropped shortly after the move to %s is done, and a done move is no longer cancellable (409)',
      async (fromTier, toTier) => {
        const { tenant } = await seededTenant(`r${fromTier[0]}${toTier[0]}`, fromTier);
        const move = await requestMove(t.http, tenant.id, { toTier });
        const done = await waitForMove(move.id);
        expect({ phase: done.phase, error: done.error }).toEqual({ phase: 'done', error: null });
        const { from, to } = await moveHomes(move.id);
        const started = Date.now();
        await waitUntil(() => homeExists(from, tenant.id), (exists) => !exists, 5000, `the old ${fromTier} home to be dropped`, 100);
        const droppedAfterMs = Date.now() - started;
        await waitUntil(() => getMove(move.id), (m) => m.sourceDroppedAt !== null, 2000, 'the move to record the drop');
        await expectHomeMatchesLog(to, tenant.id);
        expect((await t.http().get('/projects?limit=1').set(as(tenant))).status).toBe(200);

        const cancel = await t.http().post(`/admin/moves/${move.id}/cancel`).set(admin());
        expect({ status: cancel.status, error: cancel.body.error }).toEqual({ status: 409, error: 'move_not_cancellable' });
        observations.push({ case: `retention 0 (${fromTier}→${toTier})`, droppedWithinMsOfDone: droppedAfterMs });
      },
    );

    it('after moving a tenant pool → bridge → silo the RLS guardrails hold on every target and the instance is ready', async () => {
      const { tenant } = await seededTenant('guard', 'pool');
      for (const toTier of ['bridge', 'silo'] as const) {
        const move = await requestMove(t.http, tenant.id, { toTier });
        const done = await waitForMove(move.id);
        expect({ toTier, phase: done.phase, error: done.error }).toEqual({ toTier, phase: 'done', error: null });
        await expectHomeMatchesLog((await moveHomes(move.id)).to, tenant.id);
      }
      expect(await tenantView(tenant.id)).toMatchObject({ tier: 'silo', poolId: 'main-silo' });
      expect(await checkFleetGuardrails({ url: t.db.ownerUrl, appRole: t.config.appDbUser })).toEqual([]);
      const ready = await t.http().get('/health/ready');
      expect({ status: ready.status, rls: ready.body?.details?.rls?.status }).toEqual({ status: 200, rls: 'up' });
      expect((await t.http().post('/projects').set(as(tenant)).send({ name: 'in the silo' })).status).toBe(201);
    });

    // Last here: it leaves a pool registered on a server that is gone (readiness would say so).
    describe('a target server that is unreachable', () => {
      let extra: ExtraPostgres;
      beforeAll(async () => {
        extra = await startExtraPostgres();
        await t
          .http()
          .post('/admin/pools')
          .set(admin())
          .send({ id: 'gone-silo', kind: 'silo', host: '127.0.0.1', port: extra.port, database: 'postgres' })
          .expect(201);
      });
      afterAll(async () => {
        await extra?.stop();
      });

      async function expectFailedOnSource(tenant: OnboardedTenant, home: HomeRef, moveId: string, elapsedFrom: number, what: string): Promise<void> {
        const ended = await waitForMove(moveId, 15_000);
        const elapsed = Date.now() - elapsedFrom;
        expect({ phase: ended.phase, error: ended.error }).toEqual({ phase: 'failed', error: expect.stringMatching(/ECONNREFUSED|connect/) });
        expect(elapsed).toBeLessThan(12_000);
        expect(await tenantView(tenant.id)).toMatchObject({ tier: tenant.tier, poolId: `main-${tenant.tier}` });
        const read = await t.http().get('/projects?limit=5').set(as(tenant));
        const wrote = await s.http().post('/projects').set(as(tenant)).send({ name: `after ${what}` });
        expect({ read: read.status, write: wrote.status }).toEqual({ read: 200, write: 201 });
        expect(await captureLeftovers(home, moveId)).toEqual({ triggers: [], changes: 0 });
        observations.push({ case: `unreachable target: ${what}`, failedAfterMs: elapsed, error: ended.error });
      }

      it('a server that dies under a move (after provisioning, before the copy): the move fails naming the cause after 3 attempts, the tenant stays served from its source, no capture is left', async () => {
        const { tenant, home } = await seededTenant('dies', 'bridge');
        const paused = pauseAt('copying', tenant.id);
        try {
          const move = await requestMove(t.http, tenant.id, { toTier: 'silo', toPoolId: 'gone-silo' });
          await paused.reached;
          // The target exists on the extra server, capture runs on the source; then the server goes.
          expect((await captureLeftovers(home, move.id))!.triggers.length).toBeGreaterThan(0);
          await extra.stop();
          const started = Date.now();
          paused.release();
          await expectFailedOnSource(tenant, home, move.id, started, 'the target server died mid-move');
        } finally {
          paused.release();
        }
      });

      it('a server that is down when the move is requested: the move fails naming the cause within seconds, the tenant stays served from its source', async () => {
        const { tenant, home } = await seededTenant('down', 'bridge');
        await extra.stop();
        const started = Date.now();
        const move = await requestMove(t.http, tenant.id, { toTier: 'silo', toPoolId: 'gone-silo' });
        await expectFailedOnSource(tenant, home, move.id, started, 'the target server was down from the start');
      });
    });
  });

  // --- 4b. a long retention ------------------------------------------------------------------------

  describe('with a long source retention', () => {
    let l: Instance;
    beforeAll(async () => {
      l = await startInstance({ ...t.config, movesExecutor: true, moveSourceRetentionMs: 3_600_000 });
    });
    afterAll(async () => {
      await l?.close();
    });

    it.each<[Tier, Tier]>([
      ['bridge', 'silo'],
      ['pool', 'bridge'],
    ])('the old %s home is kept after a move to %s, listed as retired, and the app cannot use it', async (fromTier, toTier) => {
      const { tenant } = await seededTenant(`l${fromTier[0]}${toTier[0]}`, fromTier);
      const move = await requestMove(t.http, tenant.id, { toTier });
      const done = await waitForMove(move.id);
      expect({ phase: done.phase, error: done.error }).toEqual({ phase: 'done', error: null });
      expect(new Date(done.sourceDropAfter!).getTime() - Date.now()).toBeGreaterThan(3_500_000);
      // A sweep runs and leaves it.
      await l.executor.drain();
      expect((await getMove(move.id)).sourceDroppedAt).toBeNull();

      const { from, to } = await moveHomes(move.id);
      expect(await homeExists(from, tenant.id)).toBe(true);
      const kept = await tenantRows(from, tenant.id);
      expect(kept).toBe(SEED.projects * 2 + SEED.invoices);
      expect(await sql(homeUrl(from), `SELECT schema_name, move_id::text FROM strata_fence.retired_homes WHERE tenant_id = $1`, [tenant.id])).toEqual([
        { schema_name: from.schema, move_id: move.id },
      ]);
      expect(await captureLeftovers(from, move.id)).toEqual({ triggers: [], changes: 0 });

      // The app role, entering the old home as a unit of work does, is refused by the fence.
      const app = new Client({ connectionString: urlOn(from.host, from.port, from.database, t.config.appDbUser) });
      await app.connect();
      try {
        const refused = await app
          .query(tenantSetupSql({ id: tenant.id, schemaName: from.schema }))
          .then(() => app.query(FENCE_CHECK_SQL, [tenant.id, from.schema]))
          .then(
            () => null,
            (err: { code?: string }) => err.code,
          );
        expect(refused).toBe(RETIRED_HOME_SQLSTATE);
      } finally {
        await app.end();
      }

      // Through the API it reads and writes the new home; the old one does not change.
      const wrote = await s.http().post('/projects').set(as(tenant)).send({ name: 'after the move' });
      expect(wrote.status).toBe(201);
      expect((await t.http().get(`/projects/${wrote.body.id}`).set(as(tenant))).body.name).toBe('after the move');
      expect(await sql(homeUrl(to), `SELECT name FROM ${q(to, 'projects')} WHERE id = $1`, [wrote.body.id])).toEqual([{ name: 'after the move' }]);
      expect(await tenantRows(from, tenant.id)).toBe(kept);
    });
  });
});
