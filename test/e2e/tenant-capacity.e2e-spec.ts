import { Controller, Get } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { RequireRole } from '#strata/auth';
import { PlanCapacityPolicy, TenantConcurrencyBudget } from '#strata/capacity';
import { PlanCatalog } from '#strata/plans';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { BackgroundTraffic, tenantHome } from '../support/move-harness';
import { sleep, waitFor } from '../support/tenancy-fixture';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(90_000);

/** How long the probe's request holds its slot: long enough for a burst to pile up behind it. */
const SLOW_MS = 250;
/** The seeded `free` plan's max_concurrent_requests (control 0015). */
const FREE_PLAN_LIMIT = 4;
const QUEUE_MAX = 8;
const QUEUE_WAIT_MS = 400;
const BURST = 50;

/** A tenant route that holds its request for SLOW_MS and records how many of its tenant's requests it held at once. */
@Controller('capacity-probe')
@RequireRole('member')
class SlowProbeController {
  static inFlight = new Map<string, number>();
  static maxInFlight = new Map<string, number>();

  constructor(private readonly context: TenantContext) {}

  @Get('slow')
  async slow(): Promise<{ ok: true }> {
    const id = this.context.tenant.id;
    const now = (SlowProbeController.inFlight.get(id) ?? 0) + 1;
    SlowProbeController.inFlight.set(id, now);
    SlowProbeController.maxInFlight.set(id, Math.max(now, SlowProbeController.maxInFlight.get(id) ?? 0));
    try {
      await sleep(SLOW_MS);
      return { ok: true };
    } finally {
      SlowProbeController.inFlight.set(id, (SlowProbeController.inFlight.get(id) ?? 1) - 1);
    }
  }
}

/** What a read unit and a write unit of the caller's tenant run under. */
@Controller('capacity-probe')
@RequireRole('member')
class BudgetProbeController {
  constructor(private readonly connections: TenantConnectionManager) {}

  @Get('budgets')
  async budgets(): Promise<{ read: unknown; write: unknown }> {
    const show = `SELECT current_setting('statement_timeout') AS statement, current_setting('lock_timeout') AS lock,
                         current_setting('idle_in_transaction_session_timeout') AS idle`;
    const [read] = await this.connections.read((em) => em.query(show));
    const [write] = await this.connections.transaction((em) => em.query(show));
    return { read, write };
  }
}

const admin = (t: TestApp) => ({ authorization: `Bearer ${t.adminToken}` });

async function setPlan(t: TestApp, tenant: OnboardedTenant, plan: string): Promise<void> {
  await t.http().patch(`/admin/tenants/${tenant.id}/plan`).set(admin(t)).send({ plan }).expect(200);
  // The guard reads the tenant record from the registry; the change reaches it by pub/sub (or its short TTL).
  await waitFor(
    async () => (await t.http().get('/settings').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`)).body?.plan,
    (p) => p === plan,
    5000,
  );
}

describe("a tenant's concurrency budget on one instance", () => {
  let t: TestApp;
  let busy: OnboardedTenant;
  let quiet: OnboardedTenant;

  beforeAll(async () => {
    // The instance default (8) for standard tenants; `free` is 4 by plan.
    t = await startTestApp(
      { tenantMaxConcurrentRequests: 8, tenantQueueMax: QUEUE_MAX, tenantQueueWaitMs: QUEUE_WAIT_MS },
      { extra: { controllers: [SlowProbeController] } },
    );
    busy = await t.onboard('cap-busy', 'pool');
    quiet = await t.onboard('cap-quiet', 'pool');
    await setPlan(t, busy, 'free');
  });
  afterAll(() => t?.close());

  const probe = (who: OnboardedTenant) => {
    const started = performance.now();
    return t
      .http()
      .get('/capacity-probe/slow')
      .set('X-Tenant', who.slug)
      .set('authorization', `Bearer ${who.token}`)
      .then((res) => ({ status: res.status, body: res.body, retryAfter: res.headers['retry-after'], ms: performance.now() - started }));
  };

  it(`holds a burst of ${BURST} requests of a free tenant to ${FREE_PLAN_LIMIT} in flight, answers the excess 429 concurrency_limited after a bounded wait, and leaves another tenant unaffected`, async () => {
    const budget = t.app.get(TenantConcurrencyBudget);
    const sampled: number[] = [];
    const sampler = setInterval(() => sampled.push(budget.inFlight(busy.id)), 2);

    const burst = Array.from({ length: BURST }, () => probe(busy));
    // Meanwhile the quiet tenant (standard plan) runs as many slow requests as the busy one may.
    await sleep(20);
    const neighbour = await Promise.all(Array.from({ length: FREE_PLAN_LIMIT }, () => probe(quiet)));
    const answers = await Promise.all(burst);
    clearInterval(sampler);

    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    expect(ok.length + refused.length).toBe(BURST);
    // The 4 in flight at first, then at most the queue's 8 handed a slot as those finished.
    expect(ok.length).toBeGreaterThanOrEqual(FREE_PLAN_LIMIT);
    expect(ok.length).toBeLessThanOrEqual(FREE_PLAN_LIMIT + QUEUE_MAX);
    for (const r of refused) {
      expect(r.body).toEqual({ statusCode: 429, error: 'concurrency_limited', message: expect.stringContaining(`${FREE_PLAN_LIMIT} requests in flight`) });
      expect(r.retryAfter).toBe('1');
    }
    // Refused at once when the queue was full; the queued ones that got no slot only after the wait.
    expect(refused.some((r) => r.ms < QUEUE_WAIT_MS / 2)).toBe(true);
    expect(refused.some((r) => r.ms >= QUEUE_WAIT_MS - 20)).toBe(true);
    expect(Math.max(...refused.map((r) => r.ms))).toBeLessThan(QUEUE_WAIT_MS + 1500);

    // Never more than the plan's limit in flight: as the handler counted, and as the budget was sampled.
    expect(SlowProbeController.maxInFlight.get(busy.id)).toBe(FREE_PLAN_LIMIT);
    expect(sampled.length).toBeGreaterThan(50);
    expect(Math.max(...sampled)).toBe(FREE_PLAN_LIMIT);

    expect(neighbour.map((a) => a.status)).toEqual(neighbour.map(() => 200));
    expect(Math.max(...neighbour.map((a) => a.ms))).toBeLessThan(SLOW_MS + 1000);

    // Nothing is kept for a tenant with nothing in flight: memory follows busy tenants, not tenants seen.
    await waitFor(() => budget.tenantsTracked, (n) => n === 0, 2000, 10);
    // The refusals and waits are on /metrics, without a tenant label.
    const metrics = (await t.http().get('/metrics').expect(200)).text;
    const refusedSeries = (reason: string) => Number(new RegExp(`^strata_tenant_concurrency_refused_total\\{reason="${reason}"\\} (\\d+)`, 'm').exec(metrics)?.[1] ?? 0);
    expect(refusedSeries('queue_full') + refusedSeries('timed_out')).toBe(refused.length);
    expect(refusedSeries('timed_out')).toBeGreaterThan(0);
    expect(metrics).toMatch(/^strata_tenant_concurrency_waits_seconds_count \d+/m);
    expect(metrics).toMatch(/^strata_tenant_concurrency_tenants 0$/m);
    console.log(
      `concurrency budget: burst of ${BURST} at limit ${FREE_PLAN_LIMIT}: ${ok.length} served, ${refused.length} × 429 ` +
        `(${refused.filter((r) => r.ms >= QUEUE_WAIT_MS - 20).length} after waiting ${QUEUE_WAIT_MS} ms); sampled in-flight max ${Math.max(...sampled)} over ${sampled.length} samples; ` +
        `neighbour's ${neighbour.length} requests all 200, slowest ${Math.round(Math.max(...neighbour.map((a) => a.ms)))} ms`,
    );
  });

  it('gives a standard tenant the instance default, and the next request a slot again once the burst is over', async () => {
    const answers = await Promise.all(Array.from({ length: 8 }, () => probe(quiet)));
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 200));
    expect(SlowProbeController.maxInFlight.get(quiet.id)).toBeLessThanOrEqual(8);
    expect((await probe(busy)).status).toBe(200);
  });

  it('does not count anonymous requests of a tenant (a stranger cannot fill its budget)', async () => {
    const budget = t.app.get(TenantConcurrencyBudget);
    const sampled: number[] = [];
    const sampler = setInterval(() => sampled.push(budget.inFlight(busy.id)), 1);
    const logins = await Promise.all(
      Array.from({ length: 2 * FREE_PLAN_LIMIT }, () => t.http().post('/auth/login').set('X-Tenant', busy.slug).send({ email: busy.email, password: 'wrong-password' })),
    );
    clearInterval(sampler);
    expect(logins.map((r) => r.status)).toEqual(logins.map(() => 401));
    // Sampled while the logins ran (each hashes a password): none of them took one of the tenant's slots.
    expect(sampled.length).toBeGreaterThan(5);
    expect(Math.max(...sampled)).toBe(0);
    expect((await probe(busy)).status).toBe(200);
  });
});

describe('a lock held in one tenant, with timeouts by plan', () => {
  let t: TestApp;
  let locked: OnboardedTenant;
  let neighbour: OnboardedTenant;
  const PLAN_LOCK_TIMEOUT_MS = 500;

  beforeAll(async () => {
    // The instance's lock budget stays the default 3 s; the `free` plan gets its own, shorter one.
    t = await startTestApp({ dataLockTimeoutMs: 3000 }, { extra: { controllers: [BudgetProbeController] } });
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`UPDATE control.plans SET lock_timeout_ms = $1 WHERE id = 'free'`, [PLAN_LOCK_TIMEOUT_MS]);
    } finally {
      await owner.end();
    }
    t.app.get(PlanCatalog).refresh();
    await t.app.get(PlanCapacityPolicy).refresh();
    locked = await t.onboard('lock-held', 'pool');
    neighbour = await t.onboard('lock-free', 'pool');
    await setPlan(t, locked, 'free');
  });
  afterAll(() => t?.close());

  it("runs each tenant's read and write units under its plan's budgets, and the instance's where the plan sets none", async () => {
    const budgetsOf = async (who: OnboardedTenant) =>
      (await t.http().get('/capacity-probe/budgets').set('X-Tenant', who.slug).set('authorization', `Bearer ${who.token}`).expect(200)).body;
    // free: 5 s statements (seeded), 500 ms locks (set above); the idle budget is the instance's. Reads
    // carry no idle budget of their own: each statement is its own implicit transaction.
    const free = await budgetsOf(locked);
    expect(free.write).toEqual({ statement: '5s', lock: '500ms', idle: '10s' });
    expect(free.read).toMatchObject({ statement: '5s', lock: '500ms' });
    // standard sets nothing: the instance's 15 s and 3 s.
    const standard = await budgetsOf(neighbour);
    expect(standard.write).toEqual({ statement: '15s', lock: '3s', idle: '10s' });
    expect(standard.read).toMatchObject({ statement: '15s', lock: '3s' });
    // Alternating tenants on the same pooled connections: each read still carries its own plan's budgets.
    for (let i = 0; i < 5; i++) {
      expect((await budgetsOf(i % 2 ? locked : neighbour)).read.statement).toBe(i % 2 ? '5s' : '15s');
    }
  });

  it("times out the locked tenant's write after its plan's lock_timeout with 503 and its request id, while a tenant on the same pool answers every request", async () => {
    const headers = { 'X-Tenant': locked.slug, authorization: `Bearer ${locked.token}` };
    const { body: project } = await t.http().post('/projects').set(headers).send({ name: 'contended' }).expect(201);
    const home = await tenantHome(t, locked.id);
    const owner = new URL(t.db.ownerUrl);
    const holder = new Client({ host: home.host, port: home.port, database: home.database, user: decodeURIComponent(owner.username), password: owner.password || undefined });
    await holder.connect();
    const traffic = new BackgroundTraffic(t, [neighbour], 5).start();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT 1 FROM "${home.schema}".projects WHERE tenant_id = $1 AND id = $2 FOR UPDATE`, [locked.id, project.id]);
      await sleep(100);

      const requestId = `held-lock-${randomUUID()}`;
      const started = performance.now();
      const res = await t.http().patch(`/projects/${project.id}`).set(headers).set('X-Request-Id', requestId).send({ name: 'waits' });
      const ms = performance.now() - started;
      expect([res.status, res.body.error, res.headers['retry-after']]).toEqual([503, 'lock_timeout', '1']);
      expect(res.headers['x-request-id']).toBe(requestId);
      expect(res.body.message).toContain('lock_timeout');
      expect(res.body.message).toContain(requestId);
      // The plan's 500 ms, not the instance's 3 s.
      expect(ms).toBeGreaterThanOrEqual(PLAN_LOCK_TIMEOUT_MS - 50);
      expect(ms).toBeLessThan(2000);
      // Reads of the locked tenant do not wait on a row lock.
      await t.http().get(`/projects/${project.id}`).set(headers).expect(200);
      await sleep(300);
    } finally {
      await holder.query('ROLLBACK').catch(() => undefined);
      await holder.end();
    }
    const report = await traffic.stop();
    expect(report.errors).toEqual([]);
    expect(report.requests).toBeGreaterThan(5);
    // The lock is gone: the same write goes through.
    await t.http().patch(`/projects/${project.id}`).set(headers).send({ name: 'went through' }).expect(200);
    console.log(`held lock: the locked tenant's write answered 503 tenant_busy after its plan's lock budget; its pool neighbour made ${report.requests} requests meanwhile, 0 errors`);
  });
});
