import { Global, Module, type DynamicModule } from '@nestjs/common';
import type { EntitySchema } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantContext } from './tenant.context';
import { SharedDataSources } from './shared-data-sources.registry';
import { SILO_DATA_SOURCE_OPENER, SiloDataSourceCache, siloOpenerFactory } from './silo-data-source.cache';
import { TenantConnectionManager } from './tenant-connection.manager';
import { registerTenantEntities } from './tenant-entities.registry';
import { OwnerConnections } from './tiers/owner.connections';
import { PoolTierDriver } from './tiers/pool.tier';
import { BridgeTierDriver } from './tiers/bridge.tier';
import { SiloTierDriver } from './tiers/silo.tier';
import { PlacementResolver, TierDrivers } from './tiers/tier.drivers';
import { HomeCircuits } from './home.circuit';
import { ServerConnectionBudget } from './server-connection.budget';
import { PlacementWarmer } from './placement.warmer';

/**
 * Tenant context and tier-routed connections. Needs STRATA_CONFIG, nestjs-cls (ClsModule), the
 * control plane's TenantRegistry, and TENANT_SCHEMA_VERSION + TENANT_HOME_MIGRATOR in the
 * application (libs/platform/migrator's MigratorModule provides both: tenancy never reads migration files).
 */
@Global()
@Module({
  providers: [
    TenantContext,
    SharedDataSources,
    ServerConnectionBudget,
    {
      provide: SILO_DATA_SOURCE_OPENER,
      inject: [STRATA_CONFIG, ServerConnectionBudget],
      useFactory: (c: StrataConfig, budget: ServerConnectionBudget) => siloOpenerFactory(c, budget),
    },
    SiloDataSourceCache,
    OwnerConnections,
    PoolTierDriver,
    BridgeTierDriver,
    SiloTierDriver,
    TierDrivers,
    PlacementResolver,
    HomeCircuits,
    TenantConnectionManager,
    PlacementWarmer,
  ],
  exports: [
    TenantContext,
    TenantConnectionManager,
    SharedDataSources,
    SiloDataSourceCache,
    ServerConnectionBudget,
    OwnerConnections,
    TierDrivers,
    PlacementResolver,
    HomeCircuits,
    PlacementWarmer,
  ],
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
