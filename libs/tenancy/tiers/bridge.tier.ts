import { Inject, Injectable } from '@nestjs/common';
import { escapeIdentifier } from 'pg';
import type { PoolEntity } from '#strata/control-plane';
import { SharedDataSources } from '../shared-data-sources.registry';
import type { TenantPlacement } from '../tenant.types';
import { OwnerConnections } from './owner.connections';
import {
  slugIdent,
  TENANT_HOME_MIGRATOR,
  type TenantHome,
  type TenantHomeMigrator,
  type TierDriver,
  type TierLease,
  type TierRules,
} from './tier.driver';

const noRelease = (): void => undefined;

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
export class BridgeTierDriver implements TierDriver {
  readonly tier = BRIDGE_RULES.tier;
  readonly placementFor = BRIDGE_RULES.placementFor;
  readonly homeOf = BRIDGE_RULES.homeOf;
  readonly ownMigrationTarget = BRIDGE_RULES.ownMigrationTarget;
  readonly schemaVersionOf = BRIDGE_RULES.schemaVersionOf;

  constructor(
    private readonly shared: SharedDataSources,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
  ) {}

  async enter(_tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease> {
    return { dataSource: await this.shared.get(pool), release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
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

  async ping(pool: PoolEntity): Promise<Record<string, unknown>> {
    await (await this.shared.get(pool)).query('SELECT 1');
    return { kind: pool.kind };
  }
}
