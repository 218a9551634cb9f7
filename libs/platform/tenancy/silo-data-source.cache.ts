import { Inject, Injectable, Logger, Optional, type OnApplicationShutdown } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { ServerAddress } from './tenant-data-source.factory';
import { createTenantDataSource, dataSourceDriverOptions } from './tenant-data-source.factory';
import { SiloCapacityError } from './tenancy.errors';
import { ServerConnectionBudget, serverOf } from './server-connection.budget';


/** The parts of pg-pool the cache steers; `options.max` is read by pg-pool on every checkout. */
interface PgPoolHandle {
  options: { max: number };
  totalCount: number;
  idleCount?: number;
  waitingCount?: number;
  connect?(): Promise<{ release(destroy?: boolean): void }>;
  on(event: 'remove', listener: (client: unknown) => void): unknown;
  removeListener?(event: 'remove', listener: (client: unknown) => void): unknown;
}

interface Entry {
  /** The placement: `<tenant id>@<host>:<port>/<database>` (SiloTierDriver), so a moved tenant never gets its old database. */
  key: string;
  /** `host:port` of its database: the unit of the per-server connection budget. */
  server: string;
  ready: Promise<DataSource>;
  ds?: DataSource;
  /** The DataSource's pg pool, when it has one (fakes in unit tests may not). */
  pool?: PgPoolHandle;
  refs: number;
  lastUsed: number;
  /**
   * Budget slots this tenant holds: ≥ its open connections, ≤ SILO_POOL_MAX; 0 when the
   * DataSource is kept without a connection (it takes one again before its next unit runs).
   */
  slots: number;
  /** A kept tenant's units waiting for its first slot share this wait. */
  admitting?: Promise<void>;
  /** Idle connections being closed for room right now: not counted as idle again. */
  closingConnections: number;
}

export interface SiloLease {
  dataSource: DataSource;
  release(): void;
}

export type SiloDataSourceOpener = (address: ServerAddress, max: number) => Promise<DataSource>;

/** What the cache did since it started: read by metrics (counters) and tests. */
export interface SiloCacheCounters {
  /** DataSources created (each ~120 ms of TypeORM initialisation and a connection). */
  creations: number;
  /** DataSources closed, by why: past SILO_DATASOURCES_MAX (lru), or asked for (a move, offboarding). */
  evictions: { lru: number; explicit: number };
  /** Idle connections closed while their DataSource stays: room for another tenant, or idle past SILO_IDLE_MS. */
  connectionCloses: { room: number; idle: number };
  /** Kept DataSources that had no connection and took a slot again (a new session, ~5 ms, instead of a creation). */
  reconnects: number;
  /** Tenants that found the silo budget full with no connection closable and waited; and those that gave up (503). */
  waits: number;
  waitTimeouts: number;
}
export const SILO_DATA_SOURCE_OPENER = Symbol('SILO_DATA_SOURCE_OPENER');

/**
 * One DataSource per silo tenant, created once and kept in an LRU of `siloDataSourcesMax`; what
 * the global budget of `siloMaxConnections` slots counts is connections, one slot each, so no
 * number of silo tenants can exceed it. A DataSource is cheap to keep (entity metadata and an
 * empty pg pool; see README "Silo residency" for the measured bytes) and ~120 ms to create, a
 * connection the other way round (~5 ms to open, a server backend to keep). So when the budget is
 * full the cache closes an idle connection of the least recently used tenant — never one in use —
 * and that tenant's DataSource stays: its next unit reconnects instead of rebuilding it. Before
 * (issue 15), every tenant beyond the budget evicted a whole DataSource: 60 silo tenants over 40
 * connections made ~11 creations/s and served 35 units/s.
 *
 * The pools are elastic: a tenant gets one slot before its first unit runs (waiting for it, or
 * closing another tenant's idle connection) and grows by a slot whenever it has more units in
 * flight than slots, up to `siloPoolMax`, while the budget has room — growth only takes free slots
 * and never closes another tenant's connection. Its pg pool may never open more connections than
 * its slots (pg-pool reads `options.max` on every checkout). Slots go back only when connections
 * are gone: unused ones on release, the rest when a connection closes (pg-pool's idle timeout for
 * spare ones, SILO_IDLE_MS or room for another tenant for the first, an error).
 *
 * Hysteresis: for room, an idle spare connection (beyond a tenant's first) goes before anyone's
 * only one, and a tenant's only connection goes only when it has been idle SILO_CONNECTION_HOLD_MS,
 * least recently used first; otherwise the newcomer waits. Past SILO_DATASOURCES_MAX, only a
 * DataSource idle for SILO_RESIDENCY_MS is evicted.
 *
 * Hand-written rather than lru-cache: eviction must skip entries that requests are still using
 * (reference counts), wait for a slot instead of overshooting, and close connections before their
 * slots are handed on — lru-cache evicts synchronously on insert and cannot wait.
 */
@Injectable()
export class SiloDataSourceCache implements OnApplicationShutdown {
  private readonly logger = new Logger(SiloDataSourceCache.name);
  // Map iteration order is the LRU order: an entry is moved to the end on every use.
  private readonly entries = new Map<string, Entry>();
  private reserved = 0;
  /** Tenants waiting in reserveSlot(): growth leaves freed slots to them. */
  private admissions = 0;
  /** Connections being closed for room: their slots are still reserved, and come back when they have closed. */
  private roomClosing = 0;
  /**
   * When a tenant's only connection was last closed for another tenant: more tenants want a
   * connection than the budget holds. While that is recent, the cache keeps a few slots free.
   * (A full budget alone is no sign of it: grown pools fill it, and their spare connections go first.)
   */
  private lastMiss = -Infinity;
  private waiters: Array<() => void> = [];
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;
  private readonly residencyMs: number;
  private readonly holdMs: number;
  private readonly maxDataSources: number;
  /** Closes under way: their entries are gone from the map, their slots not yet back. */
  private readonly closing = new Set<Promise<void>>();
  private readonly stopReclaiming: () => void;
  readonly counters: SiloCacheCounters = {
    creations: 0,
    evictions: { lru: 0, explicit: 0 },
    connectionCloses: { room: 0, idle: 0 },
    reconnects: 0,
    waits: 0,
    waitTimeouts: 0,
  };

  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(SILO_DATA_SOURCE_OPENER) private readonly open: SiloDataSourceOpener,
    @Optional() budget?: ServerConnectionBudget,
  ) {
    // Partial configs (unit tests of other parts) get the documented defaults.
    this.residencyMs = config.siloResidencyMs ?? 0;
    this.holdMs = config.siloConnectionHoldMs ?? 20;
    this.maxDataSources = config.siloDataSourcesMax ?? 1000;
    this.sweeper = setInterval(() => void this.evictIdle(), Math.max(100, Math.floor(config.siloIdleMs / 2)));
    this.sweeper.unref();
    // Someone waits for a connection to a server: an idle silo connection there makes room.
    this.stopReclaiming = budget?.onPressure((server) => this.closeOneIdle(Date.now(), server) !== undefined) ?? (() => undefined);
  }

  async acquire(key: string, address: ServerAddress): Promise<SiloLease> {
    if (this.closed) throw new Error('silo cache is shut down');
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    } else {
      // Registered before the first await: concurrent first requests share one DataSource.
      entry = { key, server: serverOf(address), refs: 0, slots: 0, closingConnections: 0, lastUsed: Date.now(), ready: undefined as unknown as Promise<DataSource> };
      const created = entry;
      entry.ready = this.create(created, address);
      this.entries.set(key, entry);
      this.trimDataSources();
    }
    entry.refs++;
    try {
      const dataSource = await entry.ready;
      const held = entry;
      // Kept without a connection: take a slot before the unit may open one.
      if (held.slots === 0) await this.admit(held);
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
      if (entry.refs === 0) this.wake();
      throw err;
    }
  }

  stats(): { size: number; reservedConnections: number; maxConnections: number; inUse: number; connected: number; maxDataSources: number } {
    let inUse = 0;
    let connected = 0;
    for (const e of this.entries.values()) {
      if (e.refs > 0) inUse++;
      if (e.slots > 0) connected++;
    }
    return { size: this.entries.size, reservedConnections: this.reserved, maxConnections: this.config.siloMaxConnections, inUse, connected, maxDataSources: this.maxDataSources };
  }

  /** Silo connections per server (`host:port`): open, idle, and units queued for a tenant's own connections. */
  serverStats(): Array<{ server: string; total: number; idle: number; waiting: number }> {
    const by = new Map<string, { server: string; total: number; idle: number; waiting: number }>();
    for (const e of this.entries.values()) {
      if (!e.pool) continue;
      let s = by.get(e.server);
      if (!s) by.set(e.server, (s = { server: e.server, total: 0, idle: 0, waiting: 0 }));
      s.total += e.pool.totalCount;
      s.idle += e.pool.idleCount ?? 0;
      s.waiting += e.pool.waitingCount ?? 0;
    }
    return [...by.values()];
  }

  /** Closes one placement's DataSource now; waits for its users to finish. */
  async evict(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) return;
    while (entry.refs > 0) await new Promise<void>((r) => this.waiters.push(r));
    if (this.entries.get(key) === entry) await this.close(entry, 'explicit');
  }

  /** Closes every DataSource of a tenant whose placement is not `keep` (after a move, on offboarding). */
  async evictTenant(tenantId: string, keep?: string): Promise<void> {
    const stale = [...this.entries.keys()].filter((k) => k.startsWith(`${tenantId}@`) && k !== keep);
    await Promise.all(stale.map((k) => this.evict(k)));
  }

  /**
   * Closes the connections of tenants idle past SILO_IDLE_MS (their DataSources stay), and
   * DataSources past SILO_DATASOURCES_MAX that have left their residency window; resolves once
   * those, and any closing already, have handed their slots back. Returns the tenants disconnected.
   */
  async evictIdle(now = Date.now()): Promise<number> {
    const idle = [...this.entries.values()].filter((e) => e.pool && e.refs === 0 && e.slots > 0 && now - e.lastUsed >= this.config.siloIdleMs);
    const disconnected = idle.map((e) => this.closeIdleConnections(e, 'idle'));
    this.trimDataSources(now);
    await Promise.all([...disconnected, ...this.closing]);
    return idle.length;
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    this.stopReclaiming();
    await Promise.all([...this.entries.values()].map((e) => this.close(e)));
    this.wake();
  }

  private async create(entry: Entry, address: ServerAddress): Promise<DataSource> {
    try {
      // The DataSource connects while it initialises: that connection needs its slot first.
      await this.reserveSlot(entry);
      entry.slots = 1;
      // Opened with one connection allowed; grow() raises the pool's max as slots are granted.
      const ds = await this.open(address, entry.slots);
      this.counters.creations++;
      if (this.closed) {
        // Shut down while connecting: nobody would ever close it.
        await ds.destroy().catch(() => undefined);
        throw new Error('silo cache is shut down');
      }
      entry.ds = ds;
      entry.pool = pgPoolOf(ds);
      // A connection pg-pool closed (idle timeout, error, closed for room) gives its slot back.
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

  /** A kept DataSource without a connection takes one slot again; its concurrent units share the wait. */
  private admit(entry: Entry): Promise<void> {
    entry.admitting ??= this.reserveSlot(entry)
      .then(() => {
        if (this.entries.get(entry.key) !== entry) {
          // Evicted while waiting (a move): the slot is not this entry's to keep.
          this.reserved--;
          this.wake();
          return;
        }
        entry.slots++;
        this.counters.reconnects++;
        if (entry.pool) entry.pool.options.max = entry.slots;
      })
      .finally(() => (entry.admitting = undefined));
    return entry.admitting;
  }

  /**
   * More units in flight than slots: take free slots, one per extra unit, up to SILO_POOL_MAX.
   * Never waits and never closes another tenant's connection — without a free slot the unit
   * queues for one of the tenant's own connections.
   */
  private grow(entry: Entry): void {
    const pool = entry.pool;
    if (!pool || this.entries.get(entry.key) !== entry || entry.slots === 0) return;
    const { siloPoolMax } = this.config;
    // Free slots only: none another tenant is waiting for, nor the headroom kept for them under pressure.
    const cap = this.underPressure(Date.now()) ? this.config.siloMaxConnections - siloHeadroom(this.config.siloMaxConnections) : this.config.siloMaxConnections;
    while (entry.refs > entry.slots && entry.slots < siloPoolMax && this.reserved < cap && this.admissions === 0) {
      entry.slots++;
      this.reserved++;
    }
    pool.options.max = entry.slots;
  }

  /**
   * Gives back slots the tenant holds beyond max(open connections, units in flight): a tenant
   * with neither holds none, and its pool may open none until admit() grants one.
   */
  private trim(entry: Entry): void {
    const pool = entry.pool;
    if (!pool || this.entries.get(entry.key) !== entry) return; // close() accounts for evicted entries
    const keep = Math.max(pool.totalCount, Math.min(entry.refs, entry.slots));
    if (keep >= entry.slots) return;
    this.reserved -= entry.slots - keep;
    entry.slots = keep;
    pool.options.max = keep;
    this.wake();
  }

  /** Past SILO_DATASOURCES_MAX: evicts the least recently used DataSources nobody used within SILO_RESIDENCY_MS. */
  private trimDataSources(now = Date.now()): void {
    let over = this.entries.size - this.maxDataSources;
    if (over <= 0) return;
    for (const e of this.entries.values()) {
      if (over <= 0) break;
      if (!e.ds || e.refs > 0 || now - e.lastUsed < this.residencyMs) continue;
      over--;
      void this.close(e, 'lru');
    }
  }

  /** Idle connections of a tenant nobody waits for, not already being closed. */
  private closable(e: Entry): number {
    const pool = e.pool;
    if (!pool?.connect || (pool.waitingCount ?? 0) > 0) return 0;
    return Math.max(0, (pool.idleCount ?? 0) - e.closingConnections);
  }

  /**
   * Closes one idle silo connection (on `server`, if given) to make room, whose DataSource stays:
   * a spare one (beyond a tenant's first) of any tenant first, else the only connection of the
   * least recently used tenant with no unit in flight, idle for SILO_CONNECTION_HOLD_MS. True when
   * it found one; its slot comes back when the connection has closed ('remove' → trim → wake).
   */
  private closeOneIdle(now: number, server?: string, except?: Entry): Promise<void> | undefined {
    let sole: Entry | undefined;
    for (const e of this.entries.values()) {
      if (e === except || (server !== undefined && e.server !== server) || this.closable(e) === 0) continue;
      if (e.pool!.totalCount - e.closingConnections > 1) return this.closeConnection(e, 'room');
      // Map order is the order of acquisition, lastUsed the last release: check each.
      if (!sole && e.refs === 0 && now - e.lastUsed >= this.holdMs) sole = e;
    }
    if (!sole) return undefined;
    this.lastMiss = now;
    return this.closeConnection(sole, 'room');
  }

  /**
   * Closes one idle connection through pg-pool's public API: check it out (pg-pool hands idle
   * connections first) and release it as broken. Resolves when it has closed.
   */
  private closeConnection(e: Entry, reason: keyof SiloCacheCounters['connectionCloses']): Promise<void> {
    const pool = e.pool!;
    e.closingConnections++;
    if (reason === 'room') this.roomClosing++;
    this.counters.connectionCloses[reason]++;
    let counted = true;
    // Uncounted in the same turn as trim() hands the slot back, so nobody sees the slot both back and still closing.
    const uncount = () => {
      if (!counted) return;
      counted = false;
      e.closingConnections--;
      if (reason === 'room') this.roomClosing--;
    };
    return new Promise<void>((resolve) => {
      pool.connect!().then(
        (client) => {
          // After pg-pool's own 'remove' listener (trim), so the slot is back when this resolves.
          const removed = (gone: unknown) => {
            if (gone !== client) return;
            pool.removeListener?.('remove', removed);
            uncount();
            resolve();
          };
          pool.on('remove', removed);
          client.release(true);
        },
        () => {
          uncount();
          resolve();
        },
      );
    }).finally(() => {
      // Whoever waits for room looks again, also when the tenant kept the slot (it came back to use it).
      this.wake();
    });
  }


  /** Closes every idle connection of a tenant nobody is using (SILO_IDLE_MS); its DataSource stays. */
  private async closeIdleConnections(e: Entry, reason: keyof SiloCacheCounters['connectionCloses']): Promise<void> {
    const closes: Array<Promise<void>> = [];
    for (let n = this.closable(e); n > 0; n--) closes.push(this.closeConnection(e, reason));
    await Promise.all(closes);
  }

  /** Milliseconds until the least recently used idle connection leaves its hold window. */
  private untilClosable(now: number): number {
    let soonest = Infinity;
    for (const e of this.entries.values()) if (e.refs === 0 && this.closable(e) > 0) soonest = Math.min(soonest, Math.max(1, this.holdMs - (now - e.lastUsed)));
    return soonest;
  }

  private async reserveSlot(entry: Entry): Promise<void> {
    const deadline = Date.now() + this.config.siloAcquireTimeoutMs;
    let waited = false;
    // One connection closed for this tenant at a time: a wake-up by someone else's release must not close a second.
    let closing: Promise<void> | undefined;
    this.admissions++;
    try {
      while (this.reserved + 1 > this.config.siloMaxConnections) {
        if (this.closed) throw new Error('silo cache is shut down');
        const now = Date.now();
        // A close already under way (headroom, or for another waiter) brings a slot: no second one for the same need.
        if (this.roomClosing < this.admissions) closing ??= this.closeOneIdle(now, undefined, entry)?.finally(() => (closing = undefined));
        const left = deadline - now;
        if (left <= 0) {
          this.counters.waitTimeouts++;
          throw new SiloCapacityError(this.config.siloMaxConnections);
        }
        if (!closing && this.roomClosing === 0 && !waited) {
          this.counters.waits++;
          waited = true;
        }
        // Woken by a release or a closed connection, or when the oldest idle connection leaves its hold window (no event marks that).
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Math.min(left, closing ? left : this.untilClosable(now)));
          this.waiters.push(() => {
            clearTimeout(t);
            resolve();
          });
        });
      }
      this.reserved++;
    } finally {
      this.admissions--;
    }
    this.keepHeadroom(entry);
  }

  /**
   * While tenants keep closing each other's only connections (within SILO_SPARE_IDLE_MS of the last time), keep
   * a few slots free by closing idle connections ahead of need, under the same rules as for a
   * waiting tenant: the next tenant without a connection then only pays its connect, not also the
   * close of another tenant's connection (a close and a connect take about as long: the server
   * ends one backend and starts another). Traffic that fits the budget never finds it full, so
   * this never closes a connection there.
   */
  private underPressure(now: number): boolean {
    return now - this.lastMiss <= (this.config.siloSpareIdleMs ?? 1000);
  }

  private keepHeadroom(except: Entry): void {
    const now = Date.now();
    if (!this.underPressure(now)) return;
    const target = this.config.siloMaxConnections - siloHeadroom(this.config.siloMaxConnections);
    while (this.reserved - this.roomClosing > target) {
      if (!this.closeOneIdle(now, undefined, except)) return;
    }
  }

  private close(entry: Entry, reason?: keyof SiloCacheCounters['evictions']): Promise<void> {
    if (this.entries.get(entry.key) !== entry || !entry.ds) return Promise.resolve();
    this.entries.delete(entry.key);
    if (reason) this.counters.evictions[reason]++;
    const closing = this.closeNow(entry, entry.ds).finally(() => this.closing.delete(closing));
    this.closing.add(closing);
    return closing;
  }

  private async closeNow(entry: Entry, ds: DataSource): Promise<void> {
    try {
      const closed = whenConnectionsClosed(ds);
      await ds.destroy();
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

/** Slots kept free under pressure: 10 % of the silo budget (none below 10, where a slot is too large a share to leave empty). */
export function siloHeadroom(max: number): number {
  return Math.floor(max / 10);
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
export function siloOpenerFactory(config: StrataConfig, budget?: ServerConnectionBudget): SiloDataSourceOpener {
  return (address, max) =>
    createTenantDataSource(
      address,
      { user: config.appDbUser, password: config.appDbPassword },
      {
        max,
        // pg-pool never idles out the first connection (evictIdle closes it after SILO_IDLE_MS, or
        // another tenant for room); spare ones go after SILO_SPARE_IDLE_MS, handing their slots back.
        min: 1,
        idleTimeoutMillis: Math.min(config.siloSpareIdleMs ?? config.siloIdleMs, config.siloIdleMs),
        acquireTimeoutMillis: config.dataAcquireTimeoutMs,
        budget: budget ? { budget, kind: 'silo' } : undefined,
      },
      'strata-silo',
      dataSourceDriverOptions(config),
    );
}
