import type { DataSource } from 'typeorm';
import type { StrataConfig } from '#strata/common';
import { SiloDataSourceCache, type SiloDataSourceOpener } from './silo-data-source.cache';
import { SiloCapacityError } from './tenancy.errors';

// A fake DataSource that only tracks open/closed: the cache's bookkeeping is what is under test here;
// real connections are covered by the integration suite.
class FakeDataSource {
  destroyed = false;
  driver?: { master: FakePgPool };
  constructor(readonly database: string) {}
  async destroy() {
    this.destroyed = true;
  }
}

/** What the cache reads and steers of pg-pool: the max it may open, how many it has, its 'remove' event. */
class FakePgPool {
  totalCount = 0;
  private readonly removed: Array<() => void> = [];
  constructor(readonly options: { max: number }) {}
  on(_event: 'remove', listener: () => void) {
    this.removed.push(listener);
  }
  /** pg-pool closed a connection (idle timeout, error). */
  close(n = 1) {
    this.totalCount -= n;
    for (const l of this.removed) l();
  }
}

function setup(over: Partial<StrataConfig> = {}, opts: { withPool?: boolean } = {}) {
  const config = { siloPoolMax: 2, siloMaxConnections: 2, siloIdleMs: 1000, siloAcquireTimeoutMs: 200, ...over } as StrataConfig;
  const opened: FakeDataSource[] = [];
  let fail = false;
  const opener: SiloDataSourceOpener = async (address, max) => {
    await new Promise((r) => setTimeout(r, 5));
    if (fail) throw new Error('connect ECONNREFUSED');
    const ds = new FakeDataSource(address.database);
    if (opts.withPool) ds.driver = { master: new FakePgPool({ max }) };
    opened.push(ds);
    return ds as unknown as DataSource;
  };
  const cache = new SiloDataSourceCache(config, opener);
  const open = () => opened.filter((d) => !d.destroyed).length;
  return { cache, opened, open, failNext: (v: boolean) => (fail = v) };
}

const addr = (db: string) => ({ host: 'h', port: 5432, database: db });

describe('SiloDataSourceCache', () => {
  it('creates one DataSource for concurrent first requests of a tenant', async () => {
    const { cache, opened } = setup();
    const leases = await Promise.all(Array.from({ length: 10 }, () => cache.acquire('t1', addr('d1'))));
    expect(opened).toHaveLength(1);
    expect(new Set(leases.map((l) => l.dataSource)).size).toBe(1);
    leases.forEach((l) => l.release());
    await cache.onApplicationShutdown();
  });

  it('evicts the least recently used idle DataSource to stay within the connection budget', async () => {
    const { cache, opened, open } = setup();
    (await cache.acquire('a', addr('a'))).release();
    (await cache.acquire('b', addr('b'))).release();
    (await cache.acquire('a', addr('a'))).release(); // a is now the most recent
    const c = await cache.acquire('c', addr('c'));
    expect(opened.find((d) => d.database === 'b')!.destroyed).toBe(true);
    expect(opened.find((d) => d.database === 'a')!.destroyed).toBe(false);
    expect(open()).toBe(2);
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 2 });
    c.release();
    await cache.onApplicationShutdown();
  });

  it('never evicts a DataSource in use and fails with SiloCapacityError when the budget is exhausted', async () => {
    const { cache, opened } = setup();
    const a = await cache.acquire('a', addr('a'));
    const b = await cache.acquire('b', addr('b'));
    await expect(cache.acquire('c', addr('c'))).rejects.toBeInstanceOf(SiloCapacityError);
    expect(opened.every((d) => !d.destroyed)).toBe(true);
    a.release();
    b.release();
    await cache.onApplicationShutdown();
  });

  it('hands a freed slot to a waiting tenant', async () => {
    const { cache } = setup({ siloAcquireTimeoutMs: 2000 });
    const a = await cache.acquire('a', addr('a'));
    const b = await cache.acquire('b', addr('b'));
    const waiting = cache.acquire('c', addr('c'));
    setTimeout(() => a.release(), 20);
    const c = await waiting;
    expect((c.dataSource as unknown as FakeDataSource).database).toBe('c');
    b.release();
    c.release();
    await cache.onApplicationShutdown();
  });

  it('closes DataSources idle longer than SILO_IDLE_MS', async () => {
    const { cache, open } = setup();
    (await cache.acquire('a', addr('a'))).release();
    expect(await cache.evictIdle(Date.now() + 500)).toBe(0);
    expect(await cache.evictIdle(Date.now() + 1500)).toBe(1);
    expect(open()).toBe(0);
    expect(cache.stats()).toMatchObject({ size: 0, reservedConnections: 0 });
  });

  it('gives the slot back and forgets the tenant when connecting fails', async () => {
    const { cache, failNext, opened } = setup();
    failNext(true);
    await expect(cache.acquire('a', addr('a'))).rejects.toThrow(/ECONNREFUSED/);
    expect(cache.stats()).toMatchObject({ size: 0, reservedConnections: 0 });
    failNext(false);
    (await cache.acquire('a', addr('a'))).release();
    expect(opened).toHaveLength(1);
    await cache.onApplicationShutdown();
  });

  it('ignores a second release of the same lease', async () => {
    const { cache } = setup();
    const lease = await cache.acquire('a', addr('a'));
    const again = await cache.acquire('a', addr('a'));
    lease.release();
    lease.release();
    expect(cache.stats().inUse).toBe(1);
    again.release();
    await cache.onApplicationShutdown();
  });

  describe('elastic pools', () => {
    const poolOf = (l: { dataSource: DataSource }) => (l.dataSource as unknown as FakeDataSource).driver!.master;

    it('opens a DataSource allowed one connection, holding one slot', async () => {
      const { cache } = setup({ siloPoolMax: 3, siloMaxConnections: 4 }, { withPool: true });
      const a = await cache.acquire('a', addr('a'));
      expect(poolOf(a).options.max).toBe(1);
      expect(cache.stats().reservedConnections).toBe(1);
      a.release();
      await cache.onApplicationShutdown();
    });

    it('grows a busy tenant by one slot per extra unit in flight, up to SILO_POOL_MAX', async () => {
      const { cache } = setup({ siloPoolMax: 3, siloMaxConnections: 4 }, { withPool: true });
      const leases = await Promise.all(Array.from({ length: 5 }, () => cache.acquire('a', addr('a'))));
      expect(poolOf(leases[0]).options.max).toBe(3);
      expect(cache.stats().reservedConnections).toBe(3);
      const b = await cache.acquire('b', addr('b')); // the fourth slot is still there for another tenant
      expect(cache.stats().reservedConnections).toBe(4);
      [...leases, b].forEach((l) => l.release());
      await cache.onApplicationShutdown();
    });

    it('never grows past the budget: extra units share the tenant’s connections instead of waiting', async () => {
      const { cache } = setup({ siloPoolMax: 5, siloMaxConnections: 2 }, { withPool: true });
      const a = await cache.acquire('a', addr('a'));
      const b = await cache.acquire('b', addr('b'));
      const more = await Promise.all([cache.acquire('a', addr('a')), cache.acquire('a', addr('a'))]);
      expect(poolOf(a).options.max).toBe(1);
      expect(cache.stats().reservedConnections).toBe(2);
      [a, b, ...more].forEach((l) => l.release());
      await cache.onApplicationShutdown();
    });

    it('gives back unused slots on release, and the others as pg-pool closes idle connections', async () => {
      const { cache } = setup({ siloPoolMax: 3, siloMaxConnections: 4 }, { withPool: true });
      const leases = await Promise.all(Array.from({ length: 3 }, () => cache.acquire('a', addr('a'))));
      const pool = poolOf(leases[0]);
      pool.totalCount = 2; // pg-pool opened two of the three it was allowed
      leases.forEach((l) => l.release());
      expect(cache.stats().reservedConnections).toBe(2);
      expect(pool.options.max).toBe(2);
      pool.close();
      expect(cache.stats().reservedConnections).toBe(1);
      pool.close();
      expect(cache.stats().reservedConnections).toBe(1); // a resident DataSource keeps one slot
      expect(pool.options.max).toBe(1);
      await cache.onApplicationShutdown();
      expect(cache.stats().reservedConnections).toBe(0);
    });

    it('starts closing the least recently used idle tenant when a busy one cannot grow', async () => {
      const { cache, opened } = setup({ siloPoolMax: 3, siloMaxConnections: 2 }, { withPool: true });
      (await cache.acquire('idle', addr('idle'))).release();
      const b1 = await cache.acquire('b', addr('b'));
      const b2 = await cache.acquire('b', addr('b'));
      expect(poolOf(b1).options.max).toBe(1); // no room yet...
      await new Promise((r) => setTimeout(r, 10));
      expect(opened.find((d) => d.database === 'idle')!.destroyed).toBe(true); // ...but it is being made
      const b3 = await cache.acquire('b', addr('b'));
      expect(poolOf(b1).options.max).toBe(2);
      expect(cache.stats()).toMatchObject({ size: 1, reservedConnections: 2 });
      [b1, b2, b3].forEach((l) => l.release());
      await cache.onApplicationShutdown();
    });
  });
});
