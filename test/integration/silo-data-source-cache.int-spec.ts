import type { DataSource } from 'typeorm';
import { SiloCapacityError, SiloDataSourceCache } from '#strata/tenancy/platform';
import {
  createTenancyFixture,
  deferred,
  rejectionOf,
  sleep,
  waitFor,
  type TenancyFixture,
  type TestTenant,
} from '../support/tenancy-fixture';

jest.setTimeout(60_000);

const SILO = { siloPoolMax: 2, siloMaxConnections: 4, siloIdleMs: 300, siloAcquireTimeoutMs: 3000 };

describe('silo DataSource cache on real databases', () => {
  let fx: TenancyFixture;
  let cache: SiloDataSourceCache;
  const silos: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture(SILO);
    cache = fx.module.get(SiloDataSourceCache);
    for (let i = 0; i < 5; i++) silos.push(await fx.onboard('silo', `cache${i}`));
  });
  afterAll(async () => {
    await fx?.close();
  });
  beforeEach(async () => {
    // Start every test with an empty cache: close whatever earlier tests left kept.
    await Promise.all(silos.map((t) => cache.evictTenant(t.id)));
    expect(cache.stats()).toMatchObject({ size: 0, reservedConnections: 0 });
    await waitFor(() => appBackends(silos), (n) => n === 0);
  });

  /** Backends the app role holds on the given tenants' databases right now. */
  async function appBackends(tenants: TestTenant[]): Promise<number> {
    const [{ n }] = await fx.ownerQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND datname = ANY($2)`,
      [fx.db.appRole, tenants.map((t) => t.database)],
    );
    return n;
  }

  /** Samples appBackends() until stopped; returns every sample. */
  function sampleBackends(tenants: TestTenant[]) {
    const samples: number[] = [];
    let running = true;
    const done = (async () => {
      while (running) {
        samples.push(await appBackends(tenants));
        await sleep(2);
      }
    })();
    return {
      samples,
      async stop() {
        running = false;
        await done;
        return samples;
      },
    };
  }

  it('creates exactly one DataSource for 20 concurrent first units of a silo tenant', async () => {
    const t = silos[0];
    const sampler = sampleBackends([t]);
    const seen = await Promise.all(
      Array.from({ length: 20 }, () =>
        fx.inTenant(t, async (em) => {
          const [{ pid, db }] = await em.query(`SELECT pg_backend_pid() AS pid, current_database() AS db`);
          await em.query(`INSERT INTO projects (name) VALUES ('first')`);
          return { ds: em.connection as DataSource, pid: pid as number, db: db as string };
        }),
      ),
    );
    const samples = await sampler.stop();
    expect(new Set(seen.map((s) => s.ds)).size).toBe(1);
    expect(new Set(seen.map((s) => s.db))).toEqual(new Set([t.database]));
    expect(new Set(seen.map((s) => s.pid)).size).toBeLessThanOrEqual(SILO.siloPoolMax);
    expect(cache.stats()).toMatchObject({ size: 1, inUse: 0 });
    expect(cache.stats().reservedConnections).toBeLessThanOrEqual(SILO.siloPoolMax);
    expect(Math.max(...samples)).toBeLessThanOrEqual(SILO.siloPoolMax);
    const [{ n }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.projects WHERE name = 'first'`, [], t.database);
    expect(n).toBe(20);
  });

  it('keeps app-role backends within SILO_MAX_CONNECTIONS while 5 silo tenants are used concurrently', async () => {
    const PER_TENANT = 8;
    const sampler = sampleBackends(silos);
    const jobs = Array.from({ length: silos.length * PER_TENANT }, (_, i) => silos[i % silos.length]);
    const createdBefore = cache.counters.creations;
    const dataSources = new Map<string, Set<DataSource>>();
    const results = await Promise.allSettled(
      jobs.map((t, i) =>
        fx.inTenant(t, async (em) => {
          if (!dataSources.has(t.id)) dataSources.set(t.id, new Set());
          dataSources.get(t.id)!.add(em.connection);
          await em.query(`INSERT INTO projects (name) VALUES ($1)`, [`load-${i}`]);
          await em.query(`SELECT pg_sleep(0.02)`);
          const [{ n }] = await em.query(`SELECT count(*)::int AS n FROM projects WHERE name LIKE 'load-%'`);
          return n as number;
        }),
      ),
    );
    const samples = await sampler.stop();
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect(samples.length).toBeGreaterThan(10);
    expect(Math.max(...samples)).toBeGreaterThanOrEqual(SILO.siloPoolMax); // the sampler did see the load
    expect(Math.max(...samples)).toBeLessThanOrEqual(SILO.siloMaxConnections);
    // Every tenant got a DataSource, created once and kept: the budget was met by closing idle connections.
    expect([...dataSources.keys()].sort()).toEqual(silos.map((t) => t.id).sort());
    expect([...dataSources.values()].map((d) => d.size)).toEqual(silos.map(() => 1));
    expect(cache.counters.creations - createdBefore).toBe(silos.length);
    const stats = cache.stats();
    expect(stats.size).toBe(silos.length);
    expect(stats.reservedConnections).toBeLessThanOrEqual(SILO.siloMaxConnections);
    for (const t of silos) {
      const [{ n }] = await fx.ownerQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM shared.projects WHERE name LIKE 'load-%' AND tenant_id = $1`,
        [t.id],
        t.database,
      );
      expect(n).toBe(PER_TENANT);
    }
  });

  it('closes silo connections idle longer than SILO_IDLE_MS, their backends go away, and the kept DataSources reconnect', async () => {
    const used = silos.slice(0, 2);
    const dataSources = await Promise.all(used.map((t) => fx.inTenant(t, async (em) => (await em.query(`SELECT 1`), em.connection))));
    const releasedAt = Date.now();
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 2, connected: 2 }); // one connection each
    expect(await appBackends(used)).toBeGreaterThan(0);
    await sleep(100);
    expect(cache.stats().connected).toBe(2); // not yet idle long enough
    expect(await waitFor(() => cache.stats().connected, (n) => n === 0, 3000, 10)).toBe(0);
    expect(Date.now() - releasedAt).toBeGreaterThanOrEqual(SILO.siloIdleMs - 10);
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 0 });
    expect(await waitFor(() => appBackends(used), (n) => n === 0, 3000)).toBe(0);

    const reconnectsBefore = cache.counters.reconnects;
    const again = await Promise.all(used.map((t) => fx.inTenant(t, async (em) => (await em.query(`SELECT 1`), em.connection))));
    again.forEach((ds, i) => expect(ds).toBe(dataSources[i])); // the same DataSources, on new sessions
    expect(cache.counters.reconnects - reconnectsBefore).toBe(2);
  });

  it('hands the slots of closed connections back only once their backends are gone', async () => {
    const used = silos.slice(0, 2);
    for (let round = 0; round < 5; round++) {
      // Two concurrent units per tenant: each silo DataSource opens both of its connections.
      await Promise.all(used.flatMap((t) => [1, 2].map(() => fx.inTenant(t, (em) => em.query(`SELECT pg_sleep(0.005)`)))));
      expect(await appBackends(used)).toBeGreaterThan(2);
      expect(await cache.evictIdle(Date.now() + 3_600_000)).toBe(2);
      expect(cache.stats().reservedConnections).toBe(0);
      // The budget says these slots are free again, so the server must agree.
      expect(await appBackends(used)).toBe(0);
    }
  });

  it('grows a silo tenant’s pool to SILO_POOL_MAX connections under concurrent units, and no further', async () => {
    const t = silos[0];
    const hold = deferred();
    const pids: number[] = [];
    const units = Array.from({ length: SILO.siloPoolMax + 2 }, () =>
      fx.inTenant(t, async (em) => {
        pids.push((await em.query(`SELECT pg_backend_pid() AS pid`))[0].pid);
        await hold.promise;
      }),
    );
    await waitFor(() => pids.length, (n) => n === SILO.siloPoolMax);
    await sleep(100); // the others stay queued for the tenant's own connections
    expect(pids).toHaveLength(SILO.siloPoolMax);
    expect(new Set(pids).size).toBe(SILO.siloPoolMax);
    expect(await appBackends([t])).toBe(SILO.siloPoolMax);
    expect(cache.stats()).toMatchObject({ size: 1, reservedConnections: SILO.siloPoolMax });
    hold.resolve();
    await Promise.all(units);
    expect(pids).toHaveLength(SILO.siloPoolMax + 2);
  });

  it('serves more silo tenants at once than SILO_MAX_CONNECTIONS / SILO_POOL_MAX: a tenant holds only the connections it uses', async () => {
    const four = silos.slice(0, SILO.siloMaxConnections);
    const hold = deferred();
    const entered = four.map(() => deferred());
    const units = four.map((t, i) =>
      fx.inTenant(t, async (em) => {
        const [{ db }] = await em.query(`SELECT current_database() AS db`);
        entered[i].resolve();
        await hold.promise;
        return db as string;
      }),
    );
    await Promise.all(entered.map((d) => d.promise));
    expect(cache.stats()).toMatchObject({ size: SILO.siloMaxConnections, reservedConnections: SILO.siloMaxConnections, inUse: SILO.siloMaxConnections });
    expect(await appBackends(silos)).toBeLessThanOrEqual(SILO.siloMaxConnections);
    hold.resolve();
    expect(await Promise.all(units)).toEqual(four.map((t) => t.database));
  });

  it('rejects with SiloCapacityError when in-flight work holds every slot past the acquire timeout', async () => {
    const [t1, t2, t3] = silos;
    const hold = deferred();
    const entered = [deferred(), deferred(), deferred(), deferred()];
    // Two units each: both tenants grow to SILO_POOL_MAX, so together they hold every slot.
    const held = [t1, t2, t1, t2].map((t, i) =>
      fx.inTenant(t, async (em) => {
        await em.query(`INSERT INTO projects (name) VALUES ('held')`);
        const seen = await em.query(`SELECT count(*)::int AS n FROM projects WHERE name = 'held'`);
        entered[i].resolve();
        await hold.promise;
        return seen;
      }),
    );
    await Promise.all(entered.map((d) => d.promise));
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 4, inUse: 2 });
    expect(await appBackends([t1, t2])).toBe(4);

    let ran = false;
    const started = Date.now();
    const err = await rejectionOf(
      fx.inTenant(t3, async () => {
        ran = true;
      }),
    );
    const waited = Date.now() - started;
    expect(err).toBeInstanceOf(SiloCapacityError);
    expect(err.message).toMatch(/all 4 silo connections are in use/);
    expect(waited).toBeGreaterThanOrEqual(SILO.siloAcquireTimeoutMs - 50);
    expect(waited).toBeLessThan(SILO.siloAcquireTimeoutMs + 2000);
    expect(ran).toBe(false);
    // The busy DataSources were not evicted under them, and the failed tenant is not left cached.
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 4, inUse: 2 });

    hold.resolve();
    const counts = await Promise.all(held);
    // Each held unit saw only its own uncommitted row, and all of them completed.
    expect(counts.map((c) => c[0].n)).toEqual([1, 1, 1, 1]);
    // Once the slots are free, the tenant that was turned away gets in (its failure was not cached).
    const [{ db }] = await fx.inTenant(t3, (em) => em.query(`SELECT current_database() AS db`));
    expect(db).toBe(t3.database);
    expect(cache.stats().reservedConnections).toBeLessThanOrEqual(SILO.siloMaxConnections);
  });
});
