import { Inject, Injectable } from '@nestjs/common';
import { Client, escapeIdentifier } from 'pg';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { PoolEntity } from '#strata/control-plane';
import { SiloDataSourceCache } from '../silo-data-source.cache';
import { serverKey } from '../tenant-data-source.factory';
import type { TenantPlacement } from '../tenant.types';
import { OwnerConnections } from './owner.connections';
import { RulesBackedDriver } from './tier.base';
import { TenantPlacementError } from '../tenancy.errors';
import {
  SHARED_SCHEMA,
  slugIdent,
  TENANT_HOME_MIGRATOR,
  type TenantHome,
  type TenantHomeMigrator,
  type TierDriver,
  type TierLease,
  type TierRules,
} from './tier.driver';

const PING_TIMEOUT_MS = 2000;

/**
 * Silo: a database `strata_t_<slug>` of its own on the pool's server (the pool's `database` is the
 * maintenance database CREATE DATABASE runs from), tables in its `shared` schema.
 */
export const SILO_RULES: TierRules = {
  tier: 'silo',
  placementFor: (slug) => ({ schemaName: SHARED_SCHEMA, databaseName: `strata_t_${slugIdent(slug)}` }),
  homeOf: (tenant, pool) => {
    if (!tenant.databaseName) throw new TenantPlacementError(`silo tenant ${(tenant as { id?: string }).id ?? ''} has no database`);
    return { tier: 'silo', poolId: pool.id, host: pool.host, port: pool.port, database: tenant.databaseName, poolDatabase: pool.database, schema: tenant.schemaName, exclusive: true };
  },
  ownMigrationTarget: true,
  schemaVersionOf: (tenant) => tenant.schemaVersion,
};

@Injectable()
export class SiloTierDriver extends RulesBackedDriver implements TierDriver {
  constructor(
    private readonly silos: SiloDataSourceCache,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
  ) {
    super(SILO_RULES);
  }

  /**
   * The silo DataSource cache is keyed by the placement (tenant and database address), not by the
   * tenant alone: after a move to another database the old entry is never handed out again and
   * idles out, instead of serving the tenant from its old home.
   */
  enter(tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease> {
    const home = this.homeOf(tenant, pool);
    return this.silos.acquire(`${tenant.id}@${serverKey(home)}`, home);
  }

  leave(lease: TierLease): void {
    lease.release();
  }

  /** CREATE DATABASE fails (42P04) when the database exists: a home is never adopted by accident. */
  async provision(home: TenantHome): Promise<void> {
    const pool = this.maintenanceOf(home);
    await this.owners.with(pool, (c) => c.query(`CREATE DATABASE ${escapeIdentifier(home.database)}`));
    await this.owners.with(home, (c) => this.migrate(c, home.schema));
  }

  async drop(home: TenantHome): Promise<void> {
    const pool = this.maintenanceOf(home);
    await this.owners.with(pool, (c) => c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(home.database)} WITH (FORCE)`));
  }

  /** Silo servers hold no shared DataSource: ping the maintenance database as the app role. */
  async ping(pool: PoolEntity): Promise<Record<string, unknown>> {
    const client = new Client({
      host: pool.host,
      port: pool.port,
      database: pool.database,
      user: this.config.appDbUser,
      password: this.config.appDbPassword,
      connectionTimeoutMillis: PING_TIMEOUT_MS,
    });
    client.on('error', () => undefined);
    await client.connect();
    try {
      await client.query('SELECT 1');
    } finally {
      await client.end();
    }
    const s = this.silos.stats();
    return { kind: pool.kind, siloDataSources: s.size, siloConnectionsReserved: s.reservedConnections, siloConnectionCap: s.maxConnections };
  }

  private maintenanceOf(home: TenantHome): { host: string; port: number; database: string } {
    return { host: home.host, port: home.port, database: home.poolDatabase };
  }
}
