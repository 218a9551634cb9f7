import type { ClientBase } from 'pg';
import { SHARED_SCHEMA, tierRules } from '#strata/tenancy/platform';

export type TargetKind = 'pool' | 'bridge' | 'silo';

/** One place the tenant migrations run into: a schema in a database on a server (its direct address: migrations are session work). */
export interface FleetTarget {
  /** Stable id in reports and the ledger: `pool:<poolId>`, `bridge:<slug>`, `silo:<slug>`. */
  key: string;
  kind: TargetKind;
  poolId: string;
  host: string;
  port: number;
  database: string;
  schema: string;
  tenantId?: string;
  tenantSlug?: string;
}

// A pool's direct address (migrations/control/0004; directAddressOf in SQL): migrations take advisory
// locks and use pg_temp helpers, which a transaction-mode pooler in front of the server cannot carry.
const DIRECT_ADDRESS = (p: string) => `coalesce(${p}.direct_host, ${p}.host) AS host, coalesce(${p}.direct_port, ${p}.port) AS port`;

export const serverOf = (t: Pick<FleetTarget, 'host' | 'port'>): string => `${t.host}:${t.port}`;

/**
 * Every target of the fleet, from the control plane: the shared schema of each pool-kind pool, the
 * schema of each bridge tenant, the database of each silo tenant. Deleted tenants are skipped.
 */
export async function listFleetTargets(control: ClientBase, filter: { tenantSlug?: string } = {}): Promise<FleetTarget[]> {
  const pools = await control.query<{ id: string; host: string; port: number; database: string }>(
    `SELECT id, ${DIRECT_ADDRESS('pools')}, database FROM control.pools WHERE kind = 'pool' ORDER BY id`,
  );
  const tenants = await control.query<{
    id: string;
    slug: string;
    tier: TargetKind;
    pool_id: string;
    host: string;
    port: number;
    pool_database: string;
    schema_name: string;
    database_name: string | null;
  }>(
    `SELECT t.id, t.slug, t.tier, t.pool_id, ${DIRECT_ADDRESS('p')}, p.database AS pool_database, t.schema_name, t.database_name
       FROM control.tenants t JOIN control.pools p ON p.id = t.pool_id
      -- Homes that are live: a provisioning tenant's is made (and migrated) by its onboarding, a failed
      -- one's was removed or never was; migrating either would create the schema the onboarding owns.
      WHERE t.status NOT IN ('provisioning', 'failed', 'deleting', 'deleted')
      ORDER BY t.tier, t.slug`,
  );
  const targets: FleetTarget[] = pools.rows.map((p) => ({
    key: `pool:${p.id}`,
    kind: 'pool',
    poolId: p.id,
    host: p.host,
    port: p.port,
    database: p.database,
    schema: 'shared',
  }));
  for (const t of tenants.rows) {
    if (t.tier === 'pool') continue; // served by its pool's shared schema
    targets.push({
      key: `${t.tier}:${t.slug}`,
      kind: t.tier,
      poolId: t.pool_id,
      host: t.host,
      port: t.port,
      database: t.tier === 'silo' ? t.database_name! : t.pool_database,
      schema: t.schema_name,
      tenantId: t.id,
      tenantSlug: t.slug,
    });
  }
  if (!filter.tenantSlug) return targets;
  const tenant = tenants.rows.find((t) => t.slug === filter.tenantSlug);
  if (!tenant) throw new Error(`no tenant ${filter.tenantSlug}`);
  const key = tenant.tier === 'pool' ? `pool:${tenant.pool_id}` : `${tenant.tier}:${tenant.slug}`;
  return targets.filter((t) => t.key === key);
}
