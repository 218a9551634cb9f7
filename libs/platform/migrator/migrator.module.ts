import { Global, Module } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TENANT_HOME_MIGRATOR, TENANT_SCHEMA_VERSION, type TenantHomeMigrator } from '#strata/tenancy/platform';
import { migrateSchema } from './schema-migrator';
import { latestVersion, loadMigrations } from './sql-migrations.loader';

/**
 * Hands tenancy what it needs from the migration files without tenancy reading them: the schema
 * version this release needs, and how a tier driver migrates a home it just created.
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
  ],
  exports: [TENANT_SCHEMA_VERSION, TENANT_HOME_MIGRATOR],
})
export class MigratorModule {}
