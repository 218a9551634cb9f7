import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { ApiException, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { ServerAddress } from './tenant-data-source.factory';
import { createTenantDataSource } from './tenant-data-source.factory';

/** Every silo connection slot is busy: a 503 the client may retry, not a 500. */
export class SiloCapacityError extends ApiException {
  constructor(cap: number) {
    super(503, 'tenant_capacity', `all ${cap} silo connections are in use; retry shortly`, { 'Retry-After': '1' });
    this.name = 'SiloCapacityError';
  }
}

interface Entry {
  tenantId: string;
  ready: Promise<DataSource>;
  ds?: DataSource;
  refs: number;
  lastUsed: number;
}

export interface SiloLease {
  dataSource: DataSource;
  release(): void;
}

export type SiloDataSourceOpener = (address: ServerAddress, max: number) => Promise<DataSource>;
export const SILO_DATA_SOURCE_OPENER = Symbol('SILO_DATA_SOURCE_OPENER');

/**
 * One DataSource per silo tenant, created on first use, in a bounded LRU with idle eviction and a
 * global connection budget: every DataSource reserves `siloPoolMax` slots out of
 * `siloMaxConnections` before it may connect, so no number of silo tenants can exceed the budget.
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

  async acquire(tenantId: string, address: ServerAddress): Promise<SiloLease> {
    if (this.closed) throw new Error('silo cache is shut down');
    let entry = this.entries.get(tenantId);
    if (entry) {
      this.entries.delete(tenantId);
      this.entries.set(tenantId, entry);
    } else {
      // Registered before the first await: concurrent first requests share one DataSource.
      entry = { tenantId, refs: 0, lastUsed: Date.now(), ready: undefined as unknown as Promise<DataSource> };
      const created = entry;
      entry.ready = this.create(created, address);
      this.entries.set(tenantId, entry);
    }
    entry.refs++;
    try {
      const dataSource = await entry.ready;
      const held = entry;
      let released = false;
      return {
        dataSource,
        release: () => {
          if (released) return;
          released = true;
          held.refs--;
          held.lastUsed = Date.now();
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

  /** Closes a tenant's DataSource now (offboarding, moves); waits for its users to finish. */
  async evict(tenantId: string): Promise<void> {
    const entry = this.entries.get(tenantId);
    if (!entry) return;
    while (entry.refs > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.entries.get(tenantId) === entry) await this.close(entry);
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
    let reserved = false;
    try {
      await this.reserveSlot();
      reserved = true;
      const ds = await this.open(address, this.config.siloPoolMax);
      if (this.closed) {
        // Shut down while connecting: nobody would ever close it.
        await ds.destroy().catch(() => undefined);
        throw new Error('silo cache is shut down');
      }
      entry.ds = ds;
      return ds;
    } catch (err) {
      // Also when no slot was granted (SiloCapacityError): a failed entry must not stay cached,
      // or every later request of the tenant would get its rejected promise without retrying.
      if (reserved) this.reserved -= this.config.siloPoolMax;
      if (this.entries.get(entry.tenantId) === entry) this.entries.delete(entry.tenantId);
      this.wake();
      throw err;
    }
  }

  private async reserveSlot(): Promise<void> {
    const need = this.config.siloPoolMax;
    const deadline = Date.now() + this.config.siloAcquireTimeoutMs;
    while (this.reserved + need > this.config.siloMaxConnections) {
      const victim = [...this.entries.values()].find((e) => e.ds && e.refs === 0);
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
    if (this.entries.get(entry.tenantId) !== entry || !entry.ds) return;
    this.entries.delete(entry.tenantId);
    try {
      const closed = whenConnectionsClosed(entry.ds);
      await entry.ds.destroy();
      await closed;
    } catch (err) {
      this.logger.warn(`closing silo DataSource failed: ${(err as Error).message}`);
    } finally {
      // Slots return only once the connections are closed, so the budget is never overshot.
      this.reserved -= this.config.siloPoolMax;
      this.wake();
    }
  }

  private wake(): void {
    const waiting = this.waiters;
    this.waiters = [];
    for (const w of waiting) w();
  }
}

interface PgPoolEvents {
  totalCount: number;
  on(event: 'remove', listener: () => void): unknown;
}

/**
 * Resolves once every connection the DataSource's pg pool holds now has closed its socket. pg-pool's
 * end() calls back as soon as it has asked its clients to end, while their backends can still be
 * alive on the server for a moment; handing their slots on before that overshoots the budget.
 * Capped, so a client that never reports back cannot wedge eviction.
 */
function whenConnectionsClosed(ds: DataSource, capMs = 2000): Promise<void> {
  const pool = (ds.driver as unknown as { master?: PgPoolEvents } | undefined)?.master;
  if (!pool || typeof pool.on !== 'function' || !pool.totalCount) return Promise.resolve();
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
      { max, idleTimeoutMillis: config.siloIdleMs },
      'strata-silo',
    );
}
