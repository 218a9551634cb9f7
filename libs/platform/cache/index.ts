// Public API of libs/platform/cache. Other libs import only from here.
export { REDIS_CLIENT, RedisNotConfiguredError, requireRedis, type RedisClient } from './redis.client';
export { RedisModule } from './redis.module';
export { TenantCache, TenantCacheKeyError, TENANT_CACHE_OPTIONS, type TenantCacheOptions } from './tenant.cache';
export { CacheModule } from './cache.module';
export {
  TenantRegistryInvalidation,
  REGISTRY_INVALIDATION_OPTIONS,
  DEFAULT_REGISTRY_CHANNEL,
  type RegistryInvalidationOptions,
  type RegistryChangeMessage,
} from './tenant-registry.invalidation';
export { RegistryInvalidationModule } from './registry-invalidation.module';
