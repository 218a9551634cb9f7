import { ServerCapacityError, ServerConnectionBudget, SiloDataSourceCache } from '#strata/tenancy/platform';
import { createTenancyFixture, deferred, rejectionOf, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(180_000);

/** Backends the fixture's app role holds on the given databases right now (what the server sees). */
async function appBackends(fx: TenancyFixture, databases: string[]): Promise<number> {
  const [{ n }] = await fx.ownerQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND datname = ANY($2)`,
    [fx.db.appRole, databases],
  );
  return n;
}

/** Samples appBackends() every few ms until stopped. */
function sampleBackends(fx: TenancyFixture, databases: string[]) {
  const samples: number[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      samples.push(await appBackends(fx, databases));
      await sleep(5);
    }
  })();
  return {
    async stop() {
      running = false;
      await done;
      return samples;
    },
  };
}

/** A small deterministic generator (mulberry32): the same "random" traffic on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `requests` read units from `workers` concurrent loops, each unit on pick()'s tenant; counts outcomes by error name. */
async function drive(fx: TenancyFixture, requests: number, workers: number, pick: (i: number) => TestTenant) {
  const outcomes = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < requests) {
        const t = pick(next++);
        const outcome = await fx.readInTenant(t, (em) => em.query('SELECT 1')).then(
          () => 'ok',
          (err: Error) => err.name,
        );
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
      }
    }),
  );
  return Object.fromEntries(outcomes);
}

describe('silo residency over a connection budget', () => {
  // 24 silo connections, two per tenant at most. DataSources are kept (SILO_DATASOURCES_MAX well
  // above 36): over the budget, idle connections of the least recently used tenants close instead.
  const SILO = { siloPoolMax: 2, siloMaxConnections: 24, siloConnectionHoldMs: 5, siloResidencyMs: 600_000, siloAcquireTimeoutMs: 5000, dataPoolMax: 4, dbServerMaxConnections: 28 };
  const IN_FLIGHT = 8;
  // Tenants that fit: everyone's first connection plus the most spare connections IN_FLIGHT units
  // can hold busy at once (IN_FLIGHT / 2, two units on one tenant each). With as many tenants as
  // slots they would not: when every spare is busy, a newcomer closes someone's only connection.
  const FITTING = SILO.siloMaxConnections - IN_FLIGHT / 2;
  const TENANTS = 36;
  let fx: TenancyFixture;
  let cache: SiloDataSourceCache;
  let budget: ServerConnectionBudget;
  const silos: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture(SILO);
    cache = fx.module.get(SiloDataSourceCache);
    budget = fx.module.get(ServerConnectionBudget);
    // Onboarded a few at a time (each is a CREATE DATABASE from the prepared template).
    for (let i = 0; i < TENANTS; i += 6) silos.push(...(await Promise.all([0, 1, 2, 3, 4, 5].map((j) => fx.onboard('silo', `res${i + j}`)))));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('creates each DataSource once for the silo tenants that fit, then once for half as many again over the same budget by closing idle connections instead, never above the cap and with no failed unit', async () => {
    const databases = [fx.db.name, ...silos.map((t) => t.database)];
    const sampler = sampleBackends(fx, databases);
    const budgetSamples: number[] = [];
    const server = `${fx.config.databaseUrl.match(/@([^/]+)\//)?.[1]}`;
    const watch = setInterval(() => budgetSamples.push(budget.openOnServer(server)), 2);
    let samples: number[] = [];
    try {
      const fits = silos.slice(0, FITTING);
      const random = seeded(15);
      // Units in flight over the fitting tenants, chosen at random: tenants overlap, pools grow and shrink.
      const steady = await drive(fx, 1200, IN_FLIGHT, () => fits[Math.floor(random() * fits.length)]);
      expect(steady).toEqual({ ok: 1200 });
      expect(cache.counters.creations).toBe(FITTING);
      expect(cache.counters.evictions).toEqual({ lru: 0, explicit: 0 });
      expect(cache.counters.reconnects).toBe(0);

      // Random over all of them: a tenant without a connection takes the idle one of the least
      // recently used tenant; every DataSource is created once and none is closed.
      const over = await drive(fx, 2000, IN_FLIGHT, () => silos[Math.floor(random() * silos.length)]);
      expect(over).toEqual({ ok: 2000 });
      expect(cache.counters.creations).toBe(TENANTS);
      expect(cache.counters.evictions).toEqual({ lru: 0, explicit: 0 });
      expect(cache.counters.connectionCloses.room).toBeGreaterThan(0);
      expect(cache.counters.reconnects).toBeGreaterThan(0);
      expect(cache.counters.waitTimeouts).toBe(0);
      expect(cache.stats()).toMatchObject({ size: TENANTS });
    } finally {
      clearInterval(watch);
      samples = await sampler.stop();
    }
    expect(samples.length).toBeGreaterThan(20);
    expect(Math.max(...samples)).toBeGreaterThanOrEqual(FITTING); // the sampler saw the load
    expect(Math.max(...samples)).toBeLessThanOrEqual(SILO.dbServerMaxConnections);
    expect(Math.max(...budgetSamples)).toBeLessThanOrEqual(SILO.dbServerMaxConnections);
    expect(cache.stats().reservedConnections).toBeLessThanOrEqual(SILO.siloMaxConnections);
  });
});

describe('connection budget per database server', () => {
  // 6 connections to the one server, whichever tier: 4 may be the shared pool's, 4 silo ones.
  // Silo connections are held longer than the tests: a slot for a newcomer can only come from the shared pool.
  const CAP = { dbServerMaxConnections: 6, dbServerAcquireTimeoutMs: 300, dataPoolMax: 4, siloPoolMax: 2, siloMaxConnections: 4, siloAcquireTimeoutMs: 2000, siloConnectionHoldMs: 600_000 };
  let fx: TenancyFixture;
  let budget: ServerConnectionBudget;
  let pool: TestTenant;
  let bridge: TestTenant;
  const silos: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture(CAP);
    budget = fx.module.get(ServerConnectionBudget);
    pool = await fx.onboard('pool', 'cap-pool');
    bridge = await fx.onboard('bridge', 'cap-bridge');
    for (let i = 0; i < 3; i++) silos.push(await fx.onboard('silo', `cap${i}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('counts pool, bridge and silo connections against one cap, and answers 503 tenant_capacity past it instead of "too many clients"', async () => {
    const databases = [fx.db.name, ...silos.map((t) => t.database)];
    const sampler = sampleBackends(fx, databases);
    const hold = deferred();
    const held: Array<Promise<unknown>> = [];
    const entered: Array<Promise<void>> = [];
    const holdIn = (t: TestTenant) => {
      const inside = deferred();
      entered.push(inside.promise);
      held.push(
        fx.inTenant(t, async (em) => {
          await em.query('SELECT 1');
          inside.resolve();
          await hold.promise;
        }),
      );
    };
    // 2 pool + 2 bridge units on the shared DataSource, then 2 silo tenants: 6 connections, the cap.
    [pool, pool, bridge, bridge, silos[0], silos[1]].forEach(holdIn);
    await Promise.all(entered);
    expect(await appBackends(fx, databases)).toBe(6);

    const started = Date.now();
    const refused = await rejectionOf(fx.inTenant(silos[2], (em) => em.query('SELECT 1')));
    expect(refused).toBeInstanceOf(ServerCapacityError);
    expect(refused).toMatchObject({ code: 'tenant_capacity' });
    expect((refused as unknown as ServerCapacityError).getStatus()).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(CAP.dbServerAcquireTimeoutMs - 20);
    // A shared unit beyond the pool's connections queues in its pool, within the same cap.
    const queued = fx.inTenant(pool, (em) => em.query('SELECT 1'));
    await sleep(50);
    expect(await appBackends(fx, databases)).toBe(6);

    hold.resolve();
    await Promise.all(held);
    await queued;
    const samples = await sampler.stop();
    expect(Math.max(...samples)).toBe(6);
    const open = budget.stats().reduce((n, s) => n + s.open, 0);
    expect(open).toBeLessThanOrEqual(CAP.dbServerMaxConnections);
  });

  it('lets a silo tenant in by closing an idle shared connection when the server budget is full', async () => {
    // Four shared units at once: the shared pool opens its four connections, then they idle.
    const hold = deferred();
    const inside = [0, 1, 2, 3].map(() => deferred());
    const units = [pool, pool, bridge, bridge].map((t, i) =>
      fx.inTenant(t, async (em) => {
        await em.query('SELECT 1');
        inside[i].resolve();
        await hold.promise;
      }),
    );
    await Promise.all(inside.map((d) => d.promise));
    hold.resolve();
    await Promise.all(units);
    // Two silo tenants stay resident on one connection each: the server's budget is full, all idle.
    await fx.readInTenant(silos[0], (em) => em.query('SELECT 1'));
    await fx.readInTenant(silos[1], (em) => em.query('SELECT 1'));
    const server = budget.stats().find((s) => s.kind === 'shared' && s.open > 0)!.server;
    expect(budget.openOnServer(server)).toBe(CAP.dbServerMaxConnections);

    // Both silo tenants' connections are inside their hold window: the slot must come from the shared pool.
    const [{ db }] = await fx.readInTenant(silos[2], (em) => em.query('SELECT current_database() AS db'));
    expect(db).toBe(silos[2].database);
    const byKind = Object.fromEntries(budget.stats().filter((s) => s.server === server).map((s) => [s.kind, s.open]));
    expect(byKind).toEqual({ shared: 3, silo: 3 });
    expect(await appBackends(fx, [fx.db.name, ...silos.map((t) => t.database)])).toBeLessThanOrEqual(CAP.dbServerMaxConnections);
  });
});

describe('silo waits for a free slot rather than failing when no connection may close yet', () => {
  let fx: TenancyFixture;
  let cache: SiloDataSourceCache;
  const silos: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture({ siloPoolMax: 1, siloMaxConnections: 2, siloConnectionHoldMs: 200, siloAcquireTimeoutMs: 3000 });
    cache = fx.module.get(SiloDataSourceCache);
    for (let i = 0; i < 3; i++) silos.push(await fx.onboard('silo', `wait${i}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('admits a third silo tenant over a budget of two once the least recently used connection leaves its hold window, and reconnects the first without recreating it', async () => {
    await fx.readInTenant(silos[0], (em) => em.query('SELECT 1'));
    await fx.readInTenant(silos[1], (em) => em.query('SELECT 1'));
    const started = Date.now();
    await fx.readInTenant(silos[2], (em) => em.query('SELECT 1'));
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect(cache.counters).toMatchObject({ creations: 3, waits: 1, waitTimeouts: 0, connectionCloses: { room: 1 }, evictions: { lru: 0 } });
    expect(await waitFor(() => appBackends(fx, silos.map((t) => t.database)), (n) => n <= 2)).toBeLessThanOrEqual(2);

    // The first tenant's DataSource was kept: it comes back on a new session, not a new DataSource.
    const [{ db }] = await fx.readInTenant(silos[0], (em) => em.query('SELECT current_database() AS db'));
    expect(db).toBe(silos[0].database);
    expect(cache.counters).toMatchObject({ creations: 3, reconnects: 1, connectionCloses: { room: 2 } });
    expect(await waitFor(() => appBackends(fx, silos.map((t) => t.database)), (n) => n <= 2)).toBeLessThanOrEqual(2);
  });
});

describe('bridge backends are recycled (BRIDGE_CONN_MAX_USES)', () => {
  let fx: TenancyFixture;
  const bridges: TestTenant[] = [];

  beforeAll(async () => {
    // One shared connection, renewed after 3 units: a backend never collects every schema's catalog.
    fx = await createTenancyFixture({ dataPoolMax: 1, bridgeConnMaxUses: 3 });
    for (let i = 0; i < 3; i++) bridges.push(await fx.onboard('bridge', `recycle${i}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('serves 9 units over 3 bridge schemas on 3 successive backends, never more than one at a time', async () => {
    const pids: number[] = [];
    for (let i = 0; i < 9; i++) {
      const [{ pid }] = await fx.readInTenant(bridges[i % 3], (em) => em.query('SELECT pg_backend_pid() AS pid'));
      pids.push(pid as number);
    }
    expect(new Set(pids).size).toBe(3);
    // Each backend served exactly its 3 uses, in a row.
    expect(pids.map((p) => pids.indexOf(p))).toEqual([0, 0, 0, 3, 3, 3, 6, 6, 6]);
    expect(await waitFor(() => appBackends(fx, [fx.db.name]), (n) => n <= 1)).toBeLessThanOrEqual(1);
  });
});
