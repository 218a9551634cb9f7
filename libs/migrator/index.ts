export { loadMigrations, latestVersion, type SqlMigration, type MigrationSet } from './sql-migrations.loader';
export { migrateSchema, assertIdentifier, type MigrateTarget, type AppliedMigration } from './schema-migrator';
export { bootstrapDatabase, ensureAppRole, CONTROL_SCHEMA, SHARED_SCHEMA, type DatabaseBootstrapOptions } from './database-bootstrap';
