import { Inject, Injectable } from '@nestjs/common';
import { TenantRegistry, type PoolEntity, type Tier } from '#strata/control-plane';
import type { TenantPlacement } from '../tenant.types';
import { BRIDGE_RULES, BridgeTierDriver } from './bridge.tier';
import { POOL_RULES, PoolTierDriver } from './pool.tier';
import { SILO_RULES, SiloTierDriver } from './silo.tier';
import { TENANT_SCHEMA_VERSION, type TierDriver, type TierRules } from './tier.driver';
import { TenantMigratingError, TenantPlacementError } from '../tenancy.errors';

const RULES: Record<Tier, TierRules> = { pool: POOL_RULES, bridge: BRIDGE_RULES, silo: SILO_RULES };

/** The pure knowledge of a tier (names, home, migration target), without Nest: CLIs and the fleet runner. */
export function tierRules(tier: Tier): TierRules {
  const rules = Object.hasOwn(RULES, tier) ? RULES[tier] : undefined;
  if (!rules) throw new Error(`unknown tier ${JSON.stringify(tier)}`);
  return rules;
}

/** The tier drivers by name: the one place that lists the tiers (add a fourth here). */
@Injectable()
export class TierDrivers {
  private readonly byTier: Record<Tier, TierDriver>;

  constructor(pool: PoolTierDriver, bridge: BridgeTierDriver, silo: SiloTierDriver) {
    this.byTier = { pool, bridge, silo };
  }

  of(tier: Tier): TierDriver {
    const driver = Object.hasOwn(this.byTier, tier) ? this.byTier[tier] : undefined;
    if (!driver) throw new Error(`unknown tier ${JSON.stringify(tier)}`);
    return driver;
  }

  all(): TierDriver[] {
    return Object.values(this.byTier);
  }
}


/**
 * Loads the tenant's pool, checks it serves the tenant's tier, and that the tenant's home has
 * reached the schema version the code needs (the tier decides whose version that is).
 */
@Injectable()
export class PlacementResolver {
  constructor(
    private readonly registry: TenantRegistry,
    private readonly drivers: TierDrivers,
    @Inject(TENANT_SCHEMA_VERSION) private readonly required: string,
  ) {}

  async poolOf(tenant: TenantPlacement): Promise<PoolEntity> {
    const pool = await this.registry.findPool(tenant.poolId);
    if (!pool) throw new TenantPlacementError(`pool ${tenant.poolId} of tenant ${tenant.id} is not registered`);
    if (pool.kind !== tenant.tier) {
      throw new TenantPlacementError(`tenant ${tenant.id} is ${tenant.tier} but pool ${pool.id} serves ${pool.kind}`);
    }
    const has = this.drivers.of(tenant.tier).schemaVersionOf(tenant, pool);
    if (has < this.required) throw new TenantMigratingError(has, this.required);
    return pool;
  }
}
