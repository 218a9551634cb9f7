// Public API of libs/tenancy. Domain libs import only from here (checked by dependency-cruiser).
export { TenancyModule } from './tenancy.module';
export { TenantContext, MissingTenantContextError } from './tenant.context';
export { TenantConnectionManager, tenantSetupSql } from './tenant-connection.manager';
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
