import { Inject, Injectable } from '@nestjs/common';
import { LRUCache } from 'lru-cache';
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
  /** Tenants whose "behind" was confirmed on fresh records within the last second. */
  private readonly confirmedBehind = new LRUCache<string, true>({ max: 10_000, ttl: CONFIRM_BEHIND_EVERY_MS });

  constructor(
    private readonly registry: TenantRegistry,
    private readonly drivers: TierDrivers,
    @Inject(TENANT_SCHEMA_VERSION) private readonly required: string,
  ) {}

  async poolOf(tenant: TenantPlacement): Promise<PoolEntity> {
    const pool = await this.lookUpPool(tenant);
    const has = this.drivers.of(tenant.tier).schemaVersionOf(tenant, pool);
    return has < this.required ? this.confirmBehind(tenant, has) : pool;
  }

  /**
   * A refusal is never made on a cached answer alone. Fleet migrations record a home's new version
   * in the control plane without telling the instances (no publish), and with Redis the registry
   * keeps answers for REGISTRY_CACHE_TTL_MS (10 minutes): an instance would refuse a migrated
   * tenant that long. So "behind" is re-read fresh (the tenant's record and its pool), at most once
   * a second per tenant, and only a fresh "behind" answers 503 tenant_migrating.
   */
  private async confirmBehind(tenant: TenantPlacement, has: string): Promise<PoolEntity> {
    if (this.confirmedBehind.has(tenant.id)) throw new TenantMigratingError(has, this.required);
    this.confirmedBehind.set(tenant.id, true);
    this.registry.forgetTenantRecord(tenant);
    this.registry.forgetPool(tenant.poolId);
    const fresh = await this.registry.findById(tenant.id);
    // A record that now names another home belongs to a move: its own units re-route by epoch.
    if (!fresh || fresh.poolId !== tenant.poolId || fresh.tier !== tenant.tier) throw new TenantMigratingError(has, this.required);
    const pool = await this.lookUpPool(tenant);
    const now = this.drivers.of(tenant.tier).schemaVersionOf({ ...tenant, schemaVersion: fresh.schemaVersion }, pool);
    if (now < this.required) throw new TenantMigratingError(now, this.required);
    this.confirmedBehind.delete(tenant.id);
    return pool;
  }

  private async lookUpPool(tenant: TenantPlacement): Promise<PoolEntity> {
    const pool = await this.registry.findPool(tenant.poolId);
    if (!pool) throw new TenantPlacementError(`pool ${tenant.poolId} of tenant ${tenant.id} is not registered`);
    if (pool.kind !== tenant.tier) {
      throw new TenantPlacementError(`tenant ${tenant.id} is ${tenant.tier} but pool ${pool.id} serves ${pool.kind}`);
    }
    return pool;
  }
}

/** How often a tenant refused as behind may make its instance re-read the control plane. */
const CONFIRM_BEHIND_EVERY_MS = 1000;
