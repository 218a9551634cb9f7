import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { EntitySchema } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantContext } from './tenant.context';
import { SharedDataSources } from './shared-data-sources.registry';
import { SILO_DATA_SOURCE_OPENER, SiloDataSourceCache, siloOpenerFactory } from './silo-data-source.cache';
import { BridgeTierStrategy, PlacementResolver, PoolTierStrategy, SiloTierStrategy, TENANT_SCHEMA_VERSION } from './tier.strategies';
import { latestVersion } from '#strata/migrator';
import { TenantConnectionManager } from './tenant-connection.manager';
import { registerTenantEntities } from './tenant-entities.registry';

/**
 * Tenant context and tier-routed connections. Needs STRATA_CONFIG, nestjs-cls (ClsModule) and the
 * control plane's TenantRegistry in the application.
 */
@Global()
@Module({
  providers: [
    TenantContext,
    SharedDataSources,
    { provide: SILO_DATA_SOURCE_OPENER, inject: [STRATA_CONFIG], useFactory: (c: StrataConfig) => siloOpenerFactory(c) },
    SiloDataSourceCache,
    { provide: TENANT_SCHEMA_VERSION, useFactory: () => latestVersion('tenant') },
    PlacementResolver,
    PoolTierStrategy,
    BridgeTierStrategy,
    SiloTierStrategy,
    TenantConnectionManager,
  ],
  exports: [TenantContext, TenantConnectionManager, SharedDataSources, SiloDataSourceCache, TENANT_SCHEMA_VERSION],
})
export class TenancyModule {
  /** A domain module declares its tenant tables' entities; every tier's DataSource maps them. */
  static forFeature(entities: Array<Function | EntitySchema<unknown>>): DynamicModule {
    registerTenantEntities(entities);
    return { module: TenancyFeatureModule };
  }
}

@Module({})
class TenancyFeatureModule {}
