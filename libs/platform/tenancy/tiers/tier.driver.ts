import type { DataSource } from 'typeorm';
import { directAddressOf, type PoolAddress, type PoolEntity, type Tier } from '#strata/control-plane';
import type { TenantPlacement } from '../tenant.types';

/** The schema every tenant table lives in on pool homes and inside silo databases. */
export const SHARED_SCHEMA = 'shared';


/** Slugs have no underscores, so `-` → `_` is injective: one identifier per slug. */
export const slugIdent = (slug: string): string => slug.replace(/-/g, '_');

/** Names of a tenant's home, derived once (onboarding, a move's target) and kept on its record. */
export interface HomeNames {
  schemaName: string;
  databaseName: string | null;
}

/** Where one tenant's rows physically are, as the owner role sees it. */
export interface TenantHome {
  tier: Tier;
  poolId: string;
  /**
   * The server itself (its pool's direct address): where owner sessions go — provisioning,
   * migrations, drops, a move's copy and fencing — and what tells two homes apart.
   */
  host: string;
  port: number;
  /**
   * Where units of work reach the home (its pool's host/port): a connection pooler in front of the
   * server, or the server itself when there is none. Only the data plane connects here.
   */
  dataHost: string;
  dataPort: number;
  database: string;
  schema: string;
  /** The database its pool names: the same as `database`, or for silo the maintenance database CREATE DATABASE runs from. */
  poolDatabase: string;
  /**
   * Only this tenant lives here (a bridge schema, a silo database): dropping the home drops nothing
   * else. A shared home (the pool's `shared` schema) is left by deleting the tenant's rows.
   */
  exclusive: boolean;
}

/** What a home is derived from: its pool's id, database and both addresses. */
export type HomePool = Pick<PoolEntity, 'id' | 'database'> & PoolAddress;

/** A home's two addresses from its pool's: owner sessions direct, units of work through host/port. */
export function homeAddresses(pool: HomePool): Pick<TenantHome, 'host' | 'port' | 'dataHost' | 'dataPort'> {
  const direct = directAddressOf(pool);
  return { host: direct.host, port: direct.port, dataHost: pool.host, dataPort: pool.port };
}

/** A home's address for units of work: its pool's host/port (a pooler's, or the server's). */
export const dataAddressOf = (home: TenantHome): { host: string; port: number; database: string } => ({
  host: home.dataHost,
  port: home.dataPort,
  database: home.database,
});

/** createHome found a schema or database of the home's name that this onboarding did not create. */
export class TenantHomeExistsError extends Error {
  constructor(readonly home: Pick<TenantHome, 'tier' | 'database' | 'schema'>) {
    super(home.tier === 'silo' ? `database ${home.database} already exists` : `schema ${home.schema} already exists in database ${home.database}`);
    this.name = 'TenantHomeExistsError';
  }
}

/** The mark an onboarding leaves on a home it created, so a retry recognises it and cleanup drops only it. */
export const homeClaimOf = (tenantId: string): string => `strata:onboarding:${tenantId}`;

/** What a driver hands the connection manager: where to run, and how to give it back. */
export interface TierLease {
  dataSource: DataSource;
  release(): void;
}

/** The part of a tier that is pure knowledge: usable without Nest (CLIs, the fleet runner). */
export interface TierRules {
  readonly tier: Tier;
  /** Home names of a new tenant of this tier. */
  placementFor(slug: string): HomeNames;
  /** The tenant's home on `pool` (its server), from the names on its record. */
  homeOf(tenant: HomeNames, pool: HomePool): TenantHome;
  /**
   * Whether the tenant's home is a fleet-migration target of its own (`<tier>:<slug>`); when not,
   * its pool's shared target (`pool:<poolId>`) migrates it.
   */
  readonly ownMigrationTarget: boolean;
  /**
   * Whether a home has connections of its own (a DataSource per home): a process then holds none to
   * a home new to it, and a move's cutover warms them first (PlacementWarmer). A home on a shared
   * DataSource is reached through connections its server's other tenants keep open.
   */
  readonly ownConnections: boolean;
  /** The tenant schema version its home has reached (own targets keep it on the tenant record). */
  schemaVersionOf(tenant: { schemaVersion: string }, pool: { schemaVersion: string }): string;
}

/**
 * Everything one tier knows, behind one interface (as stancl/tenancy keeps each storage kind in one
 * database-manager class): its names, where a tenant's home is, how to create and drop it, how a
 * unit of work reaches it, how to tell its servers are up. The connection manager, onboarding, the
 * fleet runner, readiness and moves are written once against this; a fourth tier is one more file.
 *
 * Copying rows between homes and fencing a home need no tier of their own: every home holds the
 * same tables (one table shape, three placements), so libs/platform/moves does both against `TenantHome`.
 */
export interface TierDriver extends TierRules {
  /** A DataSource for one unit of work of `tenant`, whose pool `pool` is. */
  enter(tenant: TenantPlacement, pool: PoolEntity): Promise<TierLease>;
  leave(lease: TierLease): void;
  /** Creates the home (schema or database) and migrates it to this release, as the owner; fails if it exists. */
  provision(home: TenantHome): Promise<void>;
  /** Removes the home, or the tenant's rows from a shared one, as the owner. Idempotent. */
  drop(home: TenantHome, tenantId: string): Promise<void>;
  /**
   * Onboarding's create-if-absent-and-say-so: creates the home marked with `claim` (a comment on the
   * schema or database) and answers true; answers true again when the home exists with that mark
   * (an earlier attempt of the same onboarding made it); throws TenantHomeExistsError when a home of
   * that name exists without it, untouched. A shared home (pool) is never created here: false.
   */
  createHome(home: TenantHome, claim: string, pool: PoolEntity): Promise<boolean>;
  /** Runs the tenant migrations into the home as the owner (only the missing ones: safe to run again). */
  migrateHome(home: TenantHome): Promise<void>;
  /**
   * Undoes createHome after a failed onboarding: drops the home only if it carries `claim`, or deletes
   * the tenant's rows from a shared one. Never removes what another call created. Idempotent.
   * Answers whether it removed anything of the tenant's (false: no such home, or not marked `claim`).
   */
  dropClaimedHome(home: TenantHome, tenantId: string, claim: string): Promise<boolean>;
  /** Readiness of one server of this kind. */
  ping(pool: PoolEntity): Promise<Record<string, unknown>>;
}

/** Injection token of the tier drivers, one per tier (TierDrivers looks them up). */
export const TIER_DRIVER_LIST = Symbol('TIER_DRIVER_LIST');

/**
 * How a tier migrates a home it created: handed to tenancy by libs/platform/migrator (MigratorModule), so
 * tenancy never reads migration files itself. Runs every tenant migration into `schema` over an
 * owner connection and returns the version reached.
 */
export type TenantHomeMigrator = (client: import('pg').ClientBase, schema: string) => Promise<string>;
export const TENANT_HOME_MIGRATOR = Symbol('TENANT_HOME_MIGRATOR');

/**
 * The statements that rename a migrated tenant schema `from` → `to`, to run inside the caller's
 * transaction: ALTER SCHEMA, and re-pinning what names the schema (the tenant policies' WITH CHECK
 * pins the schema it was created in). From libs/platform/migrator, which owns that policy's shape.
 */
export type TenantSchemaRenamer = (from: string, to: string) => string;
export const TENANT_SCHEMA_RENAMER = Symbol('TENANT_SCHEMA_RENAMER');

/** The tenant schema version this release's code needs (the newest file in migrations/tenant), from libs/platform/migrator. */
export const TENANT_SCHEMA_VERSION = Symbol('TENANT_SCHEMA_VERSION');
