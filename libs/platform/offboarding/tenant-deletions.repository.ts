import { Inject, Injectable } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { CONTROL_DATA_SOURCE, type TenantEntity } from '#strata/control-plane';
import { LeasedTable, rowsOf } from '#strata/leases';
import type { DeletionReportEntry, DeletionStep, TenantDeletionRecord } from './tenant-deletion.types';

const COLUMNS = `tenant_id, slug, tier, pool_id, schema_name, database_name, state, step, report, requested_by, requested_at,
  progress_at, finished_at, attempts, error`;
const LEASED = new LeasedTable({ table: 'control.tenant_deletions', key: 'tenant_id', open: `state = 'running'`, order: 'requested_at', columns: COLUMNS });
const CLAIM = LEASED.claim();
const RENEW = LEASED.renew();
const RELEASE = LEASED.release({ set: ['attempts = attempts + 1', 'error = $4'] });

type Row = Record<string, unknown>;
const toRecord = (r: Row): TenantDeletionRecord => ({
  tenantId: r.tenant_id as string,
  slug: r.slug as string,
  tier: r.tier as TenantDeletionRecord['tier'],
  poolId: r.pool_id as string,
  schemaName: r.schema_name as string,
  databaseName: (r.database_name as string | null) ?? null,
  state: r.state as TenantDeletionRecord['state'],
  step: r.step as DeletionStep,
  report: (r.report as DeletionReportEntry[]) ?? [],
  requestedBy: r.requested_by as string,
  requestedAt: r.requested_at as Date,
  progressAt: r.progress_at as Date,
  finishedAt: (r.finished_at as Date | null) ?? null,
  attempts: Number(r.attempts),
  error: (r.error as string | null) ?? null,
});

/**
 * control.tenant_deletions, one query per method. Every change an executor makes is conditional on
 * it still holding the lease (`lease_owner`), so a process that lost its claim changes nothing.
 */
@Injectable()
export class TenantDeletionsRepository {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  /**
   * The tenant becomes `deleting` and its deletion is recorded, in one transaction; a second request
   * finds the first one's row (and changes nothing). Null when the tenant cannot be deleted now
   * (still provisioning, already deleted, or gone). A `failed` tenant (its onboarding gave up) can
   * be: its home step then drops only a home its onboarding marked (README).
   */
  /** `started` runs in the transaction that starts the deletion (its audit entry commits with it), never for a repeat. */
  async request(
    tenantId: string,
    requestedBy: string,
    firstStep: DeletionStep,
    started: (em: EntityManager, deletion: TenantDeletionRecord) => Promise<unknown> = async () => undefined,
  ): Promise<TenantDeletionRecord | null> {
    return this.db.transaction(async (em) => {
      // A failed tenant is taken only with its onboarding's record saying so: that record is what
      // the home step reads to drop no more than a home the onboarding marked.
      const tenants: Row[] = await em.query(
        `SELECT t.id, t.slug, t.tier, t.pool_id, t.schema_name, t.database_name, t.status,
                coalesce(o.finished_at IS NOT NULL AND o.error IS NOT NULL, false) AS onboarding_failed
           FROM control.tenants t LEFT JOIN control.tenant_onboardings o ON o.tenant_id = t.id
          WHERE t.id = $1 FOR UPDATE OF t`,
        [tenantId],
      );
      const t = tenants[0];
      if (!t) return null;
      const existing = rowsOf(await em.query(`SELECT ${COLUMNS} FROM control.tenant_deletions WHERE tenant_id = $1`, [tenantId]));
      if (existing[0]) return toRecord(existing[0]);
      const deletable = t.status === 'active' || t.status === 'suspended' || (t.status === 'failed' && t.onboarding_failed === true);
      if (!deletable) return null;
      await em.query(`UPDATE control.tenants SET status = 'deleting', updated_at = now() WHERE id = $1`, [tenantId]);
      const rows = rowsOf(await em.query(
        `INSERT INTO control.tenant_deletions (tenant_id, slug, tier, pool_id, schema_name, database_name, step, requested_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${COLUMNS}`,
        [tenantId, t.slug, t.tier, t.pool_id, t.schema_name, t.database_name, firstStep, requestedBy],
      ));
      const deletion = toRecord(rows[0]);
      await started(em, deletion);
      return deletion;
    });
  }

  async find(tenantId: string): Promise<TenantDeletionRecord | null> {
    const rows = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_deletions WHERE tenant_id = $1`, [tenantId]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Claims the oldest running deletion nobody holds (or whose holder's lease ran out). */
  async claim(owner: string, leaseMs: number): Promise<TenantDeletionRecord | null> {
    const rows = rowsOf(await this.db.query(CLAIM, [owner, leaseMs]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Extends the lease; false when another process has taken the deletion over. */
  async renew(tenantId: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(RENEW, [tenantId, owner, leaseMs]));
    return rows.length === 1;
  }

  /** Gives the deletion back after a failed step, claimable again after `delayMs` (the retry's back-off). */
  async release(tenantId: string, owner: string, delayMs: number, error: string): Promise<void> {
    await this.db.query(RELEASE, [tenantId, owner, delayMs, error]);
  }

  /**
   * `step` is finished: its report entries are appended and `next` becomes the step to run, in one
   * row; conditional on the lease and on `step` still being current (a step is recorded once).
   * `em`: inside the transaction of a step that only touches the control plane.
   */
  async advance(
    tenantId: string,
    owner: string,
    step: DeletionStep,
    next: DeletionStep,
    entries: DeletionReportEntry[],
    em?: EntityManager,
  ): Promise<TenantDeletionRecord | null> {
    const rows = rowsOf(await (em ?? this.db).query(
      `UPDATE control.tenant_deletions
          SET step = $4, report = report || $5::jsonb, progress_at = now(), error = NULL,
              state = CASE WHEN $4 = 'done' THEN 'done' ELSE state END,
              finished_at = CASE WHEN $4 = 'done' THEN now() END,
              lease_owner = CASE WHEN $4 = 'done' THEN NULL ELSE lease_owner END,
              lease_until = CASE WHEN $4 = 'done' THEN NULL ELSE lease_until END
        WHERE tenant_id = $1 AND lease_owner = $2 AND step = $3 AND state = 'running'
        RETURNING ${COLUMNS}`,
      [tenantId, owner, step, next, JSON.stringify(entries)],
    ));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Running deletions with no step finished for `quietMs` (the stuck gauge). */
  async countStuck(quietMs: number): Promise<number> {
    const rows: Array<{ n: number }> = await this.db.query(
      `SELECT count(*)::int AS n FROM control.tenant_deletions
        WHERE state = 'running' AND progress_at < now() - make_interval(secs => $1 / 1000.0)`,
      [quietMs],
    );
    return rows[0]?.n ?? 0;
  }

  /**
   * Whether the tenant's onboarding ended failed: then its home may be someone else's (a schema or
   * database of its name that was there first). Read from the onboarding's record, which stays
   * until the `control_plane` step, so a resumed `home` step answers the same.
   */
  async onboardingFailed(tenantId: string): Promise<boolean> {
    const rows: Array<{ failed: boolean }> = await this.db.query(
      `SELECT (finished_at IS NOT NULL AND error IS NOT NULL) AS failed FROM control.tenant_onboardings WHERE tenant_id = $1`,
      [tenantId],
    );
    return rows[0]?.failed === true;
  }

  /** The tenant record as it is now (any status). */
  async tenant(tenantId: string): Promise<TenantEntity | null> {
    const rows: TenantEntity[] = await this.db.query(`SELECT id, slug, status FROM control.tenants WHERE id = $1`, [tenantId]);
    return rows[0] ?? null;
  }
}
