import { Module, type DynamicModule } from '@nestjs/common';
import { RedisModule } from './redis.module';
import { TENANT_CACHE_OPTIONS, TenantCache, type TenantCacheOptions } from './tenant.cache';

/** TenantCache for domain code. Needs TenancyModule (TenantContext) in the application. */
@Module({})
export class CacheModule {
  static forRoot(options: TenantCacheOptions = {}): DynamicModule {
    return {
      module: CacheModule,
      global: true,
      imports: [RedisModule],
      providers: [{ provide: TENANT_CACHE_OPTIONS, useValue: options }, TenantCache],
      exports: [TenantCache],
    };
  }
}
