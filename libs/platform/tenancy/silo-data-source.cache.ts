import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { ServerAddress } from './tenant-data-source.factory';
import { createTenantDataSource } from './tenant-data-source.factory';
import { SiloCapacityError } from './tenancy.errors';


/** The parts of pg-pool the cache steers; `options.max` is read by pg-pool on every checkout. */
interface PgPoolHandle {
  options: { max: number };
  totalCount: number;
  on(event: 'remove', listener: () => void): unknown;
}

interface Entry {
  /** The placement: `<tenant id>@<host>:<port>/<database>` (SiloTierDriver), so a moved tenant never gets its old database. */
  key: string;
  ready: Promise<DataSource>;
  ds?: DataSource;
  /** The DataSource's pg pool, when it has one (fakes in unit tests may not). */
  pool?: PgPoolHandle;
  refs: number;
  lastUsed: number;
  /** Budget slots this tenant holds: ≥ 1, ≥ its open connections, ≤ SILO_POOL_MAX. */
  slots: number;
}

export interface SiloLease {
  dataSource: DataSource;
  release(): void;
}

export type SiloDataSourceOpener = (address: ServerAddress, max: number) => Promise<DataSource>;
export const SILO_DATA_SOURCE_OPENER = Symbol('SILO_DATA_SOURCE_OPENER');

/**
 * One DataSource per silo tenant, created on first use, in a bounded LRU with idle eviction and a
 * global connection budget of `siloMaxConnections` slots, one per connection, so no number of silo
 * tenants can exceed it. The pools are elastic: a DataSource starts with one slot (waiting for it,
 * or evicting the least recently used idle DataSource) and grows by a slot whenever it has more
 * units in flight than slots, up to `siloPoolMax`, while the budget has room; its pg pool may
 * never open more connections than its slots (pg-pool reads `options.max` on every checkout).
 * Slots go back only when connections are gone: unused ones on release, the rest when pg-pool
 * closes idle connections (`siloIdleMs`) or the DataSource is evicted. So an idle silo tenant
 * costs one slot, a busy one gets the pool a shared server has, and the cap always holds.
 *
 * Hand-written rather than lru-cache: eviction must skip entries that requests are still using
 * (reference counts), wait for a slot instead of overshooting, and close a DataSource before its
 * slots are handed on — lru-cache evicts synchronously on insert and cannot wait.
 */
@Injectable()
export class SiloDataSourceCache implements OnApplicationShutdown {
  private readonly logger = new Logger(SiloDataSourceCache.name);
  // Map iteration order is the LRU order: an entry is moved to the end on every use.
  private readonly entries = new Map<string, Entry>();
  private reserved = 0;
  private waiters: Array<() => void> = [];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(SILO_DATA_SOURCE_OPENER) private readonly open: SiloDataSourceOpener,
  ) {
    this.sweeper = setInterval(() => void this.evictIdle(), Math.max(100, Math.floor(config.siloIdleMs / 2)));
    this.sweeper.unref();
  }

  async acquire(key: string, address: ServerAddress): Promise<SiloLease> {
    if (this.closed) throw new Error('silo cache is shut down');
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      // Registered before the first await: concurrent first requests share one DataSource.
      entry = { key, refs: 0, slots: 0, lastUsed: Date.now(), ready: undefined as unknown as Promise<DataSource> };
      const created = entry;
      entry.ready = this.create(created, address);
      this.entries.set(key, entry);
    }
    entry.refs++;
    try {
      const dataSource = await entry.ready;
      const held = entry;
      this.grow(held);
      let released = false;
      return {
        dataSource,
        release: () => {
          if (released) return;
          released = true;
          held.refs--;
          held.lastUsed = Date.now();
          this.trim(held);
          if (held.refs === 0) this.wake();
        },
      };
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }

  stats(): { size: number; reservedConnections: number; maxConnections: number; inUse: number } {
    let inUse = 0;
    for (const e of this.entries.values()) if (e.refs > 0) inUse++;
    return { size: this.entries.size, reservedConnections: this.reserved, maxConnections: this.config.siloMaxConnections, inUse };
  }

  /** Closes one placement's DataSource now; waits for its users to finish. */
  async evict(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    while (entry.refs > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.entries.get(key) === entry) await this.close(entry);
  }

  /** Closes every DataSource of a tenant whose placement is not `keep` (after a move, on offboarding). */
  async evictTenant(tenantId: string, keep?: string): Promise<void> {
    const stale = [...this.entries.keys()].filter((k) => k.startsWith(`${tenantId}@`) && k !== keep);
    await Promise.all(stale.map((k) => this.evict(k)));
  }

  async evictIdle(now = Date.now()): Promise<number> {
    const idle = [...this.entries.values()].filter((e) => e.ds && e.refs === 0 && now - e.lastUsed >= this.config.siloIdleMs);
    await Promise.all(idle.map((e) => this.close(e)));
    return idle.length;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await Promise.all([...this.entries.values()].map((e) => this.close(e)));
    this.wake();
  }

  private async create(entry: Entry, address: ServerAddress): Promise<DataSource> {
    try {
      await this.reserveSlot();
      entry.slots = 1;
      // Opened with one connection allowed; grow() raises the pool's max as slots are granted.
      const ds = await this.open(address, entry.slots);
      if (this.closed) {
        // Shut down while connecting: nobody would ever close it.
        await ds.destroy().catch(() => undefined);
        throw new Error('silo cache is shut down');
      }
      entry.ds = ds;
      entry.pool = pgPoolOf(ds);
      // A connection pg-pool closed (idle timeout, error) gives its slot back.
      entry.pool?.on('remove', () => this.trim(entry));
      return ds;
    } catch (err) {
      // Also when no slot was granted (SiloCapacityError): a failed entry must not stay cached,
      // or every later request of the tenant would get its rejected promise without retrying.
      this.reserved -= entry.slots;
      entry.slots = 0;
      if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
      this.wake();
      throw err;
    }
  }

  /**
   * More units in flight than slots: take free slots, one per extra unit, up to SILO_POOL_MAX.
   * Never waits — without a free slot the unit queues for one of the tenant's own connections —
   * but starts closing an idle DataSource, so the next unit finds room.
   */
  private grow(entry: Entry): void {
    const pool = entry.pool;
    if (!pool || this.entries.get(entry.key) !== entry) return;
    const { siloPoolMax, siloMaxConnections } = this.config;
    while (entry.refs > entry.slots && entry.slots < siloPoolMax && this.reserved < siloMaxConnections) {
      entry.slots++;
      this.reserved++;
    }
    pool.options.max = entry.slots;
    if (entry.refs > entry.slots && entry.slots < siloPoolMax) {
      const victim = this.lruIdle(entry);
      if (victim) void this.close(victim);
    }
  }

  /** Gives back slots the tenant holds beyond max(1, open connections, units in flight). */
  private trim(entry: Entry): void {
    const pool = entry.pool;
    if (!pool || this.entries.get(entry.key) !== entry) return; // close() accounts for evicted entries
    const keep = Math.max(1, pool.totalCount, entry.refs);
    if (keep >= entry.slots) return;
    this.reserved -= entry.slots - keep;
    entry.slots = keep;
    pool.options.max = keep;
    this.wake();
  }

  private lruIdle(except?: Entry): Entry | undefined {
    for (const e of this.entries.values()) if (e !== except && e.ds && e.refs === 0) return e;
    return undefined;
  }

  private async reserveSlot(): Promise<void> {
    const need = 1;
    const deadline = Date.now() + this.config.siloAcquireTimeoutMs;
    while (this.reserved + need > this.config.siloMaxConnections) {
      const victim = this.lruIdle();
      if (victim) {
        await this.close(victim);
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new SiloCapacityError(this.config.siloMaxConnections);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    this.reserved += need;
  }

  private async close(entry: Entry): Promise<void> {
    if (this.entries.get(entry.key) !== entry || !entry.ds) return;
    this.entries.delete(entry.key);
    try {
      const closed = whenConnectionsClosed(entry.ds);
      await entry.ds.destroy();
      await closed;
    } catch (err) {
      this.logger.warn(`closing silo DataSource failed: ${(err as Error).message}`);
    } finally {
      // Slots return only once the connections are closed, so the budget is never overshot.
      this.reserved -= entry.slots;
      entry.slots = 0;
      this.wake();
    }
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
  }
}

function pgPoolOf(ds: DataSource): PgPoolHandle | undefined {
  const pool = (ds.driver as unknown as { master?: PgPoolHandle } | undefined)?.master;
  return pool && typeof pool.on === 'function' && pool.options ? pool : undefined;
}

/**
 * Resolves once every connection the DataSource's pg pool holds now has closed its socket. pg-pool's
 * end() calls back as soon as it has asked its clients to end, while their backends can still be
 * alive on the server for a moment; handing their slots on before that overshoots the budget.
 * Capped, so a client that never reports back cannot wedge eviction.
 */
function whenConnectionsClosed(ds: DataSource, capMs = 2000): Promise<void> {
  const pool = pgPoolOf(ds);
  if (!pool || !pool.totalCount) return Promise.resolve();
  let left = pool.totalCount;
  return new Promise<void>((resolve) => {
    const cap = setTimeout(resolve, capMs);
    cap.unref();
    pool.on('remove', () => {
      if (--left > 0) return;
      clearTimeout(cap);
      resolve();
    });
  });
}

/** The production opener: a DataSource on the silo server's tenant database, as the app role. */
export function siloOpenerFactory(config: StrataConfig): SiloDataSourceOpener {
  return (address, max) =>
    createTenantDataSource(
      address,
      { user: config.appDbUser, password: config.appDbPassword },
      { max, idleTimeoutMillis: config.siloIdleMs, acquireTimeoutMillis: config.dataAcquireTimeoutMs },
      'strata-silo',
      { tenantSetupPrepared: config.tenantSetupPrepared, placementFence: config.placementFence },
    );
}
