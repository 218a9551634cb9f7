// Public API of libs/tenancy. Domain libs import only from here (checked by dependency-cruiser).
export { TenancyModule } from './tenancy.module';
export { TenantContext, MissingTenantContextError } from './tenant.context';
export { TenantConnectionManager, tenantSetupSql } from './tenant-connection.manager';
// The read units' per-statement setup and the name it is prepared under (visible in pg_prepared_statements).
export { ENTER_READ_SQL, ENTER_READ_STATEMENT } from './tenant-pg.client';
export type { TenantPlacement, TenantScope } from './tenant.types';
export {
  resolveWireTenant,
  tenantPathPrefixMiddleware,
  WireTenantError,
  SLUG_RULE,
  type WireClaim,
  type WireSource,
} from './wire-tenant.resolver';
export { SharedDataSources } from './shared-data-sources.registry';
export { SiloDataSourceCache, SiloCapacityError } from './silo-data-source.cache';
export { TenantPlacementError, TenantMigratingError, TENANT_SCHEMA_VERSION } from './tier.strategies';
