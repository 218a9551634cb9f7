import type { StrataConfig } from '#strata/common';
import { globLiteral, unlinkMatching, type RedisClient } from '#strata/cache';
import { rateLimitKeyPrefix } from './request.rate-limits';

/**
 * Every shared rate-limit bucket of one tenant in Redis — its own (`…:tenant:<db>:<id>`) and its
 * users' (`…:user:<db>:<id>:<user>`) — for offboarding, which must leave nothing keyed by the tenant.
 * A function over the shared client, not a method of RequestRateLimits, so that the processes that
 * offboard without serving requests (the tenants CLI) purge them too. Returns how many keys went.
 */
export async function purgeTenantBuckets(redis: NonNullable<RedisClient>, config: StrataConfig, tenantId: string): Promise<number> {
  const own = await redis.unlink(`${rateLimitKeyPrefix(config, 'tenant')}:${tenantId}`);
  return own + (await unlinkMatching(redis, `${globLiteral(`${rateLimitKeyPrefix(config, 'user')}:${tenantId}:`)}*`));
}
