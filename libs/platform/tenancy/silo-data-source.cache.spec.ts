import type { DataSource } from 'typeorm';
import type { StrataConfig } from '#strata/common';
import { SiloDataSourceCache, type SiloDataSourceOpener, type SiloLease } from './silo-data-source.cache';
import { SiloCapacityError } from './tenancy.errors';

// A fake DataSource that only tracks open/closed: the cache's bookkeeping is what is under test here;
// real connections are covered by the integration suite (test/integration/connection-capacity.int-spec.ts).
class FakeDataSource {
  destroyed = false;
  driver?: { master: FakePgPool };
  constructor(readonly database: string) {}
  async destroy() {
    this.destroyed = true;
    // TypeORM ends the pg pool: each connection reports 'remove' once its socket has ended.
    const pool = this.driver?.master;
    if (!pool) return;
    const open = pool.totalCount;
    pool.idleCount = 0;
    setTimeout(() => {
      for (let i = 0; i < open; i++) pool.close(1);
    }, 1);
  }
}

/**
 * What the cache reads and steers of pg-pool: the max it may open, its open and idle connections,
 * its 'remove' event, and connect() (the cache checks an idle connection out and releases it as
 * broken to close it). Units check connections out through checkout()/checkin(), which refuse to
 * open more than `options.max`, as pg-pool does.
 */
class FakePgPool {
  totalCount = 0;
  idleCount = 0;
  waitingCount = 0;
  private readonly removed = new Set<(client: unknown) => void>();
  constructor(readonly options: { max: number }) {}
  on(_event: 'remove', listener: (client: unknown) => void) {
    this.removed.add(listener);
  }
  removeListener(_event: 'remove', listener: (client: unknown) => void) {
    this.removed.delete(listener);
  }
  async connect() {
    if (this.idleCount === 0) throw new Error('the fake hands out idle connections only');
    this.idleCount--;
    const client = {
      release: (destroy?: boolean) => {
        if (!destroy) {
          this.idleCount++;
          return;
        }
        // pg-pool forgets the connection at once and reports 'remove' once its socket has ended.
        this.totalCount--;
        setTimeout(() => this.close(0, client), 2);
      },
    };
    return client;
  }
  private readonly queue: Array<() => void> = [];
  /** A unit takes a connection: an idle one, else a new one within `options.max`, else it queues as in pg-pool. */
  async checkout(): Promise<void> {
    if (this.idleCount > 0) {
      this.idleCount--;
      return;
    }
    if (this.totalCount < this.options.max) {
      this.totalCount++;
      return;
    }
    this.waitingCount++;
    await new Promise<void>((resolve) => this.queue.push(resolve));
    this.waitingCount--;
    if (this.totalCount > this.options.max) throw new Error(`pool over its max: ${this.totalCount} open, max ${this.options.max}`);
  }
  checkin() {
    const next = this.queue.shift();
    if (next) next();
    else this.idleCount++;
  }
  /** pg-pool closed a connection (idle timeout, error, a release as broken). */
  close(n = 1, client: unknown = {}) {
    this.totalCount -= n;
    for (const l of [...this.removed]) l(client);
    // Room in the pool again: a queued unit opens a new connection.
    if (this.queue.length && this.totalCount < this.options.max) {
      this.totalCount++;
      this.queue.shift()!();
    }
  }
}

function setup(over: Partial<StrataConfig> = {}, opts: { withPool?: boolean } = {}) {
  const config = { siloPoolMax: 2, siloMaxConnections: 2, siloIdleMs: 1000, siloAcquireTimeoutMs: 200, siloConnectionHoldMs: 0, siloDataSourcesMax: 1000, ...over } as StrataConfig;
  const opened: FakeDataSource[] = [];
  let fail = false;
  const opener: SiloDataSourceOpener = async (address, max) => {
    await new Promise((r) => setTimeout(r, 5));
    if (fail) throw new Error('connect ECONNREFUSED');
    const ds = new FakeDataSource(address.database);
    if (opts.withPool) {
      // TypeORM's initialisation leaves its connection idle in the pool.
      const pool = new FakePgPool({ max });
      pool.totalCount = 1;
      pool.idleCount = 1;
      ds.driver = { master: pool };
    }
    opened.push(ds);
    return ds as unknown as DataSource;
  };
  const cache = new SiloDataSourceCache(config, opener);
  const open = () => opened.filter((d) => !d.destroyed).length;
  const byName = (db: string) => opened.filter((d) => d.database === db);
  return { cache, opened, open, byName, failNext: (v: boolean) => (fail = v) };
}

const addr = (db: string) => ({ host: 'h', port: 5432, database: db });
const poolOf = (l: { dataSource: DataSource }) => (l.dataSource as unknown as FakeDataSource).driver!.master;

/** A unit of work on a fake pool: a lease, a connection checked out (within the pool's max) and back. */
async function unit(cache: SiloDataSourceCache, t: string): Promise<{ lease: SiloLease; done(): void }> {
  const lease = await cache.acquire(t, addr(t));
  const pool = poolOf(lease);
  try {
    await pool.checkout();
  } catch (err) {
    lease.release();
    throw err;
  }
  return {
    lease,
    done() {
      pool.checkin();
      lease.release();
    },
  };
}

describe('SiloDataSourceCache', () => {
  it('creates one DataSource for concurrent first requests of a tenant', async () => {
    const { cache, opened } = setup();
    const leases = await Promise.all(Array.from({ length: 10 }, () => cache.acquire('t1', addr('d1'))));
    expect(opened).toHaveLength(1);
    expect(new Set(leases.map((l) => l.dataSource)).size).toBe(1);
    leases.forEach((l) => l.release());
    await cache.onApplicationShutdown();
  });

  it('never closes a connection in use and fails with SiloCapacityError when every slot is busy', async () => {
    const { cache, opened } = setup({}, { withPool: true });
    const a = await unit(cache, 'a');
    const b = await unit(cache, 'b');
    await expect(cache.acquire('c', addr('c'))).rejects.toBeInstanceOf(SiloCapacityError);
    expect(opened.every((d) => !d.destroyed)).toBe(true);
    expect([poolOf(a.lease).totalCount, poolOf(b.lease).totalCount]).toEqual([1, 1]);
    expect(cache.counters).toMatchObject({ waits: 1, waitTimeouts: 1, connectionCloses: { room: 0, idle: 0 } });
    a.done();
    b.done();
    await cache.onApplicationShutdown();
  });

  it('hands a freed slot to a waiting tenant', async () => {
    const { cache } = setup({ siloAcquireTimeoutMs: 2000 }, { withPool: true });
    const a = await unit(cache, 'a');
    const b = await unit(cache, 'b');
    const waiting = cache.acquire('c', addr('c'));
    setTimeout(() => a.done(), 20);
    const c = await waiting;
    expect((c.dataSource as unknown as FakeDataSource).database).toBe('c');
    expect(poolOf(a.lease).totalCount).toBe(0); // a's idle connection made the room
    b.done();
    c.release();
    await cache.onApplicationShutdown();
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

  describe('kept DataSources, connections for room', () => {
    it('closes the least recently used idle tenant’s connection to make room and keeps its DataSource', async () => {
      const { cache, byName, open } = setup({ siloPoolMax: 1 }, { withPool: true });
      (await unit(cache, 'a')).done();
      (await unit(cache, 'b')).done();
      (await unit(cache, 'a')).done(); // a is now the most recent
      const c = await unit(cache, 'c');
      expect(poolOf({ dataSource: byName('b')[0] as unknown as DataSource }).totalCount).toBe(0);
      expect(poolOf({ dataSource: byName('a')[0] as unknown as DataSource }).totalCount).toBe(1);
      expect(open()).toBe(3); // no DataSource closed
      expect(cache.stats()).toMatchObject({ size: 3, reservedConnections: 2, connected: 2 });
      expect(cache.counters).toMatchObject({ creations: 3, reconnects: 0, evictions: { lru: 0, explicit: 0 }, connectionCloses: { room: 1, idle: 0 } });
      c.done();
      await cache.onApplicationShutdown();
    });

    it('reconnects a kept tenant without creating its DataSource again', async () => {
      const { cache, opened } = setup({ siloPoolMax: 1 }, { withPool: true });
      (await unit(cache, 'a')).done();
      (await unit(cache, 'b')).done();
      (await unit(cache, 'c')).done(); // closes a's connection
      const a = await unit(cache, 'a'); // closes b's, opens a's again on the kept DataSource
      expect(opened.map((d) => d.database)).toEqual(['a', 'b', 'c']);
      expect(poolOf(a.lease).options.max).toBe(1);
      expect(cache.counters).toMatchObject({ creations: 3, reconnects: 1, connectionCloses: { room: 2 } });
      expect(cache.stats().reservedConnections).toBe(2);
      a.done();
      await cache.onApplicationShutdown();
    });

    it('lets a tenant without a connection open none until it has a slot again', async () => {
      const { cache } = setup({ siloPoolMax: 1, siloMaxConnections: 1 }, { withPool: true });
      (await unit(cache, 'a')).done();
      (await unit(cache, 'b')).done();
      const bPool = poolOf(await cache.acquire('b', addr('b')).then((l) => (l.release(), l)));
      const aPool = poolOf(await cache.acquire('c', addr('c')).then((l) => (l.release(), l)));
      expect(aPool).not.toBe(bPool);
      expect(bPool.totalCount).toBe(0);
      expect(bPool.options.max).toBe(0); // pg-pool would queue a checkout rather than connect over the budget
      await cache.onApplicationShutdown();
    });

    it('closes an idle spare connection before any tenant’s only one', async () => {
      const { cache, byName } = setup({ siloPoolMax: 2, siloMaxConnections: 3 }, { withPool: true });
      (await unit(cache, 'old')).done();
      const [x, y] = await Promise.all([unit(cache, 'busy'), unit(cache, 'busy')]);
      expect(poolOf(x.lease).totalCount).toBe(2);
      x.done(); // one of busy's two connections idles, y still works on the other
      const n = await unit(cache, 'new');
      expect(poolOf(x.lease).totalCount).toBe(1);
      expect(poolOf({ dataSource: byName('old')[0] as unknown as DataSource }).totalCount).toBe(1);
      expect(cache.counters.connectionCloses.room).toBe(1);
      [y, n].forEach((u) => u.done());
      await cache.onApplicationShutdown();
    });

    it('creates each DataSource once under random traffic over three times as many tenants as connections, never above the cap', async () => {
      const { cache, opened } = setup({ siloPoolMax: 2, siloMaxConnections: 4, siloAcquireTimeoutMs: 2000 }, { withPool: true });
      const tenants = Array.from({ length: 12 }, (_, i) => `t${i}`);
      let seed = 7;
      const random = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
      const reserved: number[] = [];
      let errors = 0;
      await Promise.all(
        Array.from({ length: 3 }, async () => {
          for (let i = 0; i < 60; i++) {
            try {
              // Counted, not thrown: a unit over its pool's max fails here like pg-pool's over the server's.
              const u = await unit(cache, tenants[Math.floor(random() * tenants.length)]);
              reserved.push(cache.stats().reservedConnections, opened.reduce((n, d) => n + d.driver!.master.totalCount, 0));
              await new Promise((r) => setTimeout(r, 1));
              u.done();
            } catch {
              errors++;
            }
          }
        }),
      );
      expect(errors).toBe(0);
      expect(opened).toHaveLength(12);
      expect(cache.counters.creations).toBe(12);
      expect(cache.counters.evictions).toEqual({ lru: 0, explicit: 0 });
      expect(cache.counters.reconnects).toBeGreaterThan(0);
      expect(Math.max(...reserved)).toBeLessThanOrEqual(4);
      await cache.onApplicationShutdown();
    });
  });

  describe('headroom under pressure', () => {
    it('keeps 10 % of the budget free while tenants keep finding it full, so the next one connects without waiting for a close', async () => {
      const { cache } = setup({ siloPoolMax: 1, siloMaxConnections: 10, siloSpareIdleMs: 1000 }, { withPool: true });
      for (let i = 0; i < 10; i++) (await unit(cache, `t${i}`)).done();
      expect(cache.stats().reservedConnections).toBe(10);
      expect(cache.counters.connectionCloses.room).toBe(0); // a full budget alone closes nothing

      (await unit(cache, 'n1')).done(); // finds it full: waits for t0's connection, then closes t1's ahead of need
      await new Promise((r) => setTimeout(r, 20));
      expect(cache.stats().reservedConnections).toBe(9);
      expect(cache.counters).toMatchObject({ connectionCloses: { room: 2 }, waits: 0 });

      const started = cache.counters.connectionCloses.room;
      (await unit(cache, 'n2')).done(); // a free slot at once; t2's connection closes behind it
      await new Promise((r) => setTimeout(r, 20));
      expect(cache.counters.connectionCloses.room - started).toBe(1);
      expect(cache.stats().reservedConnections).toBe(9);
      await cache.onApplicationShutdown();
    });

    it('lets pools grow into the headroom only once the pressure has passed', async () => {
      const { cache } = setup({ siloPoolMax: 2, siloMaxConnections: 10, siloSpareIdleMs: 100 }, { withPool: true });
      for (let i = 0; i < 11; i++) (await unit(cache, `t${i}`)).done(); // the 11th found the budget full
      await new Promise((r) => setTimeout(r, 20));
      const during = await Promise.all([cache.acquire('t10', addr('t10')), cache.acquire('t10', addr('t10'))]);
      expect(poolOf(during[0]).options.max).toBe(1);
      during.forEach((l) => l.release());
      await new Promise((r) => setTimeout(r, 150));
      const after = await Promise.all([cache.acquire('t10', addr('t10')), cache.acquire('t10', addr('t10'))]);
      expect(poolOf(after[0]).options.max).toBe(2);
      after.forEach((l) => l.release());
      await cache.onApplicationShutdown();
    });
  });

  describe('idle connections and the DataSource bound', () => {
    it('closes a tenant’s connections idle past SILO_IDLE_MS and keeps its DataSource', async () => {
      const { cache, open, opened } = setup({}, { withPool: true });
      (await unit(cache, 'a')).done();
      expect(await cache.evictIdle(Date.now() + 500)).toBe(0);
      expect(await cache.evictIdle(Date.now() + 1500)).toBe(1);
      expect(open()).toBe(1);
      expect(opened[0].driver!.master.totalCount).toBe(0);
      expect(cache.stats()).toMatchObject({ size: 1, reservedConnections: 0, connected: 0 });
      expect(cache.counters.connectionCloses.idle).toBe(1);
      (await unit(cache, 'a')).done();
      expect(cache.counters).toMatchObject({ creations: 1, reconnects: 1 });
      await cache.onApplicationShutdown();
    });

    it('evicts the least recently used DataSource past SILO_DATASOURCES_MAX, handing its connection back', async () => {
      const { cache, byName } = setup({ siloDataSourcesMax: 2, siloMaxConnections: 5, siloIdleMs: 60_000 }, { withPool: true });
      for (const t of ['a', 'b', 'a', 'c']) (await unit(cache, t)).done();
      await cache.evictIdle(); // waits for closes under way
      expect(byName('b')[0].destroyed).toBe(true);
      expect(byName('a')[0].destroyed).toBe(false);
      expect(cache.stats()).toMatchObject({ size: 2, reservedConnections: 2 });
      expect(cache.counters.evictions).toEqual({ lru: 1, explicit: 0 });
      await cache.onApplicationShutdown();
    });

    it('keeps a DataSource used within SILO_RESIDENCY_MS past the bound until it leaves the window', async () => {
      const { cache, byName } = setup({ siloDataSourcesMax: 1, siloMaxConnections: 5, siloResidencyMs: 10_000 }, { withPool: true });
      (await unit(cache, 'a')).done();
      (await unit(cache, 'b')).done();
      expect(cache.stats().size).toBe(2);
      expect(byName('a')[0].destroyed).toBe(false);
      await cache.evictIdle(Date.now() + 10_000);
      expect(byName('a')[0].destroyed).toBe(true);
      expect(byName('b')[0].destroyed).toBe(false);
      await cache.onApplicationShutdown();
    });

    it('closes a placement’s DataSource on request (a move, offboarding) once its units are done', async () => {
      const { cache, byName } = setup({}, { withPool: true });
      const lease = await cache.acquire('tenant-a@h:5432/a', addr('a'));
      const a = { done: () => lease.release() };
      const evicted = cache.evictTenant('tenant-a');
      await new Promise((r) => setTimeout(r, 10));
      expect(byName('a')[0].destroyed).toBe(false);
      a.done();
      await evicted;
      expect(byName('a')[0].destroyed).toBe(true);
      expect(cache.stats()).toMatchObject({ size: 0, reservedConnections: 0 });
      expect(cache.counters.evictions.explicit).toBe(1);
      await cache.onApplicationShutdown();
    });
  });

  describe('elastic pools', () => {
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

    it('gives back unused slots on release, and the others as connections close, down to none', async () => {
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
      // The DataSource stays without a connection (an error closed it): it holds no slot.
      expect(cache.stats()).toMatchObject({ size: 1, reservedConnections: 0 });
      expect(pool.options.max).toBe(0);
      await cache.onApplicationShutdown();
      expect(cache.stats().reservedConnections).toBe(0);
    });

    it('never closes another tenant’s connection to let a busy one grow: growth takes only free slots', async () => {
      const { cache } = setup({ siloPoolMax: 3, siloMaxConnections: 2 }, { withPool: true });
      (await unit(cache, 'idle')).done();
      const b1 = await cache.acquire('b', addr('b'));
      const b2 = await cache.acquire('b', addr('b'));
      await new Promise((r) => setTimeout(r, 10));
      expect(poolOf(b1).options.max).toBe(1); // b shares its one connection...
      expect(cache.counters.connectionCloses.room).toBe(0); // ...and idle keeps its own
      [b1, b2].forEach((l) => l.release());
      await cache.onApplicationShutdown();
    });
  });

  describe('hysteresis (SILO_CONNECTION_HOLD_MS)', () => {
    it('makes a newcomer wait instead of closing a connection used within its hold window', async () => {
      const { cache, byName } = setup({ siloPoolMax: 1, siloMaxConnections: 2, siloConnectionHoldMs: 150, siloAcquireTimeoutMs: 1000 }, { withPool: true });
      (await unit(cache, 'a')).done();
      (await unit(cache, 'b')).done();
      const started = Date.now();
      const c = await unit(cache, 'c');
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      // The least recently used, once its window passed; both DataSources stay.
      expect(poolOf({ dataSource: byName('a')[0] as unknown as DataSource }).totalCount).toBe(0);
      expect(poolOf({ dataSource: byName('b')[0] as unknown as DataSource }).totalCount).toBe(1);
      expect(cache.counters).toMatchObject({ creations: 3, waits: 1, waitTimeouts: 0, connectionCloses: { room: 1 }, evictions: { lru: 0, explicit: 0 } });
      c.done();
      await cache.onApplicationShutdown();
    });

    it('answers SiloCapacityError when no connection leaves its hold window before the acquire timeout', async () => {
      const { cache, opened } = setup({ siloPoolMax: 1, siloMaxConnections: 1, siloConnectionHoldMs: 10_000, siloAcquireTimeoutMs: 100 }, { withPool: true });
      (await unit(cache, 'a')).done();
      await expect(cache.acquire('b', addr('b'))).rejects.toBeInstanceOf(SiloCapacityError);
      expect(opened.map((d) => d.driver!.master.totalCount)).toEqual([1]);
      expect(cache.counters).toMatchObject({ creations: 1, waits: 1, waitTimeouts: 1 });
      await cache.onApplicationShutdown();
    });

    it('creates each DataSource once and closes no connection under round-robin traffic when the tenants fit the budget', async () => {
      const { cache, opened } = setup({ siloPoolMax: 3, siloMaxConnections: 8, siloConnectionHoldMs: 1000 }, { withPool: true });
      const tenants = Array.from({ length: 8 }, (_, i) => `t${i}`);
      for (let round = 0; round < 20; round++) {
        // Two units at once per tenant: pools grow when there is room, and never at another's expense.
        await Promise.all(tenants.map(async (t) => {
          const [x, y] = await Promise.all([cache.acquire(t, addr(t)), cache.acquire(t, addr(t))]);
          x.release();
          y.release();
        }));
      }
      expect(opened).toHaveLength(8);
      expect(cache.counters).toMatchObject({ evictions: { lru: 0, explicit: 0 }, connectionCloses: { room: 0, idle: 0 }, reconnects: 0 });
      await cache.onApplicationShutdown();
    });
  });
});
