import { Inject, Injectable } from '@nestjs/common';
import { ApiException } from '#strata/common';
import type { DataSource } from 'typeorm';
import { TenantRegistry, type PoolEntity, type Tier } from '#strata/control-plane';
import { SharedDataSources } from './shared-data-sources.registry';
import { SiloDataSourceCache } from './silo-data-source.cache';
import type { TenantPlacement } from './tenant.types';

/** What a strategy hands the connection manager: where to run, and how to give it back. */
export interface TierLease {
  dataSource: DataSource;
  release(): void;
}

/**
 * A tier is a small symmetric piece: enter() finds the DataSource a tenant lives on, leave() gives
 * it back. The manager calls leave() in `finally`. Everything else (transaction, tenant setting,
 * search_path) is the same on every tier.
 */
export interface TierStrategy {
  readonly tier: Tier;
  enter(tenant: TenantPlacement): Promise<TierLease>;
  leave(lease: TierLease): void;
}

export class TenantPlacementError extends Error {}

/** The tenant schema version this release's code needs (the newest file in migrations/tenant). */
export const TENANT_SCHEMA_VERSION = Symbol('TENANT_SCHEMA_VERSION');

/** The tenant's target is behind the release: answer 503 with Retry-After instead of failing queries. */
export class TenantMigratingError extends ApiException {
  constructor(readonly has: string, readonly needs: string) {
    super(503, 'tenant_migrating', 'this tenant is being migrated; retry shortly', { 'Retry-After': '30' });
    this.name = 'TenantMigratingError';
  }
}

/**
 * Loads the tenant's pool, checks it serves the tenant's tier, and that the tenant's schema has
 * reached the version the code needs (pool tenants share their pool's shared schema).
 */
@Injectable()
export class PlacementResolver {
  constructor(
    private readonly registry: TenantRegistry,
    @Inject(TENANT_SCHEMA_VERSION) private readonly required: string,
  ) {}

  async poolOf(tenant: TenantPlacement): Promise<PoolEntity> {
    const pool = await this.registry.findPool(tenant.poolId);
    if (!pool) throw new TenantPlacementError(`pool ${tenant.poolId} of tenant ${tenant.id} is not registered`);
    if (pool.kind !== tenant.tier) {
      throw new TenantPlacementError(`tenant ${tenant.id} is ${tenant.tier} but pool ${pool.id} serves ${pool.kind}`);
    }
    const has = tenant.tier === 'pool' ? pool.schemaVersion : tenant.schemaVersion;
    if (has < this.required) throw new TenantMigratingError(has, this.required);
    return pool;
  }
}

const noRelease = (): void => undefined;

/**
 * Pool and bridge differ only in the schema the transaction enters (on the tenant record), not in
 * where it runs: both lease the shared DataSource of the tenant's pool server.
 */
@Injectable() // so its constructor's parameter types are emitted for Nest's injector
abstract class SharedDataSourceStrategy implements TierStrategy {
  abstract readonly tier: Tier;
  constructor(private readonly placement: PlacementResolver, private readonly shared: SharedDataSources) {}

  async enter(tenant: TenantPlacement): Promise<TierLease> {
    return { dataSource: await this.shared.get(await this.placement.poolOf(tenant)), release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
  }
}

/** Pool: the shared schema of the tenant's pool server; RLS on app.tenant_id does the isolation. */
@Injectable()
export class PoolTierStrategy extends SharedDataSourceStrategy {
  readonly tier = 'pool' as const;
}

/** Bridge: the same kind of shared DataSource; the tenant's schema is chosen per transaction. */
@Injectable()
export class BridgeTierStrategy extends SharedDataSourceStrategy {
  readonly tier = 'bridge' as const;
}

/** Silo: the tenant's own database, through the bounded DataSource cache. */
@Injectable()
export class SiloTierStrategy implements TierStrategy {
  readonly tier = 'silo' as const;
  constructor(private readonly placement: PlacementResolver, private readonly silos: SiloDataSourceCache) {}

  async enter(tenant: TenantPlacement): Promise<TierLease> {
    const pool = await this.placement.poolOf(tenant);
    if (!tenant.databaseName) throw new TenantPlacementError(`silo tenant ${tenant.id} has no database`);
    return this.silos.acquire(tenant.id, { host: pool.host, port: pool.port, database: tenant.databaseName });
  }

  leave(lease: TierLease): void {
    lease.release();
  }
}
