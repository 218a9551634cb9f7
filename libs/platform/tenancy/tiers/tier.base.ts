import type { DataSource } from 'typeorm';
import type { PoolEntity } from '#strata/control-plane';
import type { SharedDataSources } from '../shared-data-sources.registry';
import type { TenantPlacement } from '../tenant.types';
import type { HomeNames, HomePool, TenantHome, TierLease, TierRules } from './tier.driver';

/** A driver's pure knowledge, taken from its tier's rules object (usable without Nest by CLIs). */
export abstract class RulesBackedDriver implements TierRules {
  readonly tier: TierRules['tier'];
  readonly ownMigrationTarget: boolean;
  readonly ownConnections: boolean;

  constructor(private readonly rules: TierRules) {
    this.tier = rules.tier;
    this.ownMigrationTarget = rules.ownMigrationTarget;
    this.ownConnections = rules.ownConnections;
  }

  placementFor(slug: string): HomeNames {
    return this.rules.placementFor(slug);
  }

  homeOf(tenant: HomeNames, pool: HomePool): TenantHome {
    return this.rules.homeOf(tenant, pool);
  }

  schemaVersionOf(tenant: { schemaVersion: string }, pool: { schemaVersion: string }): string {
    return this.rules.schemaVersionOf(tenant, pool);
  }
}

const noRelease = (): void => undefined;

/**
 * Pool and bridge reach their homes the same way: the one shared DataSource of the pool's server,
 * whichever schema the unit enters. Connections scale with servers, never with tenants.
 */
export abstract class SharedServerDriver extends RulesBackedDriver {
  constructor(rules: TierRules, protected readonly shared: SharedDataSources) {
    super(rules);
  }

  async enter(_tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease> {
    const dataSource: DataSource = await this.shared.get(pool);
    return { dataSource, release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
  }

  async ping(pool: PoolEntity): Promise<Record<string, unknown>> {
    await (await this.shared.get(pool)).query('SELECT 1');
    return { kind: pool.kind };
  }
}
