import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { TenantMoveHints, TenantRegistry, type TenantMoveHint } from '#strata/control-plane';
import type { DataSource } from 'typeorm';
import { placementOf, type TenantPlacement } from './tenant.types';
import { quoteIdent } from './tiers/tenant-tables.catalog';
import { TierDrivers } from './tiers/tier.drivers';

/** Connections a warm opens on a target, per process: about what the writes held by a cutover's fence need at once. */
export const WARM_CONNECTIONS = 4;

/**
 * Opens connections to a placement before anything is served from it. A move's cutover holds the
 * tenant's writes for its fence (tens of ms) and then lets them all go at once to the new home;
 * into a new silo database each of them would otherwise open its own connection first (a backend
 * start, its catalog caches cold) — bench:move measured the writer's slowest write at several
 * times the fence's pause that way. The executor warms its own process and publishes a move hint;
 * every process that serves the tenant (its registry holds the tenant's record now) warms itself.
 */
@Injectable()
export class PlacementWarmer implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(PlacementWarmer.name);
  private off?: () => void;

  constructor(
    private readonly drivers: TierDrivers,
    private readonly registry: TenantRegistry,
    private readonly hints: TenantMoveHints,
  ) {}

  onModuleInit(): void {
    this.off = this.hints.on((hint) => this.onHint(hint));
  }

  onModuleDestroy(): void {
    this.off?.();
  }

  /** Opens `connections` of the placement's DataSource with a trivial query each, and gives them back idle. Throws when it cannot. */
  async warm(target: TenantPlacement, connections = WARM_CONNECTIONS): Promise<void> {
    const pool = await this.registry.findPool(target.poolId);
    if (!pool) throw new Error(`pool ${target.poolId} is not registered`);
    const driver = this.drivers.of(target.tier);
    // Leases in flight together: a silo DataSource grows one slot per unit in flight (SILO_POOL_MAX at most).
    const entered = await Promise.allSettled(Array.from({ length: connections }, () => driver.enter(target, pool)));
    const leases = entered.flatMap((e) => (e.status === 'fulfilled' ? [e.value] : []));
    try {
      const failed = entered.find((e) => e.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
      await Promise.all(leases.map((l) => l.dataSource.query(touchTablesSql(l.dataSource, target.schemaName))));
    } finally {
      for (const l of leases) driver.leave(l);
    }
  }

  private async onHint(hint: TenantMoveHint): Promise<void> {
    const record = this.registry.cachedRecordOf({ id: hint.tenantId, slug: hint.slug });
    if (!record) return;
    const target: TenantPlacement = { ...placementOf(record), tier: hint.tier, poolId: hint.poolId, schemaName: hint.schemaName, databaseName: hint.databaseName };
    try {
      await this.warm(target);
    } catch (err) {
      this.logger.warn(`warming tenant ${hint.tenantId}'s next home (${hint.tier}/${hint.poolId}) failed: ${(err as Error).message}`);
    }
  }
}

/**
 * A statement that plans over every tenant table of the home and reads no row: a new backend then
 * has the tables, their indexes and row-security policies in its caches before its first unit
 * (opening them costs a fresh backend several catalog reads per table).
 */
function touchTablesSql(dataSource: DataSource, schema: string): string {
  const tables = [...new Set(dataSource.entityMetadatas.map((m) => m.tableName))];
  if (!tables.length) return 'SELECT 1';
  return tables.map((t) => `SELECT 1 FROM ${quoteIdent(schema)}.${quoteIdent(t)} WHERE false`).join(' UNION ALL ');
}
