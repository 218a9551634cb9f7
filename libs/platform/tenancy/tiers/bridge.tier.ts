import { Inject, Injectable } from '@nestjs/common';
import { escapeIdentifier } from 'pg';
import { SharedDataSources } from '../shared-data-sources.registry';
import { OwnerConnections } from './owner.connections';
import { SharedServerDriver } from './tier.base';
import {
  slugIdent,
  TENANT_HOME_MIGRATOR,
  type TenantHome,
  type TenantHomeMigrator,
  type TierDriver,
  type TierRules,
} from './tier.driver';

/** Bridge: a schema `t_<slug>` of its own in the pool's database, chosen per unit of work on the shared DataSource. */
export const BRIDGE_RULES: TierRules = {
  tier: 'bridge',
  placementFor: (slug) => ({ schemaName: `t_${slugIdent(slug)}`, databaseName: null }),
  homeOf: (tenant, pool) => ({
    tier: 'bridge',
    poolId: pool.id,
    host: pool.host,
    port: pool.port,
    database: pool.database,
    poolDatabase: pool.database,
    schema: tenant.schemaName,
    exclusive: true,
  }),
  ownMigrationTarget: true,
  schemaVersionOf: (tenant) => tenant.schemaVersion,
};

@Injectable()
export class BridgeTierDriver extends SharedServerDriver implements TierDriver {
  constructor(
    shared: SharedDataSources,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
  ) {
    super(BRIDGE_RULES, shared);
  }

  /** CREATE SCHEMA fails (42P06) when the schema exists: a home is never adopted by accident. */
  async provision(home: TenantHome): Promise<void> {
    await this.owners.with(home, async (c) => {
      await c.query(`CREATE SCHEMA ${escapeIdentifier(home.schema)}`);
      await this.migrate(c, home.schema);
    });
  }

  async drop(home: TenantHome): Promise<void> {
    await this.owners.with(home, (c) => c.query(`DROP SCHEMA IF EXISTS ${escapeIdentifier(home.schema)} CASCADE`));
  }
}
