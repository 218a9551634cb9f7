import { Injectable } from '@nestjs/common';
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

async function poolOf(registry: TenantRegistry, tenant: TenantPlacement): Promise<PoolEntity> {
  const pool = await registry.findPool(tenant.poolId);
  if (!pool) throw new TenantPlacementError(`pool ${tenant.poolId} of tenant ${tenant.id} is not registered`);
  if (pool.kind !== tenant.tier) {
    throw new TenantPlacementError(`tenant ${tenant.id} is ${tenant.tier} but pool ${pool.id} serves ${pool.kind}`);
  }
  return pool;
}

const noRelease = (): void => undefined;

/** Pool: the shared schema of the tenant's pool server; RLS on app.tenant_id does the isolation. */
@Injectable()
export class PoolTierStrategy implements TierStrategy {
  readonly tier = 'pool' as const;
  constructor(private readonly registry: TenantRegistry, private readonly shared: SharedDataSources) {}

  async enter(tenant: TenantPlacement): Promise<TierLease> {
    return { dataSource: await this.shared.get(await poolOf(this.registry, tenant)), release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
  }
}

/** Bridge: the same kind of shared DataSource; the tenant's schema is chosen per transaction. */
@Injectable()
export class BridgeTierStrategy implements TierStrategy {
  readonly tier = 'bridge' as const;
  constructor(private readonly registry: TenantRegistry, private readonly shared: SharedDataSources) {}

  async enter(tenant: TenantPlacement): Promise<TierLease> {
    return { dataSource: await this.shared.get(await poolOf(this.registry, tenant)), release: noRelease };
  }

  leave(lease: TierLease): void {
    lease.release();
  }
}

/** Silo: the tenant's own database, through the bounded DataSource cache. */
@Injectable()
export class SiloTierStrategy implements TierStrategy {
  readonly tier = 'silo' as const;
  constructor(private readonly registry: TenantRegistry, private readonly silos: SiloDataSourceCache) {}

  async enter(tenant: TenantPlacement): Promise<TierLease> {
    const pool = await poolOf(this.registry, tenant);
    if (!tenant.databaseName) throw new TenantPlacementError(`silo tenant ${tenant.id} has no database`);
    return this.silos.acquire(tenant.id, { host: pool.host, port: pool.port, database: tenant.databaseName });
  }

  leave(lease: TierLease): void {
    lease.release();
  }
}
