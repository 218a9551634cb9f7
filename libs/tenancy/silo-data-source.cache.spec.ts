import type { DataSource } from 'typeorm';
import type { StrataConfig } from '#strata/common';
import { SiloCapacityError, SiloDataSourceCache, type SiloDataSourceOpener } from './silo-data-source.cache';

// A fake DataSource that only tracks open/closed: the cache's bookkeeping is what is under test here;
// real connections are covered by the integration suite.
class FakeDataSource {
  destroyed = false;
  constructor(readonly database: string) {}
  async destroy() {
    this.destroyed = true;
  }
}

function setup(over: Partial<StrataConfig> = {}) {
  const config = { siloPoolMax: 2, siloMaxConnections: 4, siloIdleMs: 1000, siloAcquireTimeoutMs: 200, ...over } as StrataConfig;
  const opened: FakeDataSource[] = [];
  let fail = false;
  const opener: SiloDataSourceOpener = async (address) => {
    await new Promise((r) => setTimeout(r, 5));
    if (fail) throw new Error('connect ECONNREFUSED');
    const ds = new FakeDataSource(address.database);
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
    expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 4 });
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
});
