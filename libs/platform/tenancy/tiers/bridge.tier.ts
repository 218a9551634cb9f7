import { randomBytes } from 'node:crypto';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { SharedDataSources } from '../shared-data-sources.registry';
import { OwnerConnections } from './owner.connections';
import { SharedServerDriver } from './tier.base';
import {
  homeAddresses,
  slugIdent,
  TENANT_HOME_MIGRATOR,
  TENANT_SCHEMA_RENAMER,
  TenantHomeExistsError,
  type TenantHome,
  type TenantHomeMigrator,
  type TenantSchemaRenamer,
  type TierDriver,
  type TierRules,
} from './tier.driver';

/** Bridge: a schema `t_<slug>` of its own in the pool's database, chosen per unit of work on the shared DataSource. */
export const BRIDGE_RULES: TierRules = {
  tier: 'bridge',
  placementFor: (slug) => ({ schemaName: `t_${slugIdent(slug)}`, databaseName: null }),
  homeOf: (tenant, pool) => ({
    tier: 'bridge',
    poolId: pool.id,
    ...homeAddresses(pool),
    database: pool.database,
    poolDatabase: pool.database,
    schema: tenant.schemaName,
    exclusive: true,
  }),
  ownMigrationTarget: true,
  ownConnections: false,
  schemaVersionOf: (tenant) => tenant.schemaVersion,
};

/** A migrated spare schema, ready to become a tenant's home (renamed). */
export const SPARE_SCHEMA_PREFIX = 'strata_spare_';
/** A spare being built: never claimed (its migration may still run), renamed to SPARE_SCHEMA_PREFIX when done. */
const BUILDING_SCHEMA_PREFIX = 'strata_sparebuild_';
const READY_SPARES = `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'strata\\_spare\\_%' ORDER BY nspname`;

@Injectable()
export class BridgeTierDriver extends SharedServerDriver implements TierDriver, OnApplicationShutdown {
  private readonly logger = new Logger('BridgeSpares');
  /** One refill at a time per bridge database (host:port/database), shared by whoever asks meanwhile. */
  private readonly refills = new Map<string, Promise<void>>();
  private closed = false;

  constructor(
    shared: SharedDataSources,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(TENANT_SCHEMA_RENAMER) private readonly renameSql: TenantSchemaRenamer,
  ) {
    super(BRIDGE_RULES, shared);
  }

  async onApplicationShutdown(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.refills.values()]);
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

  /** CREATE SCHEMA and its mark commit together: a schema without the mark was never this claim's. */
  async createHome(home: TenantHome, claim: string): Promise<boolean> {
    return this.owners.with(home, async (c) => {
      const mark = await schemaMark(c, home.schema);
      if (mark !== undefined) {
        if (mark === claim) return true;
        throw new TenantHomeExistsError(home);
      }
      try {
        if (!(await this.claimSpare(c, home, claim))) {
          await c.query(
            `BEGIN; CREATE SCHEMA ${escapeIdentifier(home.schema)}; COMMENT ON SCHEMA ${escapeIdentifier(home.schema)} IS ${escapeLiteral(claim)}; COMMIT`,
          );
        }
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        // 42P06: created by someone else between the look and the CREATE.
        if ((err as { code?: string }).code === '42P06') throw new TenantHomeExistsError(home);
        throw err;
      } finally {
        this.refillSoon(home);
      }
      return true;
    });
  }

  /**
   * Renames a ready spare to the tenant's schema, with its claim, in one transaction: the home then
   * has every tenant table, migrated, and migrateHome() finds nothing (or, after a release, only the
   * newer steps) to run. False when there is none (or another onboarding took each one first).
   * Tables, functions and indexes resolve through search_path and the migration ledger lives inside
   * the schema; the one thing that names the schema, the tenant policies' WITH CHECK, is re-pinned
   * in the same transaction (TENANT_SCHEMA_RENAMER, from the migrator that wrote it).
   */
  private async claimSpare(c: import('pg').Client, home: TenantHome, claim: string): Promise<boolean> {
    if (this.config.bridgeSpareSchemas <= 0) return false;
    const spares = (await c.query<{ nspname: string }>(READY_SPARES)).rows;
    for (const { nspname } of spares) {
      try {
        await c.query(
          `BEGIN; ${this.renameSql(nspname, home.schema)}; COMMENT ON SCHEMA ${escapeIdentifier(home.schema)} IS ${escapeLiteral(claim)}; COMMIT`,
        );
        return true;
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        // 3F000: another onboarding renamed it first; try the next one.
        if ((err as { code?: string }).code !== '3F000') throw err;
      }
    }
    return false;
  }

  /** Brings the database's ready spares back to BRIDGE_SPARE_SCHEMAS, in the background. */
  private refillSoon(home: TenantHome): void {
    if (this.config.bridgeSpareSchemas <= 0 || this.closed) return;
    const key = `${home.host}:${home.port}/${home.database}`;
    if (this.refills.has(key)) return;
    const done = this.refill(home)
      .catch((err: unknown) => this.logger.warn(`bridge spare schemas not refilled on ${key}: ${(err as Error).message}`))
      .finally(() => this.refills.delete(key));
    this.refills.set(key, done);
  }

  /**
   * Builds each missing spare under a building name, migrated, then renames it ready. One refiller
   * per database across instances (a session advisory lock, released with the connection), so any
   * building schema found under the lock is a crashed refill's leftover, and is dropped.
   */
  private async refill(home: TenantHome): Promise<void> {
    await this.owners.with(
      home,
      async (c) => {
        const locked = await c.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('strata:bridge-spares')) AS ok`);
        if (!locked.rows[0].ok) return;
        const leftovers = await c.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE 'strata\\_sparebuild\\_%'`);
        for (const { nspname } of leftovers.rows) await c.query(`DROP SCHEMA ${escapeIdentifier(nspname)} CASCADE`);
        const missing = this.config.bridgeSpareSchemas - (await c.query(READY_SPARES)).rowCount!;
        for (let i = 0; i < missing && !this.closed; i++) {
          const suffix = randomBytes(6).toString('hex');
          const building = `${BUILDING_SCHEMA_PREFIX}${suffix}`;
          await c.query(`CREATE SCHEMA ${escapeIdentifier(building)}`);
          await this.migrate(c, building);
          await c.query(`BEGIN; ${this.renameSql(building, `${SPARE_SCHEMA_PREFIX}${suffix}`)}; COMMIT`);
        }
      },
      'strata-bridge-spares',
    );
  }

  async migrateHome(home: TenantHome): Promise<void> {
    await this.owners.with(home, (c) => this.migrate(c, home.schema));
  }

  async dropClaimedHome(home: TenantHome, _tenantId: string, claim: string): Promise<boolean> {
    return this.owners.with(home, async (c) => {
      if ((await schemaMark(c, home.schema)) !== claim) return false;
      await c.query(`DROP SCHEMA ${escapeIdentifier(home.schema)} CASCADE`);
      return true;
    });
  }
}

/** The schema's comment ('' when it has none), undefined when there is no such schema. */
async function schemaMark(c: import('pg').ClientBase, schema: string): Promise<string | undefined> {
  const { rows } = await c.query<{ mark: string | null }>(
    `SELECT obj_description(oid, 'pg_namespace') AS mark FROM pg_namespace WHERE nspname = $1`,
    [schema],
  );
  return rows.length ? (rows[0].mark ?? '') : undefined;
}
