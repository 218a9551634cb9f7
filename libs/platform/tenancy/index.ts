// The domain face of libs/platform/tenancy: what a domain module needs to reach its tenant's data, and
// nothing about where that data lives. Platform libs use ./platform (dependency-cruiser keeps
// domain libs off it).
export { TenancyModule } from './tenancy.module';
export { TenantContext, MissingTenantContextError } from './tenant.context';
export { TenantConnectionManager, type CommitStatement, type CommitStatements } from './tenant-connection.manager';
export type { TenantPlacement, TenantScope, TenantUnitScope, SystemScope, SystemTenant } from './tenant.types';
