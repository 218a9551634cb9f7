import { Inject, Injectable } from '@nestjs/common';
import { escapeIdentifier, escapeLiteral } from 'pg';
import { SharedDataSources } from '../shared-data-sources.registry';
import { OwnerConnections } from './owner.connections';
import { SharedServerDriver } from './tier.base';
import {
  homeAddresses,
  slugIdent,
  TENANT_HOME_MIGRATOR,
  TenantHomeExistsError,
  type TenantHome,
  type TenantHomeMigrator,
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
  schemaVersionOf: (tenant) => tenant.schemaVersion,
};

@Injectable()
export class BridgeTierDriver extends SharedServerDriver implements TierDriver {
  constructor(
    shared: SharedDataSources,
    private readonly owners: OwnerConnections,
    @Inject(TENANT_HOME_MIGRATOR) private readonly migrate: TenantHomeMigrator,
  ) {
    super(BRIDGE_RULES, shared);
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
        await c.query(
          `BEGIN; CREATE SCHEMA ${escapeIdentifier(home.schema)}; COMMENT ON SCHEMA ${escapeIdentifier(home.schema)} IS ${escapeLiteral(claim)}; COMMIT`,
        );
      } catch (err) {
        await c.query('ROLLBACK').catch(() => undefined);
        // 42P06: created by someone else between the look and the CREATE.
        if ((err as { code?: string }).code === '42P06') throw new TenantHomeExistsError(home);
        throw err;
      }
      return true;
    });
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
