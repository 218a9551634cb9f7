import { Global, Module } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TENANT_HOME_MIGRATOR, TENANT_SCHEMA_RENAMER, TENANT_SCHEMA_VERSION, type TenantHomeMigrator, type TenantSchemaRenamer } from '#strata/tenancy/platform';
import { migrateSchema } from './schema-migrator';
import { latestVersion, loadMigrations } from './sql-migrations.loader';
import { renameTenantSchemaSql } from './tenant-table.helper';

/**
 * Hands tenancy what it needs from the migration files without tenancy reading them: the schema
 * version this release needs, how a tier driver migrates a home it just created, and how it
 * renames a migrated schema (bridge spares).
 */
@Global()
@Module({
  providers: [
    { provide: TENANT_SCHEMA_VERSION, useFactory: () => latestVersion('tenant') },
    {
      provide: TENANT_HOME_MIGRATOR,
      inject: [STRATA_CONFIG],
      useFactory: (config: StrataConfig): TenantHomeMigrator => {
        const migrations = loadMigrations('tenant');
        const version = migrations.length ? migrations[migrations.length - 1].version : '0000';
        return async (client, schema) => {
          await migrateSchema(client, { schema, set: 'tenant', grantTo: config.appDbUser, migrations, batchFresh: true });
          return version;
        };
      },
    },
    { provide: TENANT_SCHEMA_RENAMER, useValue: renameTenantSchemaSql satisfies TenantSchemaRenamer },
  ],
  exports: [TENANT_SCHEMA_VERSION, TENANT_HOME_MIGRATOR, TENANT_SCHEMA_RENAMER],
})
export class MigratorModule {}
