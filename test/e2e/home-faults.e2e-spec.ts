import { Client, escapeIdentifier } from 'pg';
import type { Tier } from '#strata/control-plane';
import { bootstrapDatabase } from '#strata/migrator';
import { startExtraPostgres, withExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import { startTestApp, startTestAppOn, type OnboardedTenant, type TestApp } from '../support/test-app';
import { runInfo } from '../support/test-env';
import { callApi, onboardOn, tenantHeaders, type ApiAnswer } from '../support/move-harness';
import { sleep, waitFor } from '../support/tenancy-fixture';

jest.setTimeout(180_000);

/** One request's answer, with when it was sent (ms since the load started). */
interface Sample extends ApiAnswer {
  at: number;
  what: string;
}

/**
 * A tenant working in a loop, as a web app's users would: creates projects, lists them, reads one.
 * Every answer is kept; the ids of acknowledged creates are the writes that must survive.
 */
class TenantLoad {
  readonly samples: Sample[] = [];
  readonly acked: Array<{ id: string; name: string }> = [];
  private running = false;
  private loop?: Promise<void>;
  private started = 0;
  private seq = 0;

  constructor(private readonly t: TestApp, readonly tenant: OnboardedTenant, private readonly pauseMs = 5) {}

  start(): this {
    this.running = true;
    this.started = Date.now();
    this.loop = this.run();
    return this;
  }

  async stop(): Promise<this> {
    this.running = false;
    await this.loop;
    return this;
  }

  private async run(): Promise<void> {
    const headers = tenantHeaders(this.tenant);
    for (let i = 0; this.running; i++) {
      const at = Date.now() - this.started;
      if (i % 3 === 0) {
        const name = `${this.tenant.slug} load-${++this.seq}`;
        const a = await callApi(this.t, 'POST', '/projects', { headers, body: { name }, timeoutMs: 10_000 });
        this.samples.push({ ...a, at, what: 'POST /projects' });
        if (a.status === 201) this.acked.push({ id: a.body.id, name });
      } else if (i % 3 === 1 || this.acked.length === 0) {
        this.samples.push({ ...(await callApi(this.t, 'GET', '/projects?limit=5', { headers, timeoutMs: 10_000 })), at, what: 'GET /projects' });
      } else {
        const { id } = this.acked[this.acked.length - 1];
        this.samples.push({ ...(await callApi(this.t, 'GET', `/projects/${id}`, { headers, timeoutMs: 10_000 })), at, what: 'GET /projects/:id' });
      }
      await sleep(this.pauseMs);
    }
  }

  failures(): Sample[] {
    return this.samples.filter((s) => s.status < 200 || s.status >= 300);
  }

  /** Answers sent at or after `fromMs` (since start): 2xx. */
  firstSuccessAfter(fromMs: number): Sample | undefined {
    return this.samples.find((s) => s.at >= fromMs && s.status >= 200 && s.status < 300);
  }

  sinceStart(): number {
    return Date.now() - this.started;
  }
}

const describeSample = (s: Sample) => `${s.what} at +${s.at} ms → ${s.status} ${JSON.stringify(s.body)?.slice(0, 200) ?? s.error} (${Math.round(s.ms)} ms)`;

/**
 * Every failed answer is a fast, retryable 503 of the given codes, with Retry-After: never a 500, never
 * a hang. Fast counts from when the request was sent or, for one already in flight when the fault
 * began (`faultAtMs`, on the load's clock), from the fault: a request slowed by a loaded machine
 * before the server went down is not the outage's answer time.
 */
function expectFastRetryable(failures: Sample[], codes: string[], fastMs: number, faultAtMs = -Infinity): void {
  const wrong = failures.filter((s) => s.status !== 503 || !codes.includes(s.body?.error) || !s.retryAfter || Number(s.retryAfter) < 1);
  expect(wrong.map(describeSample)).toEqual([]);
  expect(failures.filter((s) => s.at + s.ms - Math.max(s.at, faultAtMs) > fastMs).map(describeSample)).toEqual([]);
}

describe('faults stay with their tenant (on a PostgreSQL server this test starts)', () => {
  let t: TestApp;
  let extra: ExtraPostgres;
  const victims = {} as Record<Tier, OnboardedTenant>;
  const bystanders = {} as Record<Tier, OnboardedTenant>;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  /** Figures for the issue note, printed once at the end. */
  const figures: string[] = [];

  beforeAll(async () => {
    ({ started: t, extra } = await withExtraPostgres(() => startTestApp()));
    for (const [id, kind, database] of [
      ['faulty-pool', 'pool', 'strata_faults'],
      ['faulty-bridge', 'bridge', 'strata_faults'],
      ['faulty-silo', 'silo', 'postgres'],
    ] as const) {
      await t.http().post('/admin/pools').set(admin()).send({ id, kind, host: '127.0.0.1', port: extra.port, database }).expect(201);
    }
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      victims[tier] = await onboardOn(t, `victim-${tier}`, tier, `faulty-${tier}`);
      bystanders[tier] = await t.onboard(`bystander-${tier}`, tier);
    }
  });

  afterAll(async () => {
    // eslint-disable-next-line no-console
    if (figures.length) console.log(`fault figures (home-faults.e2e-spec.ts):\n${figures.join('\n')}`);
    await t?.close();
    await extra?.stop();
  });

  const loadsOn = (tenants: Record<Tier, OnboardedTenant>) => (['pool', 'bridge', 'silo'] as const).map((tier) => new TenantLoad(t, tenants[tier]).start());

  /** Reads every acknowledged create back through the API once the fault is over. */
  async function expectAckedWritesStored(loads: TenantLoad[]): Promise<number> {
    let checked = 0;
    for (const load of loads) {
      const headers = tenantHeaders(load.tenant);
      for (const { id, name } of load.acked) {
        const a = await callApi(t, 'GET', `/projects/${id}`, { headers });
        expect([a.status, a.body?.name]).toEqual([200, name]);
        checked++;
      }
    }
    return checked;
  }

  function report(what: string, victimLoads: TenantLoad[], bystanderLoads: TenantLoad[], recoveryMs: number[]): void {
    const v = victimLoads.flatMap((l) => l.samples);
    const b = bystanderLoads.flatMap((l) => l.samples);
    const slowest = (s: Sample[]) => Math.round(Math.max(0, ...s.map((x) => x.ms)));
    figures.push(
      `- ${what}: faulty tenants ${v.filter((s) => s.status >= 300 || s.status < 200).length} errors of ${v.length} requests (slowest ${slowest(v)} ms); ` +
        `other tenants ${b.filter((s) => s.status >= 300 || s.status < 200).length} errors of ${b.length} (slowest ${slowest(b)} ms); ` +
        `recovery after the server was back: ${recoveryMs.map((ms) => `${ms} ms`).join(', ')}`,
    );
  }

  it("answers fast 503 tenant_unavailable for the tenants of a server that is down, keeps every other tenant and readiness up, dials the dead server a bounded number of times, and recovers without a restart", async () => {
    const victimLoads = loadsOn(victims);
    const bystanderLoads = loadsOn(bystanders);
    await sleep(500);
    await extra.halt();
    const downAt = victimLoads.map((l) => l.sinceStart());
    await sleep(4000);

    const ready = await t.http().get('/health/ready');
    expect(ready.status).toBe(200);
    const degraded = ready.body.details.homes.degraded as Array<{ home: string; attempts: number; reason: string }>;
    const dead = degraded.filter((d) => d.home.startsWith(`127.0.0.1:${extra.port}/`));
    // The pool and bridge tenants' shared database, and the silo tenant's own database.
    expect(dead.map((d) => d.home).sort()).toEqual([`127.0.0.1:${extra.port}/strata_faults`, `127.0.0.1:${extra.port}/strata_t_${victims.silo.slug.replace(/-/g, '_')}`].sort());
    expect(ready.body.details['pool:faulty-silo']).toMatchObject({ degraded: true });
    // One attempt to open the circuit, then one trial per backoff (250 ms doubling to 2 s): a handful in 4 s, not one per request.
    const requestsWhileDown = victimLoads.reduce((n, l, i) => n + l.samples.filter((s) => s.at >= downAt[i]).length, 0);
    for (const d of dead) expect(d.attempts).toBeLessThanOrEqual(8);
    expect(requestsWhileDown).toBeGreaterThan(40);

    await extra.resume();
    const backAt = victimLoads.map((l) => l.sinceStart());
    await waitFor(() => victimLoads.every((l, i) => l.firstSuccessAfter(backAt[i])), Boolean, 15_000, 50);
    await sleep(300);
    await Promise.all([...victimLoads, ...bystanderLoads].map((l) => l.stop()));

    expect(bystanderLoads.flatMap((l) => l.failures()).map(describeSample)).toEqual([]);
    const victimFailures = victimLoads.flatMap((l) => l.failures());
    expect(victimFailures.length).toBeGreaterThan(0);
    expectFastRetryable(victimFailures, ['tenant_unavailable'], 1000);
    const recovery = victimLoads.map((l, i) => l.firstSuccessAfter(backAt[i])!.at - backAt[i]);
    // The longest backoff (2 s) bounds how long a recovered server waits for its first trial.
    for (const ms of recovery) expect(ms).toBeLessThan(3000);
    expect(await expectAckedWritesStored(victimLoads)).toBeGreaterThan(0);
    report(`server down 4 s (${requestsWhileDown} requests to its tenants meanwhile; ${dead.map((d) => d.attempts).join('+')} connection attempts)`, victimLoads, bystanderLoads, recovery);
    expect((await t.http().get('/health/ready').expect(200)).body.details.homes.degraded).toEqual([]);
  });

  it('loses no acknowledged write across a server restart under load, answers 503 with Retry-After meanwhile, and recovers by itself', async () => {
    const victimLoads = loadsOn(victims);
    const bystanderLoads = loadsOn(bystanders);
    await sleep(500);
    await extra.restart();
    const backAt = victimLoads.map((l) => l.sinceStart());
    await waitFor(() => victimLoads.every((l, i) => l.firstSuccessAfter(backAt[i])), Boolean, 15_000, 50);
    await sleep(500);
    await Promise.all([...victimLoads, ...bystanderLoads].map((l) => l.stop()));

    expect(bystanderLoads.flatMap((l) => l.failures()).map(describeSample)).toEqual([]);
    expectFastRetryable(victimLoads.flatMap((l) => l.failures()), ['tenant_unavailable'], 1000);
    const recovery = victimLoads.map((l, i) => l.firstSuccessAfter(backAt[i])!.at - backAt[i]);
    expect(await expectAckedWritesStored(victimLoads)).toBeGreaterThan(0);
    report('server restart', victimLoads, bystanderLoads, recovery);
  });

  describe('a lock held on one tenant\'s table', () => {
    let owner: Client;
    beforeAll(async () => {
      owner = new Client({ connectionString: extra.url('strata_faults') });
      await owner.connect();
    });
    afterAll(() => owner?.end());

    const bridgeProjects = () => `${escapeIdentifier(`t_${victims.bridge.slug.replace(/-/g, '_')}`)}.projects`;
    async function lockFor(ms: number): Promise<void> {
      await owner.query('BEGIN');
      await owner.query(`LOCK TABLE ${bridgeProjects()} IN ACCESS EXCLUSIVE MODE`);
      setTimeout(() => void owner.query('COMMIT'), ms);
    }
    const waitingBackends = async () =>
      Number(
        (
          await owner.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'`, [t.db.appRole])
        ).rows[0].n,
      );

    it("answers 503 tenant_busy once DATA_LOCK_TIMEOUT_MS has passed, while the other tenants of the same connection pool carry on", async () => {
      const neighbour = new TenantLoad(t, victims.pool).start();
      await lockFor(t.config.dataLockTimeoutMs + 1500);
      const headers = tenantHeaders(victims.bridge);
      const [read, write] = await Promise.all([
        callApi(t, 'GET', '/projects', { headers }),
        callApi(t, 'POST', '/projects', { headers, body: { name: 'behind the lock' } }),
      ]);
      await neighbour.stop();
      for (const a of [read, write]) {
        expect([a.status, a.body?.error, a.retryAfter]).toEqual([503, 'lock_timeout', '1']);
        expect(a.ms).toBeGreaterThanOrEqual(t.config.dataLockTimeoutMs - 50);
        expect(a.ms).toBeLessThan(t.config.dataLockTimeoutMs + 1000);
      }
      expect(neighbour.failures().map(describeSample)).toEqual([]);
      figures.push(
        `- lock held ${t.config.dataLockTimeoutMs + 1500} ms: locked tenant answered 503 tenant_busy after ${Math.round(read.ms)}/${Math.round(write.ms)} ms; ` +
          `a tenant sharing its connection pool: 0 errors of ${neighbour.samples.length} (slowest ${Math.round(Math.max(...neighbour.samples.map((s) => s.ms)))} ms)`,
      );
      await waitFor(waitingBackends, (n) => n === 0, 5000);
    });

    it('cancels the requests of clients that gave up, so they neither hold the pool nor commit after the lock is gone', async () => {
      const poolMax = t.config.dataPoolMax;
      // Held for less than the lock budget: without cancellation every abandoned create would commit when it ends.
      await lockFor(t.config.dataLockTimeoutMs - 1000);
      const headers = tenantHeaders(victims.bridge);
      const abandoned = Array.from({ length: poolMax + 2 }, (_, i) => `abandoned-${i}`);
      const answers = await Promise.all(abandoned.map((name) => callApi(t, 'POST', '/projects', { headers, body: { name }, timeoutMs: 300 })));
      expect(answers.map((a) => a.status)).toEqual(abandoned.map(() => 0));
      // Cancelled on the server at once, long before their lock budget would have ended them.
      const cancelledWithin = Date.now();
      expect(await waitFor(waitingBackends, (n) => n === 0, 1500)).toBe(0);
      const cancelMs = Date.now() - cancelledWithin;
      // The tenants sharing the pool are served while the lock is still held.
      const neighbour = await callApi(t, 'GET', '/projects', { headers: tenantHeaders(victims.pool) });
      expect(neighbour.status).toBe(200);
      await sleep(t.config.dataLockTimeoutMs);
      const stored = await owner.query(`SELECT name FROM ${bridgeProjects()} WHERE name LIKE 'abandoned-%'`);
      expect(stored.rows).toEqual([]);
      figures.push(`- ${abandoned.length} clients gave up after 300 ms behind a lock: their statements were cancelled within ${cancelMs} ms; 0 of them committed; a pool neighbour answered in ${Math.round(neighbour.ms)} ms`);
    });
  });
});

describe('the whole database server restarting: control plane and every tenant on it', () => {
  let extra: ExtraPostgres;
  let t: TestApp;
  const tenants = {} as Record<Tier, OnboardedTenant>;

  beforeAll(async () => {
    extra = await startExtraPostgres();
    const info = runInfo();
    const owner = new Client({ connectionString: extra.url() });
    await owner.connect();
    await owner.query('CREATE DATABASE strata_all');
    await owner.end();
    await bootstrapDatabase({ ownerUrl: extra.url('strata_all'), appRole: info.appRole });
    // The server goes with the test: nothing on it needs dropping.
    t = await startTestAppOn({ name: 'strata_all', ownerUrl: extra.url('strata_all'), appRole: info.appRole, runId: info.runId, drop: async () => undefined });
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants[tier] = await t.onboard(`whole-${tier}`, tier);
  });

  afterAll(async () => {
    await t?.close();
    await extra?.stop();
  });

  it('answers only fast 503s with Retry-After while the server is down (tenant data and control-plane lookups alike), loses no acknowledged write, and recovers by itself', async () => {
    const loads = (['pool', 'bridge', 'silo'] as const).map((tier) => new TenantLoad(t, tenants[tier]).start());
    await sleep(500);
    // The loads start within a millisecond of each other: one clock serves them all.
    const haltAt = loads[0].sinceStart();
    await extra.halt();
    // Longer than the registry cache (REGISTRY_CACHE_TTL_MS): the guard's lookups fail too.
    await sleep(2000);
    await extra.resume();
    const backAt = loads.map((l) => l.sinceStart());
    await waitFor(() => loads.every((l, i) => l.firstSuccessAfter(backAt[i])), Boolean, 15_000, 50);
    await sleep(300);
    await Promise.all(loads.map((l) => l.stop()));

    const failures = loads.flatMap((l) => l.failures());
    expect(failures.length).toBeGreaterThan(0);
    expectFastRetryable(failures, ['tenant_unavailable', 'unavailable'], 1000, haltAt);
    for (const load of loads) {
      const headers = tenantHeaders(load.tenant);
      for (const { id, name } of load.acked) {
        const a = await callApi(t, 'GET', `/projects/${id}`, { headers });
        expect([a.status, a.body?.name]).toEqual([200, name]);
      }
    }
    const recovery = loads.map((l, i) => l.firstSuccessAfter(backAt[i])!.at - backAt[i]);
    for (const ms of recovery) expect(ms).toBeLessThan(3000);
    const all = loads.flatMap((l) => l.samples);
    // eslint-disable-next-line no-console
    console.log(
      `fault figures: whole server down 2 s: ${failures.length} errors of ${all.length} requests (all 503; slowest ${Math.round(Math.max(...all.map((s) => s.ms)))} ms), ` +
        `${loads.reduce((n, l) => n + l.acked.length, 0)} acknowledged creates all stored, recovery ${recovery.join(', ')} ms`,
    );
  });
});
