import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Client, escapeIdentifier, escapeLiteral } from 'pg';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import type { PoolEntity } from '#strata/control-plane';
import { SiloDataSourceCache } from '../silo-data-source.cache';
import { serverKey } from '../tenant-data-source.factory';
import type { TenantPlacement } from '../tenant.types';
import { OwnerConnections } from './owner.connections';
import { RulesBackedDriver } from './tier.base';
import { TenantPlacementError } from '../tenancy.errors';
import {
  dataAddressOf,
  homeAddresses,
  SHARED_SCHEMA,
  slugIdent,
  TENANT_HOME_MIGRATOR,
  TENANT_SCHEMA_VERSION,
  TenantHomeExistsError,
  type TenantHome,
  type TenantHomeMigrator,
  type TierDriver,
  type TierLease,
  type TierRules,
} from './tier.driver';

const PING_TIMEOUT_MS = 2000;

/**
 * The prepared template new silo databases of this release are copied from, per app role (its
 * grants are inside). `strata_t_0…`: a tenant's database name continues with its slug, which
 * starts with a letter, so no slug can name it.
 */
export const siloTemplateName = (schemaVersion: string, appRole: string): string => `strata_t_0tpl_${schemaVersion}_${appRole}`.slice(0, 63);

/** The silo DataSource cache's key of a placement: the tenant and the address its units connect to. */
export const siloLeaseKey = (tenantId: string, address: { host: string; port: number; database: string }): string =>
  `${tenantId}@${serverKey(address)}`;

/**
 * Silo: a database `strata_t_<slug>` of its own on the pool's server (the pool's `database` is the
 * maintenance database CREATE DATABASE runs from), tables in its `shared` schema.
 */
export const SILO_RULES: TierRules = {
  tier: 'silo',
  placementFor: (slug) => ({ schemaName: SHARED_SCHEMA, databaseName: `strata_t_${slugIdent(slug)}` }),
  homeOf: (tenant, pool) => {
    if (!tenant.databaseName) throw new TenantPlacementError(`silo tenant ${(tenant as { id?: string }).id ?? ''} has no database`);
    return { tier: 'silo', poolId: pool.id, ...homeAddresses(pool), database: tenant.databaseName, poolDatabase: pool.database, schema: tenant.schemaName, exclusive: true };
  },
  ownMigrationTarget: true,
  ownConnections: true,
  schemaVersionOf: (tenant) => tenant.schemaVersion,
};

@Injectable()
export class SiloTierDriver extends RulesBackedDriver implements TierDriver, OnApplicationShutdown {
  constructor(
    private readonly silos: SiloDataSourceCache,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(TENANT_SCHEMA_VERSION) private readonly schemaVersion: string,
  ) {
    super(SILO_RULES);
  }

  private readonly logger = new Logger('SiloTierDriver');
  /** Template builds under way in this process, by server and template: one at a time. */
  private readonly building = new Map<string, Promise<void>>();

  /**
   * The silo DataSource cache is keyed by the placement (tenant and database address), not by the
   * tenant alone: after a move to another database the old entry is never handed out again and
   * idles out, instead of serving the tenant from its old home.
   */
  enter(tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease> {
    const address = dataAddressOf(this.homeOf(tenant, pool));
    return this.silos.acquire(siloLeaseKey(tenant.id, address), address);
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

  /**
   * CREATE DATABASE cannot run in a transaction, so the mark follows it in the same session: a
   * crash between the two leaves an unmarked database, which a retry refuses (and cleanup keeps)
   * rather than adopt or drop something it cannot prove it made.
   *
   * A new silo is copied from a prepared template of this release (already migrated, grants
   * included), so the migrate step finds nothing left to do; while the server has none yet, the
   * database starts empty (template0) and a template is built in the background.
   */
  async createHome(home: TenantHome, claim: string): Promise<boolean> {
    const maintenance = this.maintenanceOf(home);
    const template = siloTemplateName(this.schemaVersion, this.config.appDbUser);
    const ready = await this.owners.with(maintenance, async (c) => {
      const mark = await databaseMark(c, home.database);
      if (mark !== undefined) {
        if (mark === claim) return true;
        throw new TenantHomeExistsError(home);
      }
      // Ready once it refuses connections (the build's last step): CREATE DATABASE copies only a
      // database nobody is connected to.
      const { rows } = await c.query<{ ok: boolean }>(`SELECT NOT datallowconn AS ok FROM pg_database WHERE datname = $1`, [template]);
      const from = rows[0]?.ok ? ` TEMPLATE ${escapeIdentifier(template)}` : '';
      try {
        await c.query(`CREATE DATABASE ${escapeIdentifier(home.database)}${from}`);
      } catch (err) {
        // 42P04: created by someone else between the look and the CREATE.
        if ((err as { code?: string }).code === '42P04') throw new TenantHomeExistsError(home);
        throw err;
      }
      await c.query(`COMMENT ON DATABASE ${escapeIdentifier(home.database)} IS ${escapeLiteral(claim)}`);
      return rows[0]?.ok === true;
    });
    if (!ready) this.buildTemplate(maintenance, template, home.schema);
    return true;
  }

  /**
   * Builds `template` on the server in the background: a database migrated like a new silo's,
   * under a temporary name (renamed only once complete), then closed to connections. A
   * session-level advisory lock keeps two processes from building the same one; a build a crash
   * left half-done is dropped by the next (its name is the template's own, never a tenant's), and
   * one that stopped between the rename and the close is closed (the name means complete).
   */
  private buildTemplate(maintenance: { host: string; port: number; database: string }, template: string, schema: string): void {
    const key = `${serverKey(maintenance)}/${template}`;
    if (this.building.has(key)) return;
    const partial = `${template.slice(0, 61)}_b`;
    const run = this.owners
      .with(maintenance, async (c) => {
        const { rows } = await c.query<{ got: boolean }>(`SELECT pg_try_advisory_lock(hashtext($1)) AS got`, [`strata:silo-template:${template}`]);
        if (!rows[0].got) return;
        const exists = await c.query(`SELECT 1 FROM pg_database WHERE datname = $1`, [template]);
        if (exists.rowCount) {
          await c.query(`ALTER DATABASE ${escapeIdentifier(template)} WITH ALLOW_CONNECTIONS false`);
          return;
        }
        await c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(partial)} WITH (FORCE)`);
        await c.query(`CREATE DATABASE ${escapeIdentifier(partial)}`);
        await this.owners.with({ ...maintenance, database: partial }, (t) => this.migrate(t, schema));
        await c.query(`ALTER DATABASE ${escapeIdentifier(partial)} RENAME TO ${escapeIdentifier(template)}`);
        // Not IS_TEMPLATE: its owner may copy it anyway, and an ordinary DROP DATABASE (test and
        // bench cleanup, an operator) still removes it.
        await c.query(`ALTER DATABASE ${escapeIdentifier(template)} WITH ALLOW_CONNECTIONS false`);
        await c.query(`COMMENT ON DATABASE ${escapeIdentifier(template)} IS 'strata: template of new silo databases (schema version ${this.schemaVersion})'`);
      })
      .catch((err: unknown) => this.logger.warn(`could not prepare the silo template ${template}: ${(err as Error).message}`))
      .finally(() => this.building.delete(key));
    this.building.set(key, run);
  }

  /** A template build under way finishes (or fails) before the process lets go of its servers. */
  async onApplicationShutdown(): Promise<void> {
    await Promise.all(this.building.values());
  }

  async migrateHome(home: TenantHome): Promise<void> {
    await this.owners.with(home, (c) => this.migrate(c, home.schema));
  }

  async dropClaimedHome(home: TenantHome, _tenantId: string, claim: string): Promise<boolean> {
    return this.owners.with(this.maintenanceOf(home), async (c) => {
      if ((await databaseMark(c, home.database)) !== claim) return false;
      await c.query(`DROP DATABASE ${escapeIdentifier(home.database)} WITH (FORCE)`);
      return true;
    });
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

  /** The pool's maintenance database, at the server's direct address (CREATE/DROP DATABASE are owner session work). */
  private maintenanceOf(home: TenantHome): { host: string; port: number; database: string } {
    return { host: home.host, port: home.port, database: home.poolDatabase };
  }
}

/** The database's comment ('' when it has none), undefined when there is no such database. */
async function databaseMark(c: import('pg').ClientBase, database: string): Promise<string | undefined> {
  const { rows } = await c.query<{ mark: string | null }>(
    `SELECT shobj_description(oid, 'pg_database') AS mark FROM pg_database WHERE datname = $1`,
    [database],
  );
  return rows.length ? (rows[0].mark ?? '') : undefined;
}
