import type { EntityManager } from 'typeorm';
import type { QuotaMetric } from './plans.errors';

/** The UTC month a create counts towards, as `YYYY-MM`. */
export const usagePeriod = (at: Date = new Date()): string => at.toISOString().slice(0, 7);

/** The counter row of a metric (migrations/tenant/0009): per UTC month for invoices, else one row. */
export function counterOf(metric: QuotaMetric, period = usagePeriod()): string {
  switch (metric) {
    case 'projects':
      return 'projects';
    case 'webhookEndpoints':
      return 'webhook_endpoints';
    case 'storageBytes':
      return 'storage_bytes';
    case 'invoicesPerMonth':
      return `invoices:${period}`;
  }
}

/**
 * Shards of a counter (migrations/tenant/0010): `<counter>#0` … `<counter>#15`, and the marker
 * `<counter>#u` that says an unlimited count came in. 16 is enough that 32 concurrent creates of one
 * tenant rarely meet on one row.
 */
export const COUNTER_SHARDS = 16;

/**
 * One statement, the tenant home's `usage_reserve` (migrations/tenant/0010; PL/pgSQL because the
 * escrow's slow path is several statements under one set of row locks): no limit, add to shard
 * `$5`; a limit, take from that shard's allowance, or else, under the counter's and all its
 * shards' locks, check row + shards against the limit and hand the headroom out again. Exact at the
 * boundary. PlanLimits runs it just before the unit's COMMIT, so whatever it locks is held for the
 * commit only; a refusal rolls the unit back, and everything the statement changed with it.
 */
const RESERVE_SQL = `SELECT usage_reserve($1::uuid, $2, $3::bigint, $4::bigint, $5::int) AS reserved`;

const TAKE_SQL = `SELECT usage_take($1::uuid, $2, $3::bigint, $4::bigint, $5::int)`;
const USAGE_REFUSED = 'SU002';

/** Folds the shards into the counter's row and takes `$3` off it (never below 0). */
const RELEASE_SQL = `SELECT usage_release($1::uuid, $2, $3::bigint)`;

/** The counters' rows and their shards, summed per counter (the marker counts 0). */
const READ_SQL = `
  SELECT split_part(metric, '#', 1) AS metric, sum(used)::bigint AS used FROM usage_counters
   WHERE tenant_id = $1::uuid
     AND id = ANY(ARRAY(SELECT md5(m || s)::uuid FROM unnest($2::text[]) m, unnest(ARRAY[''] || ARRAY(SELECT '#' || g FROM generate_series(0, ${COUNTER_SHARDS - 1}) g)) s))
   GROUP BY 1`;

/**
 * The statement PlanLimits sends with the unit's COMMIT: the tenant home's `usage_take`
 * (migrations/tenant/0012), usage_reserve that raises SU002 instead of answering false, so the
 * COMMIT pipelined behind it rolls the unit back.
 */
export function takeStatement(tenantId: string, counter: string, amount: number, limit: number | null): { sql: string; params: unknown[] } {
  return { sql: TAKE_SQL, params: [tenantId, counter, amount, limit, Math.floor(Math.random() * COUNTER_SHARDS)] };
}

export function releaseStatement(tenantId: string, counter: string, amount: number): { sql: string; params: unknown[] } {
  return { sql: RELEASE_SQL, params: [tenantId, counter, amount] };
}

/** A usage_take refusal (SQLSTATE SU002). */
export function isUsageRefusal(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === USAGE_REFUSED;
}

/** True when reserved; false when it would pass the limit (the caller must roll its unit back). */
export async function reserveUsage(em: EntityManager, tenantId: string, counter: string, amount: number, limit: number | null): Promise<boolean> {
  const rows = (await em.query(RESERVE_SQL, [tenantId, counter, amount, limit, Math.floor(Math.random() * COUNTER_SHARDS)])) as Array<{ reserved: boolean }>;
  return rows[0]?.reserved === true;
}

export async function releaseUsage(em: EntityManager, tenantId: string, counter: string, amount: number): Promise<void> {
  await em.query(RELEASE_SQL, [tenantId, counter, amount]);
}

/** counter → used (bigint as a number: counts and bytes stay far below 2^53); absent counters are 0. */
export async function readUsage(em: EntityManager, tenantId: string, counters: string[]): Promise<Map<string, number>> {
  const rows = (await em.query(READ_SQL, [tenantId, counters])) as Array<{ metric: string; used: string }>;
  return new Map(rows.map((r) => [r.metric, Number(r.used)]));
}
