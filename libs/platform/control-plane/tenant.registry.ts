import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { MembershipEntity, PoolEntity, TenantEntity, type MembershipRole } from './control-plane.entities';

export const CONTROL_DATA_SOURCE = Symbol('CONTROL_DATA_SOURCE');

type Found<T> = { value: T | null };

/** Most answers kept (tenants by slug and id, pools, memberships): an LRU, so memory is bounded at any fleet size. */
export const REGISTRY_CACHE_MAX = 50_000;
/** The TTL of answers cached while changes cannot reach this instance (pub/sub down): REGISTRY_CACHE_TTL_MS, at most this. */
export const REGISTRY_FALLBACK_TTL_MS = 5000;

/**
 * Cached reads of the control plane. A request resolves tenant, membership and pool from here, so
 * the control database is hit once per TTL per key, not once per request. Negative answers are
 * cached too (an unknown slug must not become a cheap way to load the control plane).
 *
 * With Redis pub/sub invalidation (libs/platform/cache) the TTL only bounds a missed message, so it
 * can be long (10 minutes by default with REDIS_URL): 5 s made 24.7 % of requests registry misses at
 * 2,360 tenants, and 60 s still 56 % at 10,000 (issue 15). While the subscriber is down the invalidation drops everything and
 * calls `expireSooner()`, so answers cached during the outage live REGISTRY_FALLBACK_TTL_MS at most.
 */
@Injectable()
export class TenantRegistry {
  private readonly cache: LRUCache<string, Found<unknown>>;
  private readonly inflight = new Map<string, Promise<Found<unknown>>>();
  private readonly ttlMs: number;
  private fallbackTtl: { ttl: number } | undefined;
  private clears = 0;

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    @Inject(STRATA_CONFIG) config: StrataConfig,
  ) {
    this.ttlMs = Math.max(config.registryCacheTtlMs, 1);
    this.cache = new LRUCache({ max: REGISTRY_CACHE_MAX, ttl: this.ttlMs });
  }

  findBySlug(slug: string): Promise<TenantEntity | null> {
    return this.cached(`slug:${slug}`, () => this.db.getRepository(TenantEntity).findOneBy({ slug }));
  }

  findById(id: string): Promise<TenantEntity | null> {
    return this.cached(`id:${id}`, () => this.db.getRepository(TenantEntity).findOneBy({ id }));
  }

  /**
   * The record of a tenant a request or job already resolved: by slug first, the key the tenant
   * guard resolved it with (the entry it just cached, so no query), by id when the slug now names
   * another tenant.
   */
  async recordOf(tenant: { id: string; slug: string }): Promise<TenantEntity | null> {
    const found = await this.findBySlug(tenant.slug);
    return found?.id === tenant.id ? found : this.findById(tenant.id);
  }

  /**
   * The tenant's record if this instance has it cached now (it served the tenant within the TTL),
   * without loading it or touching the cache's order.
   */
  cachedRecordOf(tenant: { id: string; slug: string }): TenantEntity | null {
    for (const key of [`slug:${tenant.slug}`, `id:${tenant.id}`]) {
      const found = (this.cache.peek(key) as Found<TenantEntity> | undefined)?.value;
      if (found?.id === tenant.id) return found;
    }
    return null;
  }

  findPool(id: string): Promise<PoolEntity | null> {
    return this.cached(`pool:${id}`, () => this.db.getRepository(PoolEntity).findOneBy({ id }));
  }

  async membershipRole(userId: string, tenantId: string): Promise<MembershipRole | null> {
    const m = await this.cached(`member:${userId}:${tenantId}`, () =>
      this.db.getRepository(MembershipEntity).findOneBy({ userId, tenantId }),
    );
    return m?.role ?? null;
  }

  /** Drops every cached answer about a tenant (its record under both keys and its memberships). */
  invalidateTenant(tenant: { id: string; slug: string }): void {
    this.forget(`slug:${tenant.slug}`);
    this.forget(`id:${tenant.id}`);
    for (const key of this.cache.keys()) if (key.startsWith('member:') && key.endsWith(`:${tenant.id}`)) this.cache.delete(key);
    for (const key of this.inflight.keys()) if (key.startsWith('member:') && key.endsWith(`:${tenant.id}`)) this.inflight.delete(key);
  }

  /**
   * Drops only the tenant's record (both keys), not its memberships: for re-reading a placement
   * that a unit of work found stale, as often as every few ms during a move's cutover, without
   * walking the membership cache each time.
   */
  forgetTenantRecord(tenant: { id: string; slug: string }): void {
    this.forget(`slug:${tenant.slug}`);
    this.forget(`id:${tenant.id}`);
  }

  /** Drops a pool's cached record (its schema version is re-read by the next lookup). */
  forgetPool(id: string): void {
    this.forget(`pool:${id}`);
  }

  invalidateMembership(userId: string, tenantId: string): void {
    this.forget(`member:${userId}:${tenantId}`);
  }

  /**
   * Changes published by other instances cannot reach this one (its subscriber is down) or can
   * again: while `on`, answers cached from now on expire after REGISTRY_FALLBACK_TTL_MS (or the
   * TTL, if shorter) instead of the full TTL.
   */
  expireSooner(on: boolean): void {
    this.fallbackTtl = on ? { ttl: Math.min(this.ttlMs, REGISTRY_FALLBACK_TTL_MS) } : undefined;
  }

  /** The TTL an answer cached now gets (for tests and readiness). */
  get currentTtlMs(): number {
    return this.fallbackTtl?.ttl ?? this.ttlMs;
  }

  invalidateAll(): void {
    this.cache.clear();
    this.inflight.clear();
    this.clears++;
  }

  /**
   * Counts invalidateAll() calls: caches kept beside the registry (the plans lib's catalogue) compare
   * it with the value they loaded under, so a change published to all instances reaches them too.
   */
  get generation(): number {
    return this.clears;
  }

  /**
   * Dropping the in-flight load too matters: a query that started before the change would
   * otherwise store its stale answer after the invalidation, for a whole TTL.
   */
  private forget(key: string): void {
    this.cache.delete(key);
    this.inflight.delete(key);
  }

  private async cached<T>(key: string, load: () => Promise<T | null>): Promise<T | null> {
    const hit = this.cache.get(key) as Found<T> | undefined;
    if (hit) return hit.value;
    // Concurrent misses for one key share one query.
    let pending = this.inflight.get(key) as Promise<Found<T>> | undefined;
    if (!pending) {
      pending = load().then((value) => ({ value }));
      this.inflight.set(key, pending);
      pending.then(
        (found) => {
          if (this.inflight.get(key) === pending) {
            this.cache.set(key, found, this.fallbackTtl);
            this.inflight.delete(key);
          }
        },
        () => this.inflight.delete(key),
      );
    }
    return (await pending).value;
  }
}
