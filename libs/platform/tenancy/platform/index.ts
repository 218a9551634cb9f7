// The platform face of libs/platform/tenancy: tiers, homes, data sources, the placement fence and the
// request edge's wire rules, for platform libs (auth, jobs, admin, health, migrator, moves) and apps.
// Domain libs use ../index.ts only (checked by dependency-cruiser).
export * from '../index';
export { tenantSetupSql, UNIT_BUDGET_POLICY, type UnitBudgets, type UnitBudgetPolicy } from '../tenant-connection.manager';
export { HomeCircuits, type DegradedHome } from '../home.circuit';
export { responseCancellation, cancelBackend, type UnitCancellation } from '../backend.cancel';
// The read units' per-statement setup and the name it is prepared under (visible in pg_prepared_statements).
export { ENTER_READ_SQL, enterReadStatement, enterReadSql, type ReadBudgets } from '../tenant-pg.client';
export { forgetSharedServerConnections, preparedStatementName, preparedStatementRecoveries, sharesServerConnections } from '../prepared-statements';
export { placementOf, SYSTEM_TENANT, SYSTEM_TENANT_ID } from '../tenant.types';
export type { ScopeInput } from '../tenant.context';
export {
  resolveWireTenant,
  tenantPathPrefixMiddleware,
  WireTenantError,
  SLUG_RULE,
  type WireClaim,
  type WireSource,
} from '../wire-tenant.resolver';
export { SharedDataSources } from '../shared-data-sources.registry';
export { SiloDataSourceCache } from '../silo-data-source.cache';
export { serverKey } from '../tenant-data-source.factory';
export { siloLeaseKey, siloTemplateName } from '../tiers/silo.tier';
export {
  dataAddressOf,
  homeAddresses,
  SHARED_SCHEMA,
  TENANT_HOME_MIGRATOR,
  TENANT_SCHEMA_RENAMER,
  TENANT_SCHEMA_VERSION,
  TenantHomeExistsError,
  homeClaimOf,
  slugIdent,
  type HomeNames,
  type HomePool,
  type TenantHome,
  type TenantHomeMigrator,
  type TenantSchemaRenamer,
  type TierDriver,
  type TierRules,
} from '../tiers/tier.driver';
export { TierDrivers, tierRules, PlacementResolver } from '../tiers/tier.drivers';
export { PlacementWarmer, WARM_CONNECTIONS } from '../placement.warmer';
export { OwnerConnections, ownerClient, type ServerDatabase } from '../tiers/owner.connections';
export { tenantTablesOf, deleteTenantRows, quoteIdent, type TenantTable } from '../tiers/tenant-tables.catalog';
export {
  FENCE_LOCK_CLASS,
  FENCE_CHECK_SQL,
  FENCE_CHECK_STATEMENT,
  RETIRED_HOME_SQLSTATE,
  isRetiredHome,
} from '../placement.fence';
export {
  TenancyErrorCode,
  TenantPlacementError,
  TenantMigratingError,
  TenantMovingError,
  TenantUnavailableError,
  TenantBusyError,
  TenantConcurrencyLimitedError,
  ClientClosedRequestError,
  SiloCapacityError,
  ServerCapacityError,
  RetiredHomeError,
  TransactionRolledBackError,
  ReadUnitTransactionError,
} from '../tenancy.errors';
export {
  ServerConnectionBudget,
  serverOf,
  CONNECTION_KINDS,
  type ConnectionKind,
  type AdmissionWait,
} from '../server-connection.budget';
