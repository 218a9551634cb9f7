import { Inject, Injectable, Optional } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { LeasedExecutor, LeaseKeeper, LeaseLost } from '#strata/leases';
import {
  AUDIT_LOG,
  CONTROL_DATA_SOURCE,
  PoolEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantEntity,
  TenantRegistry,
  type AuditTrail,
  type TenantChangePublisher,
  type Tier,
} from '#strata/control-plane';
import { homeClaimOf, OwnerConnections, placementOf, quoteIdent, SiloDataSourceCache, TenantContext, tenantTablesOf, TierDrivers, type TenantHome } from '#strata/tenancy/platform';
import { REDIS_CLIENT, TenantCache, type RedisClient } from '#strata/cache';
import { purgeTenantBuckets } from '#strata/rate-limits';
import { ExportsService } from '#strata/exports';
import { STORAGE_OPTIONS, TenantStorage, type ResolvedStorageOptions } from '#strata/storage';
import { TenantQueuedJobs } from '#strata/jobs';
import { TenantDeletionsRepository } from './tenant-deletions.repository';
import { DELETION_STEPS, type DeletionReportEntry, type DeletionStep, type TenantDeletionRecord } from './tenant-deletion.types';

/** Thrown by a test hook: the executor drops the deletion on the spot, as if its process died (lease kept). */
export class OffboardingKilled extends Error {}

export interface OffboardingExecutorHooks {
  /** Called before each step runs, and after it ran but before it is recorded (`after`: a crash there re-runs the step). */
  onStep?(step: DeletionStep, deletion: TenantDeletionRecord, when: 'before' | 'after'): void | Promise<void>;
}
export const OFFBOARDING_EXECUTOR_HOOKS = Symbol('OFFBOARDING_EXECUTOR_HOOKS');

/** A step that cannot finish yet (a job still running, a move still open): retried after a back-off. */
class NotYet extends Error {}

const POLL_MS = 500;
/** Steps that only touch the control plane: run in one transaction with their record. */
const CONTROL_PLANE_STEPS: readonly DeletionStep[] = ['control_plane', 'tombstone'];
/** Back-off of a failing step: 0.5 s, 1 s, 2 s … capped at 30 s. It never gives up: a stuck deletion shows in /metrics. */
const backoffMs = (attempts: number) => Math.min(500 * 2 ** Math.min(attempts, 6), 30_000);

interface Home {
  tier: Tier;
  home: TenantHome;
  /** Where it came from, for the report. */
  source: string;
}

/**
 * Runs offboardings: claims a running deletion with a lease in control.tenant_deletions, renews it
 * while it works, and runs the steps from wherever the row stands. Each step is idempotent and is
 * recorded (with its report entries) in the same row update that moves to the next step, so a
 * process that dies mid-step leaves the step to be run again by the next claimer. Runs in every API
 * process with MOVES_EXECUTOR on (the flag that lets a process run control-plane state machines).
 */
@Injectable()
export class OffboardingExecutor extends LeasedExecutor {
  constructor(
    private readonly deletions: TenantDeletionsRepository,
    private readonly drivers: TierDrivers,
    private readonly owners: OwnerConnections,
    private readonly registry: TenantRegistry,
    private readonly silos: SiloDataSourceCache,
    private readonly context: TenantContext,
    private readonly cache: TenantCache,
    private readonly storage: TenantStorage,
    @Inject(STORAGE_OPTIONS) private readonly storageOptions: ResolvedStorageOptions,
    private readonly jobs: TenantQueuedJobs,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
    @Optional() @Inject(REDIS_CLIENT) private readonly redis?: RedisClient,
    // From ExportsModule (global) in the API: the tenant's export archives, kept under platform keys.
    @Optional() private readonly exportArchives?: ExportsService,
    @Optional() @Inject(OFFBOARDING_EXECUTOR_HOOKS) private readonly hooks?: OffboardingExecutorHooks,
  ) {
    super('offboarding executor', 'Offboarding', POLL_MS);
  }

  protected polls(): boolean {
    return this.config.movesExecutor;
  }

  /** Claims and runs deletions until none is claimable (tests call it directly). */
  async drain(): Promise<void> {
    await this.poll.drain(() => this.deletions.claim(this.owner, this.config.moveLeaseMs), (deletion) => this.execute(deletion));
  }

  /** Runs one claimed deletion as far as it goes. */
  async execute(claimed: TenantDeletionRecord): Promise<void> {
    let deletion = claimed;
    const lease = LeaseKeeper.start({ leaseMs: this.config.moveLeaseMs, renew: () => this.deletions.renew(deletion.tenantId, this.owner, this.config.moveLeaseMs) });
    try {
      while (deletion.step !== 'done') {
        const current = deletion;
        await this.hooks?.onStep?.(current.step, current, 'before');
        // Before every destructive step: confirmed in the database, not only in memory.
        await lease.confirm();
        const next = DELETION_STEPS[DELETION_STEPS.indexOf(current.step) + 1];
        const record = async (entries: DeletionReportEntry[], em?: EntityManager) => {
          await this.hooks?.onStep?.(current.step, current, 'after');
          const advanced = await this.deletions.advance(current.tenantId, this.owner, current.step, next, entries, em);
          if (!advanced) throw new LeaseLost();
          return advanced;
        };
        if (CONTROL_PLANE_STEPS.includes(current.step)) {
          // Its removals and its record commit together: a crash leaves both undone, so the counts stay exact.
          deletion = await this.control.transaction(async (em) => {
            const advanced = await record(await this.controlPlaneStep(current, em), em);
            // The report goes into the audit log with the tombstone: kept with every other admin action.
            if (current.step === 'tombstone') {
              await this.audit.record(
                { action: 'tenant.deleted', tenantId: current.tenantId, actor: { type: 'system' }, details: { slug: current.slug, requestedBy: current.requestedBy, report: advanced.report } },
                em,
              );
            }
            return advanced;
          });
          this.registry.invalidateTenant({ id: current.tenantId, slug: current.slug });
          await this.changes?.publishTenantChanged({ id: current.tenantId, slug: current.slug });
        } else {
          deletion = await record(await this.runStep(current));
        }
      }
      this.logger.log(`tenant ${deletion.tenantId} (${deletion.slug}) deleted; report in control.tenant_deletions`);
    } catch (err) {
      if (err instanceof OffboardingKilled || err instanceof LeaseLost) {
        this.logger.warn(`deletion of tenant ${deletion.tenantId}: ${err instanceof LeaseLost ? 'lease lost' : 'executor stopped'}; another executor resumes it`);
        return;
      }
      const message = (err as Error)?.message ?? String(err);
      const log = err instanceof NotYet ? 'log' : 'warn';
      this.logger[log](`deletion of tenant ${deletion.tenantId}: step ${deletion.step} not finished (${message}); retrying`);
      await this.deletions.release(deletion.tenantId, this.owner, backoffMs(deletion.attempts), message).catch(() => undefined);
    } finally {
      lease.stop();
    }
  }

  private runStep(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    switch (d.step) {
      case 'jobs':
        return this.removeJobs(d);
      case 'files':
        return this.removeFiles(d);
      case 'cache':
        return this.removeCacheKeys(d);
      case 'retained_homes':
        return this.removeRetainedHomes(d);
      case 'home':
        return this.removeHome(d);
      case 'control_plane':
      case 'tombstone':
      case 'done':
        return Promise.resolve([]);
    }
  }

  private controlPlaneStep(d: TenantDeletionRecord, em: EntityManager): Promise<DeletionReportEntry[]> {
    return d.step === 'control_plane' ? this.removeControlPlaneRows(d, em) : this.tombstone(d, em);
  }

  /** Queued, delayed (parked), failed and finished jobs, job schedulers and fairness counters, on every queue. */
  private async removeJobs(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    let purge;
    try {
      purge = await this.jobs.purge(d.tenantId);
    } catch (err) {
      if (!this.config.redisUrl) return [entry('jobs', 'bullmq', {}, { skipped: `no Redis reachable and REDIS_URL unset: no jobs can exist (${(err as Error).message})` })];
      throw err;
    }
    // A worker holding one of its jobs refuses it (the tenant is `deleting`); the next attempt removes it from the failed set.
    if (purge.active > 0) throw new NotYet(`${purge.active} job(s) of the tenant are being processed; purging again`);
    const removed: Record<string, number> = { job_schedulers: purge.schedulers, backlog_counters: purge.counters };
    for (const [queue, n] of Object.entries(purge.jobs)) removed[`jobs:${queue}`] = n;
    return [entry('jobs', 'bullmq', removed)];
  }

  private async removeFiles(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    const objects = await this.asTenant(d, () => this.storage.removeAll());
    // Its exports' archives live outside the tenant prefix (platform/exports/…): removed by their own lib.
    const removed: Record<string, number> = { objects };
    if (this.exportArchives) removed.export_archives = await this.exportArchives.purgeArchives(d.tenantId);
    return [entry('files', `object storage (${this.storageOptions.driver})`, removed, { prefix: `${d.tenantId}/` })];
  }

  private async removeCacheKeys(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    try {
      const keys = await this.asTenant(d, () => this.cache.invalidateTenant());
      // The tenant's and its users' rate-limit buckets (libs/platform/rate-limits) are keyed by it too.
      const rateLimitBuckets = this.redis ? await purgeTenantBuckets(this.redis, this.config, d.tenantId) : 0;
      return [entry('cache', 'redis', { keys, rate_limit_buckets: rateLimitBuckets })];
    } catch (err) {
      if ((err as Error).name === 'RedisNotConfiguredError') return [entry('cache', 'redis', {}, { skipped: 'REDIS_URL unset: there is no cache' })];
      throw err;
    }
  }

  /**
   * Every home a move of the tenant used (the old homes kept for MOVE_SOURCE_RETENTION_SECONDS, and
   * targets a failed move may have left): dropped through their tier's driver, unless it is the
   * live home (the `home` step's). A move still open is cancelled first, and waited for.
   */
  private async removeRetainedHomes(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    // A SELECT around the UPDATE: TypeORM answers a bare UPDATE … RETURNING with [rows, count].
    const open: Array<{ id: string }> = await this.control.query(
      `WITH asked AS (UPDATE control.tenant_moves SET cancel_requested = true
                       WHERE tenant_id = $1 AND phase NOT IN ('done', 'failed', 'cancelled') RETURNING id)
       SELECT id FROM asked`,
      [d.tenantId],
    );
    if (open.length) throw new NotYet(`move ${open[0].id} of the tenant is still open; cancel requested`);
    const moves: Array<Record<string, string | null>> = await this.control.query(
      `SELECT from_tier, from_pool_id, from_schema, from_database, to_tier, to_pool_id, to_schema, to_database
         FROM control.tenant_moves WHERE tenant_id = $1`,
      [d.tenantId],
    );
    const live = await this.liveHome(d);
    const seen = new Set<string>([homeKey(live.home)]);
    const homes: Home[] = [];
    for (const m of moves) {
      for (const side of ['from', 'to'] as const) {
        const tier = m[`${side}_tier`] as Tier;
        const pool = await this.pool(m[`${side}_pool_id`]!);
        const home = this.drivers.of(tier).homeOf({ schemaName: m[`${side}_schema`]!, databaseName: m[`${side}_database`] }, pool);
        if (seen.has(homeKey(home))) continue;
        seen.add(homeKey(home));
        homes.push({ tier, home, source: `${side} of a move` });
      }
    }
    const dropped: Array<Record<string, unknown>> = [];
    for (const h of homes) {
      await this.drivers.of(h.tier).drop(h.home, d.tenantId);
      dropped.push({ tier: h.tier, server: `${h.home.host}:${h.home.port}`, database: h.home.database, schema: h.home.schema, exclusive: h.home.exclusive });
    }
    // The placement fence lists the tenant in each database it moved out of (shared databases survive the drops).
    let fenceRows = 0;
    for (const h of [live, ...homes]) if (!(h.tier === 'silo')) fenceRows += await this.clearFence(h.home, d.tenantId);
    return [entry('retained_homes', 'postgres (homes of past moves)', { homes: dropped.length, placement_fence_rows: fenceRows }, { homes: dropped })];
  }

  /** The tenant's rows: counted per table, then its home dropped (schema, database) or emptied (pool). */
  private async removeHome(d: TenantDeletionRecord): Promise<DeletionReportEntry[]> {
    const { tier, home } = await this.liveHome(d);
    if (await this.deletions.onboardingFailed(d.tenantId)) return this.removeFailedHome(d, tier, home);
    const removed = await this.countRows(home, d.tenantId);
    // No DataSource of this instance may keep the silo database open (DROP … WITH (FORCE) ends other instances' sessions).
    if (tier === 'silo') await this.silos.evictTenant(d.tenantId).catch(() => undefined);
    await this.drivers.of(tier).drop(home, d.tenantId);
    const kind = tier === 'silo' ? `database ${home.database}` : tier === 'bridge' ? `schema ${home.schema}` : `rows in ${home.database}.${home.schema}`;
    if (tier !== 'pool') removed[tier === 'silo' ? 'databases' : 'schemas'] = 1;
    return [entry('home', `postgres ${tier} home: ${kind}`, removed, { server: `${home.host}:${home.port}`, database: home.database, schema: home.schema })];
  }

  /**
   * A tenant whose onboarding failed: the schema or database of its name may be someone else's (the
   * reason it failed), so only a home carrying its onboarding's mark is dropped (the driver checks
   * the mark in the session that drops; pool: the tenant's rows, which only its id can own). An
   * unmarked one is left with its rows, and the report says so.
   */
  private async removeFailedHome(d: TenantDeletionRecord, tier: Tier, home: TenantHome): Promise<DeletionReportEntry[]> {
    if (tier === 'silo') await this.silos.evictTenant(d.tenantId).catch(() => undefined);
    const removed = tier === 'pool' ? await this.countRows(home, d.tenantId) : {};
    const dropped = await this.drivers.of(tier).dropClaimedHome(home, d.tenantId, homeClaimOf(d.tenantId));
    const kind = tier === 'silo' ? `database ${home.database}` : tier === 'bridge' ? `schema ${home.schema}` : `rows in ${home.database}.${home.schema}`;
    if (tier !== 'pool' && dropped) removed[tier === 'silo' ? 'databases' : 'schemas'] = 1;
    const details: Record<string, unknown> = { server: `${home.host}:${home.port}`, database: home.database, schema: home.schema, onboarding: 'failed' };
    if (tier !== 'pool' && !dropped) details.kept = `no ${kind} marked as this tenant's onboarding's: none was made, or it is another's (left untouched)`;
    return [entry('home', `postgres ${tier} home of a failed onboarding: ${kind}`, removed, details)];
  }

  /** Memberships, users who belong nowhere else, refresh families (and tokens), invitations, impersonations, move records. */
  private async removeControlPlaneRows(d: TenantDeletionRecord, em: EntityManager): Promise<DeletionReportEntry[]> {
    const count = async (sql: string) => Number(((await em.query(`WITH gone AS (${sql} RETURNING 1) SELECT count(*)::int AS n FROM gone`, [d.tenantId])) as Array<{ n: number }>)[0].n);
    const invitations = await count(`DELETE FROM control.invitations WHERE tenant_id = $1`);
    // The tombstone keeps the tenant row, so ON DELETE CASCADE never fires for these.
    const impersonations = await count(`DELETE FROM control.impersonations WHERE tenant_id = $1`);
    // Its onboarding's record: steps, and for a signup the owner's email and password hash.
    const onboardings = await count(`DELETE FROM control.tenant_onboardings WHERE tenant_id = $1`);
    const refreshTokens = await count(
      `DELETE FROM control.refresh_tokens WHERE family_id IN (SELECT id FROM control.refresh_families WHERE tenant_id = $1)`,
    );
    const refreshFamilies = await count(`DELETE FROM control.refresh_families WHERE tenant_id = $1`);
    const members: Array<{ user_id: string }> = await em.query(`SELECT user_id FROM control.memberships WHERE tenant_id = $1`, [d.tenantId]);
    const memberships = await count(`DELETE FROM control.memberships WHERE tenant_id = $1`);
    // Only users left with no tenant at all: a person who also belongs elsewhere keeps their account.
    const users = Number(((await em.query(
      `WITH gone AS (DELETE FROM control.users u WHERE u.id = ANY($1::uuid[])
                       AND NOT EXISTS (SELECT 1 FROM control.memberships m WHERE m.user_id = u.id) RETURNING 1)
       SELECT count(*)::int AS n FROM gone`,
      [members.map((m) => m.user_id)],
    )) as Array<{ n: number }>)[0].n);
    const moves = await count(`DELETE FROM control.tenant_moves WHERE tenant_id = $1`);
    // Their archives went in the files step.
    const exportRecords = await count(`DELETE FROM control.tenant_exports WHERE tenant_id = $1`);
    const removed = { memberships, users, refresh_families: refreshFamilies, refresh_tokens: refreshTokens, invitations, impersonations, onboardings, tenant_moves: moves, tenant_exports: exportRecords };
    return [entry('control_plane', 'postgres control plane', removed)];
  }

  /**
   * The record stays as a tombstone (`deleted`), holding no name: the report's subject, and what the
   * rest of the control plane may still point at. Its slug is released for a new tenant.
   */
  private async tombstone(d: TenantDeletionRecord, em: EntityManager): Promise<DeletionReportEntry[]> {
    await em.query(
      `UPDATE control.tenants
          SET status = 'deleted', slug = 'deleted-' || replace(id::text, '-', ''), name = '(deleted)', settings = '{}'::jsonb,
              maintenance_since = NULL, maintenance_reason = NULL, updated_at = now()
        WHERE id = $1`,
      [d.tenantId],
    );
    return [entry('tombstone', 'postgres control plane (tenant record)', { names: 1 }, { kept: 'id, tier, pool, status deleted; slug released, name and settings cleared' })];
  }

  private async liveHome(d: TenantDeletionRecord): Promise<Home> {
    const tenant = await this.control.getRepository(TenantEntity).findOneByOrFail({ id: d.tenantId });
    const pool = await this.pool(tenant.poolId);
    return { tier: tenant.tier, home: this.drivers.of(tenant.tier).homeOf(tenant, pool), source: 'live' };
  }

  private async countRows(home: TenantHome, tenantId: string): Promise<Record<string, number>> {
    try {
      return await this.owners.with(home, async (c) => {
        const counts: Record<string, number> = {};
        await c.query('BEGIN');
        try {
          // As the tenant: FORCE RLS holds for an owner that is not a superuser too.
          await c.query(`SELECT set_config('search_path', $1, true), set_config('app.tenant_id', $2, true)`, [quoteIdent(home.schema), tenantId]);
          for (const t of await tenantTablesOf(c, home.schema)) {
            const r = await c.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${quoteIdent(home.schema)}.${quoteIdent(t.name)} WHERE tenant_id = $1`, [tenantId]);
            if (r.rows[0].n > 0) counts[t.name] = r.rows[0].n;
          }
        } finally {
          await c.query('ROLLBACK').catch(() => undefined);
        }
        return counts;
      });
    } catch (err) {
      // 3D000: a silo database a resumed step already dropped.
      if ((err as { code?: string }).code === '3D000') return {};
      throw err;
    }
  }

  private async clearFence(home: TenantHome, tenantId: string): Promise<number> {
    return this.owners.with(home, async (c) => {
      const exists = await c.query(`SELECT to_regclass('strata_fence.retired_homes') IS NOT NULL AS ok`);
      if (!exists.rows[0].ok) return 0;
      return (await c.query(`DELETE FROM strata_fence.retired_homes WHERE tenant_id = $1`, [tenantId])).rowCount ?? 0;
    }).catch((err: { code?: string }) => {
      if (err.code === '3D000') return 0;
      throw err;
    });
  }

  /** Tenant-scoped stores (files, cache) are reached only from inside the tenant's context, as everywhere. */
  private async asTenant<T>(d: TenantDeletionRecord, fn: () => Promise<T>): Promise<T> {
    const tenant = await this.control.getRepository(TenantEntity).findOneByOrFail({ id: d.tenantId });
    return this.context.run({ tenant: placementOf(tenant), requestId: `offboarding-${d.tenantId}` }, fn);
  }

  private async pool(id: string): Promise<PoolEntity> {
    return this.control.getRepository(PoolEntity).findOneByOrFail({ id });
  }
}

const homeKey = (h: TenantHome) => `${h.host}:${h.port}/${h.database}/${h.schema}`;

function entry(step: DeletionStep, store: string, removed: Record<string, number>, details?: Record<string, unknown>): DeletionReportEntry {
  return { step, store, removed, ...(details ? { details } : {}), at: new Date().toISOString() };
}
