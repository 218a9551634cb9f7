export { loadMigrations, latestVersion, type SqlMigration, type MigrationSet } from './sql-migrations.loader';
export {
  migrateSchema,
  appliedVersions,
  assertIdentifier,
  MigrationFailedError,
  MigrationDriftError,
  driftOf,
  type MigrateTarget,
  type AppliedMigration,
  type DriftedMigration,
} from './schema-migrator';
export { repairChecksums, UnknownMigrationTargetError, CONTROL_TARGET_KEY, type ChecksumRepairOptions, type ChecksumRepairResult } from './checksum.repair';
export { bootstrapDatabase, bootstrapOptionsFrom, ensureAppRole, ROLE_BACKSTOPS, CONTROL_SCHEMA, SHARED_SCHEMA, type DatabaseBootstrapOptions } from './database-bootstrap';
export { listFleetTargets, serverOf, type FleetTarget, type TargetKind } from './fleet.targets';
export {
  runFleet,
  type FleetRunOptions,
  type FleetReport,
  type TargetResult,
  type TargetStatus,
  type FleetMode,
  type ControlPlaneState,
} from './fleet-migration.runner';
export { checkFleetGuardrails, checkSchemas, checkAppRole, type GuardrailViolation, type FleetCheckOptions } from './rls-guardrails';
export { MigratorModule } from './migrator.module';
