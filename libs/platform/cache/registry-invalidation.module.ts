import { Module, type DynamicModule } from '@nestjs/common';
import { TENANT_CHANGE_PUBLISHER } from '#strata/control-plane';
import { RedisModule } from './redis.module';
import {
  REGISTRY_INVALIDATION_OPTIONS,
  TenantRegistryInvalidation,
  type RegistryInvalidationOptions,
} from './tenant-registry.invalidation';

/**
 * Cross-instance TenantRegistry invalidation. Import it in every process that holds a registry
 * (API and worker): each one must listen, not only the one where admins make changes. It also
 * provides TENANT_CHANGE_PUBLISHER, which TenantAdminService picks up.
 */
@Module({})
export class RegistryInvalidationModule {
  static forRoot(options: RegistryInvalidationOptions = {}): DynamicModule {
    return {
      module: RegistryInvalidationModule,
      global: true,
      imports: [RedisModule],
      providers: [
        { provide: REGISTRY_INVALIDATION_OPTIONS, useValue: options },
        TenantRegistryInvalidation,
        { provide: TENANT_CHANGE_PUBLISHER, useExisting: TenantRegistryInvalidation },
      ],
      exports: [TenantRegistryInvalidation, TENANT_CHANGE_PUBLISHER],
    };
  }
}
