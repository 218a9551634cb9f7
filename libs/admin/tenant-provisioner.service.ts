import { Inject, Injectable, Logger } from '@nestjs/common';
import { Client, escapeIdentifier } from 'pg';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { withDatabase, type PoolEntity, type TenantEntity } from '#strata/control-plane';
import { migrateSchema, SHARED_SCHEMA } from '#strata/migrator';

export interface Placement {
  schemaName: string;
  databaseName: string | null;
}

/** Where a new tenant's tables go; derived once at onboarding and then stored on the record. */
export function placementFor(slug: string, tier: TenantEntity['tier']): Placement {
  const ident = slug.replace(/-/g, '_'); // injective: slugs have no underscores
  switch (tier) {
    case 'pool':
      return { schemaName: SHARED_SCHEMA, databaseName: null };
    case 'bridge':
      return { schemaName: `t_${ident}`, databaseName: null };
    case 'silo':
      return { schemaName: SHARED_SCHEMA, databaseName: `strata_t_${ident}` };
  }
}

/**
 * Creates (and removes) a tenant's physical home as the owner role: nothing for pool beyond the
 * shared schema, a schema for bridge, a database for silo; then runs the tenant migrations there.
 */
@Injectable()
export class TenantProvisioner {
  private readonly logger = new Logger(TenantProvisioner.name);

  constructor(@Inject(STRATA_CONFIG) private readonly config: StrataConfig) {}

  async provision(tenant: TenantEntity, pool: PoolEntity): Promise<void> {
    if (tenant.tier === 'silo') {
      await this.withOwner(pool, pool.database, (c) => c.query(`CREATE DATABASE ${escapeIdentifier(tenant.databaseName!)}`));
    }
    const database = tenant.databaseName ?? pool.database;
    await this.withOwner(pool, database, (c) =>
      migrateSchema(c, { schema: tenant.schemaName, set: 'tenant', grantTo: this.config.appDbUser }),
    );
  }

  /** Best-effort undo of provision(); used when onboarding fails half-way. */
  async deprovision(tenant: TenantEntity, pool: PoolEntity): Promise<void> {
    try {
      if (tenant.tier === 'silo' && tenant.databaseName) {
        await this.withOwner(pool, pool.database, (c) =>
          c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(tenant.databaseName!)} WITH (FORCE)`),
        );
      } else if (tenant.tier === 'bridge') {
        await this.withOwner(pool, pool.database, (c) => c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(tenant.schemaName)} CASCADE`));
      }
    } catch (err) {
      this.logger.error(`could not remove the home of tenant ${tenant.id}: ${(err as Error).message}`);
    }
  }

  private async withOwner<T>(pool: PoolEntity, database: string, fn: (c: Client) => Promise<T>): Promise<T> {
    const url = new URL(withDatabase(this.config.databaseUrl, database));
    url.hostname = pool.host;
    url.port = String(pool.port);
    const client = new Client({ connectionString: url.toString(), application_name: 'strata-provisioner' });
    await client.connect();
    try {
      return await fn(client);
    } finally {
      await client.end();
    }
  }
}
