import { Inject, Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantMoveHints, TenantRegistry, type TenantMoveHint } from '#strata/control-plane';
import type { DataSource, QueryRunner } from 'typeorm';
import { placementOf, type TenantPlacement } from './tenant.types';
import { quoteIdent } from './tiers/tenant-tables.catalog';
import { TierDrivers } from './tiers/tier.drivers';

/** Connections the executor's own warm opens (its process runs the move, and at most a tenant's jobs). */
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

  /**
   * Connections a process that serves the tenant opens: as many as one tenant may hold
   * (SILO_POOL_MAX). The fence lets all the writes it held go at once; bench:move measured the
   * slowest of them at 83–98 ms with 4 warm connections (the rest opened cold in the burst) and
   * 45–55 ms with 10.
   */
  private readonly perTenant: number;

  constructor(
    private readonly drivers: TierDrivers,
    private readonly registry: TenantRegistry,
    private readonly hints: TenantMoveHints,
    @Inject(STRATA_CONFIG) config: StrataConfig,
  ) {
    this.perTenant = config.siloPoolMax;
  }

  onModuleInit(): void {
    this.off = this.hints.on((hint) => this.onHint(hint));
  }

  onModuleDestroy(): void {
    this.off?.();
  }

  /** Warms in progress, by placement: see `warm`. */
  private readonly warming = new Map<string, Promise<void>>();

  /**
   * Opens `connections` of the placement's DataSource, each touching the home's tables once, and
   * gives them back idle. Throws when it cannot. One warm per placement at a time: a process can be
   * asked several times for one cutover (the executor's own warm, the hint delivered in-process and
   * again by its own pub/sub subscription), and a later caller waits for the warm under way.
   */
  warm(target: TenantPlacement, connections = this.perTenant): Promise<void> {
    // Never more than a DataSource holds: each connection is held until the last is open, and one
    // past SILO_POOL_MAX would wait for a connection the warm itself holds (until the pool's timeout).
    connections = Math.min(connections, this.perTenant);
    const key = `${target.id}@${target.tier}/${target.poolId}/${target.schemaName}/${target.databaseName ?? ''}`;
    let running = this.warming.get(key);
    if (!running) {
      running = this.open(target, connections).finally(() => this.warming.delete(key));
      this.warming.set(key, running);
    }
    return running;
  }

  private async open(target: TenantPlacement, connections: number): Promise<void> {
    const driver = this.drivers.of(target.tier);
    // A shared DataSource (pool, bridge) has its connections open already, and holding SILO_POOL_MAX
    // of them (DATA_POOL_MAX is 10 by default) would make every other tenant's units wait.
    if (!driver.ownConnections) return;
    const pool = await this.registry.findPool(target.poolId);
    if (!pool) throw new Error(`pool ${target.poolId} is not registered`);
    // One connection after the other, each held until the last is open (so each lease opens a new
    // one: a silo DataSource grows one slot per unit in flight, SILO_POOL_MAX at most). A backend's
    // start and its first touch of every table cost a few ms of the server's CPU each; opened all
    // at once, the 8 + 4 of a pool → silo cutover took both of bench:move's 2 cores for ~100 ms
    // and every tenant's requests waited (neighbours' p99 40–64 ms against ~10 ms). One at a time
    // they take at most one core, and the warm still ends well before the fence (it starts with
    // `verifying`).
    // Each connection is held (a query runner) until the last is open: a touch run through the
    // DataSource would hand its connection back and the next one would reuse it.
    const leases: Array<Awaited<ReturnType<typeof driver.enter>>> = [];
    const held: QueryRunner[] = [];
    try {
      for (let i = 0; i < connections; i++) {
        const lease = await driver.enter(target, pool);
        leases.push(lease);
        const runner = lease.dataSource.createQueryRunner();
        held.push(runner);
        await runner.query(touchTablesSql(lease.dataSource, target.schemaName));
      }
    } finally {
      await Promise.all(held.map((r) => r.release().catch(() => undefined)));
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
 * One statement that inserts nothing into every tenant table of the home: a new backend then has
 * the tables, their indexes (an INSERT opens them even for no row) and row-security policies in its
 * caches before its first unit. bench:move measured the writes held by a cutover into a new silo at
 * 34–63 ms on connections warmed by a SELECT of each table and 18–28 ms by this. No row is written,
 * so no row-level trigger, check or policy runs; the tenant tables have no statement-level trigger.
 */
function touchTablesSql(dataSource: DataSource, schema: string): string {
  const tables = [...new Set(dataSource.entityMetadatas.map((m) => m.tableName))];
  if (!tables.length) return 'SELECT 1';
  const q = (t: string) => `${quoteIdent(schema)}.${quoteIdent(t)}`;
  return `WITH ${tables.map((t, i) => `w${i} AS (INSERT INTO ${q(t)} SELECT * FROM ${q(t)} WHERE false RETURNING 1)`).join(', ')} SELECT 1`;
}
