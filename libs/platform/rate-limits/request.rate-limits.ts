import { Inject, Injectable, Optional, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { REDIS_CLIENT, type RedisClient } from '#strata/cache';
import { PlanCatalog } from '#strata/plans';
import { rateLimitHeaders, refusalHeaders, type ScopedBucket } from './rate-limit.headers';
import { RateLimitsErrorCode, rateLimitsError } from './rate-limits.errors';
import { SharedBuckets, type SharedBucket } from './shared.buckets';
import { hasToken, type BucketLimit } from './token.bucket';

/** Redis keys of one deployment: per control plane (its database name), as the signup limiter's. */
export function rateLimitKeyPrefix(config: StrataConfig, what: string): string {
  return `strata:rl:${what}:${decodeURIComponent(new URL(config.databaseUrl).pathname.slice(1))}`;
}

/** A bucket of `rate` per second holding `burstSeconds` of it, and never less than one request. */
function limitOf(rate: number, burstSeconds: number): BucketLimit {
  return { rate, capacity: Math.max(1, rate * burstSeconds) };
}

export interface RateLimitedCaller {
  /** The placement the guard bound: its `plan` spares a registry lookup per request. */
  tenant: { id: string; slug: string; plan?: string };
  userId: string;
}

/**
 * The limits of an authenticated tenant request: the tenant's bucket (its plan's
 * `rateLimitPerSecond`; a plan without one is unlimited) and the user's (RATE_LIMIT_USER_PER_SECOND
 * in that tenant), each holding RATE_LIMIT_BURST_SECONDS of its rate. A request needs a token from
 * both and takes from both; a refused request takes none.
 */
@Injectable()
export class RequestRateLimits implements OnModuleInit, OnApplicationShutdown {
  private readonly tenants: SharedBuckets;
  private readonly users: SharedBuckets;
  private readonly userLimit: BucketLimit;

  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    private readonly plans: PlanCatalog,
    @Optional() @Inject(REDIS_CLIENT) redis: RedisClient = null,
  ) {
    const common = { redis, syncMs: config.rateLimitSyncMs, maxKeys: config.rateLimitMaxKeys };
    this.tenants = new SharedBuckets({ ...common, keyPrefix: rateLimitKeyPrefix(config, 'tenant') });
    this.users = new SharedBuckets({ ...common, keyPrefix: rateLimitKeyPrefix(config, 'user') });
    this.userLimit = limitOf(config.rateLimitUserPerSecond, config.rateLimitBurstSeconds);
  }

  onModuleInit(): void {
    if (!this.config.rateLimitsEnabled) return;
    this.tenants.start();
    this.users.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await Promise.all([this.tenants.stop(), this.users.stop()]);
  }

  /** Local buckets held now (tenants, users): bounded by RATE_LIMIT_MAX_KEYS each. */
  get sizes(): { tenants: number; users: number } {
    return { tenants: this.tenants.size, users: this.users.size };
  }

  /**
   * Admits one request of `caller` and answers its `RateLimit-*` headers, or throws 429
   * rate_limited. Synchronous in steady state (the plan cached, both buckets synced recently): a
   * Promise only when something must be loaded or synced first, so the common request pays no
   * microtask hops for its admission.
   */
  admit(caller: RateLimitedCaller): Record<string, string> | Promise<Record<string, string>> {
    const limit = this.cachedTenantLimit(caller.tenant);
    if (limit !== undefined) {
      const user = this.users.bucket(`${caller.tenant.id}:${caller.userId}`, this.userLimit);
      const tenant = limit ? this.tenants.bucket(caller.tenant.id, limit) : null;
      if (!(user instanceof Promise) && !(tenant instanceof Promise)) return this.decide(user, tenant);
    }
    return this.admitAsync(caller);
  }

  private async admitAsync(caller: RateLimitedCaller): Promise<Record<string, string>> {
    const limit = await this.tenantLimit(caller.tenant);
    // Both buckets' syncs (a first request of each key) in flight at once.
    const [user, tenant] = await Promise.all([
      this.users.bucket(`${caller.tenant.id}:${caller.userId}`, this.userLimit),
      limit ? this.tenants.bucket(caller.tenant.id, limit) : null,
    ]);
    return this.decide(user, tenant);
  }

  private decide(user: SharedBucket, tenant: SharedBucket | null): Record<string, string> {
    const buckets: ScopedBucket[] = [{ scope: 'user', bucket: user }];
    if (tenant) buckets.push({ scope: 'tenant', bucket: tenant });
    const now = performance.now();
    const refusedBy = buckets.find((b) => !hasToken(b.bucket, now));
    if (refusedBy) {
      const headers = refusalHeaders(buckets, refusedBy);
      const whose = refusedBy.scope === 'tenant' ? "this tenant's plan allows" : 'one user may make';
      throw rateLimitsError(RateLimitsErrorCode.rateLimited, `rate limit reached: ${whose} ${refusedBy.bucket.rate} requests per second; retry in ${headers['Retry-After']} s`, headers);
    }
    this.users.take(user);
    if (tenant) this.tenants.take(tenant);
    return rateLimitHeaders(buckets);
  }

  /** The tenant's limit from the placement's plan and the cached catalogue (null: unlimited); undefined when that needs a lookup. */
  private cachedTenantLimit(tenant: RateLimitedCaller['tenant']): BucketLimit | null | undefined {
    if (tenant.plan === undefined) return undefined;
    const plan = this.plans.peek(tenant.plan);
    if (plan === undefined) return undefined;
    return this.limitOfRate(plan.rateLimitPerSecond);
  }

  private async tenantLimit(tenant: RateLimitedCaller['tenant']): Promise<BucketLimit | null> {
    return this.limitOfRate((await this.plans.planOfTenant(tenant))?.rateLimitPerSecond);
  }

  private limitOfRate(rate: number | null | undefined): BucketLimit | null {
    return rate ? limitOf(rate, this.config.rateLimitBurstSeconds) : null;
  }
}
