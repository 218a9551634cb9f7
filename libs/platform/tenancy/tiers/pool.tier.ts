import { Injectable } from '@nestjs/common';
import type { PoolEntity } from '#strata/control-plane';
import { SharedDataSources } from '../shared-data-sources.registry';
import { OwnerConnections } from './owner.connections';
import { deleteTenantRows } from './tenant-tables.catalog';
import { SharedServerDriver } from './tier.base';
import { homeAddresses, SHARED_SCHEMA, type TenantHome, type TierDriver, type TierRules } from './tier.driver';

/** Pool: rows in the `shared` schema of the pool's database, beside every other pool tenant's; RLS isolates. */
export const POOL_RULES: TierRules = {
  tier: 'pool',
  placementFor: () => ({ schemaName: SHARED_SCHEMA, databaseName: null }),
  homeOf: (tenant, pool) => ({
    tier: 'pool',
    poolId: pool.id,
    ...homeAddresses(pool),
    database: pool.database,
    poolDatabase: pool.database,
    schema: tenant.schemaName,
    exclusive: false,
  }),
  // The pool's shared schema is one target (`pool:<poolId>`) for all its tenants, versioned on the pool.
  ownMigrationTarget: false,
  ownConnections: false,
  schemaVersionOf: (_tenant, pool) => pool.schemaVersion,
};

@Injectable()
export class PoolTierDriver extends SharedServerDriver implements TierDriver {
  constructor(shared: SharedDataSources, private readonly owners: OwnerConnections) {
    super(POOL_RULES, shared);
  }

  /** Nothing to create: the shared schema is made when its pool is registered (and migrated by the fleet runner). */
  async provision(home: TenantHome): Promise<void> {
    await this.owners.with(home, async (c) => {
      const found = await c.query(`SELECT to_regnamespace($1) IS NOT NULL AS ok`, [home.schema]);
      if (!found.rows[0].ok) throw new Error(`pool ${home.poolId} has no ${home.schema} schema: register it with POST /admin/pools`);
    });
  }

  /**
   * The shared schema is the pool's, never made by onboarding: only checked, as the app role on the
   * pool's shared DataSource (a pooled connection, not a new owner session: pool onboarding is cheap).
   */
  async createHome(home: TenantHome, _claim: string, pool: PoolEntity): Promise<boolean> {
    const [found] = await (await this.shared.get(pool)).query(`SELECT to_regnamespace($1) IS NOT NULL AS ok`, [home.schema]);
    if (!found.ok) throw new Error(`pool ${home.poolId} has no ${home.schema} schema: register it with POST /admin/pools`);
    return false;
  }

  async migrateHome(): Promise<void> {}

  /** The tenant's rows only: they are this tenant's, whoever else lives in the schema. */
  async dropClaimedHome(home: TenantHome, tenantId: string): Promise<boolean> {
    await this.drop(home, tenantId);
    return true;
  }

  /** A shared home is left by deleting the tenant's rows; every other tenant's stay. */
  async drop(home: TenantHome, tenantId: string): Promise<void> {
    await this.owners.with(home, (c) => deleteTenantRows(c, home.schema, tenantId));
  }
}
