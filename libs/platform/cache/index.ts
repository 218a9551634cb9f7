// Public API of libs/platform/cache. Other libs import only from here.
export {
  REDIS_CLIENT,
  SHARED_REDIS_CONNECTION,
  RedisNotConfiguredError,
  requireRedis,
  openRedisConnection,
  closeRedisClient,
  type RedisClient,
  type RedisConnectionSettings,
} from './redis.client';
// SCAN helpers for stores that remove a tenant's keys (cache, rate limits, job counters).
export { globLiteral, unlinkMatching } from './redis.keys';
export { RedisMonitor, watchRedisClient, isRedisUnavailableError, type RedisConnectionState, type RedisConnectionTracker, type RedisLinkStatus, type WatchRedisOptions } from './redis.monitor';
export { RedisModule } from './redis.module';
export { TenantCache, TenantCacheKeyError, TENANT_CACHE_OPTIONS, type TenantCacheOptions } from './tenant.cache';
export { CacheModule } from './cache.module';
export {
  TenantRegistryInvalidation,
  REGISTRY_INVALIDATION_OPTIONS,
  DEFAULT_REGISTRY_CHANNEL,
  REGISTRY_SUBSCRIBER_CONNECTION,
  type RegistryInvalidationOptions,
  type RegistryChangeMessage,
} from './tenant-registry.invalidation';
export { RegistryInvalidationModule } from './registry-invalidation.module';
