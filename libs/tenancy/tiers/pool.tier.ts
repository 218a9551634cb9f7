import { Injectable } from '@nestjs/common';
import type { PoolEntity } from '#strata/control-plane';
import { SharedDataSources } from '../shared-data-sources.registry';
import type { TenantPlacement } from '../tenant.types';
import { OwnerConnections } from './owner.connections';
import { deleteTenantRows } from './tenant-tables.catalog';
import { SHARED_SCHEMA, type TenantHome, type TierDriver, type TierLease, type TierRules } from './tier.driver';

const noRelease = (): void => undefined;

/** Pool: rows in the `shared` schema of the pool's database, beside every other pool tenant's; RLS isolates. */
export const POOL_RULES: TierRules = {
  tier: 'pool',
  placementFor: () => ({ schemaName: SHARED_SCHEMA, databaseName: null }),
  homeOf: (tenant, pool) => ({
    tier: 'pool',
    poolId: pool.id,
    host: pool.host,
    port: pool.port,
    database: pool.database,
    poolDatabase: pool.database,
    schema: tenant.schemaName,
    exclusive: false,
  }),
  // The pool's shared schema is one target (`pool:<poolId>`) for all its tenants, versioned on the pool.
  ownMigrationTarget: false,
  schemaVersionOf: (_tenant, pool) => pool.schemaVersion,
};

@Injectable()
export class PoolTierDriver implements TierDriver {
  readonly tier = POOL_RULES.tier;
  readonly placementFor = POOL_RULES.placementFor;
  readonly homeOf = POOL_RULES.homeOf;
  readonly ownMigrationTarget = POOL_RULES.ownMigrationTarget;
  readonly schemaVersionOf = POOL_RULES.schemaVersionOf;

  constructor(private readonly shared: SharedDataSources, private readonly owners: OwnerConnections) {}

  async enter(_tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease> {
    return { dataSource: await this.shared.get(pool), release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
  }

  /** Nothing to create: the shared schema is made when its pool is registered (and migrated by the fleet runner). */
  async provision(home: TenantHome): Promise<void> {
    await this.owners.with(home, async (c) => {
      const found = await c.query(`SELECT to_regnamespace($1) IS NOT NULL AS ok`, [home.schema]);
      if (!found.rows[0].ok) throw new Error(`pool ${home.poolId} has no ${home.schema} schema: register it with POST /admin/pools`);
    });
  }

  /** A shared home is left by deleting the tenant's rows; every other tenant's stay. */
  async drop(home: TenantHome, tenantId: string): Promise<void> {
    await this.owners.with(home, (c) => deleteTenantRows(c, home.schema, tenantId));
  }

  async ping(pool: PoolEntity): Promise<Record<string, unknown>> {
    await (await this.shared.get(pool)).query('SELECT 1');
    return { kind: pool.kind };
  }
}
