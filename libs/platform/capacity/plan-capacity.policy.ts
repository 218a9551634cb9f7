import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { PlanCatalog, type Plan } from '#strata/plans';
import type { JobConcurrencyPolicy } from '#strata/jobs';
import type { ReadBudgets, UnitBudgetPolicy, UnitBudgets } from '#strata/tenancy/platform';

/** A plan's share of one instance, with the instance's defaults filled in. */
export interface ResolvedCapacity {
  /** Requests of one tenant in flight at once on this instance; 0: no budget. */
  readonly maxConcurrentRequests: number;
  /** One object per plan, so the connection manager's per-unit lookup allocates nothing. */
  readonly writeBudgets: Readonly<UnitBudgets>;
  /** Read units' budgets, only when they differ from the instance's (each one more prepared setup per connection). */
  readonly readBudgets: ReadBudgets | undefined;
  /** Jobs of one tenant running at once per queue on this worker; 0: no cap. */
  readonly jobConcurrency: number;
}

/**
 * Plans' capacity columns (control 0015) resolved against the instance's defaults and held in
 * memory, so the per-request and per-unit lookups are one Map read (`of()` never awaits). The
 * plans are re-read in the background once REGISTRY_CACHE_TTL_MS has passed; a tenant's plan
 * *change* needs no re-read: it arrives with the tenant's record (TenantPlacement.plan), which the
 * registry invalidates on every instance. Until the first read (or for a plan added since) a
 * tenant gets the defaults.
 */
@Injectable()
export class PlanCapacityPolicy implements UnitBudgetPolicy, JobConcurrencyPolicy, OnApplicationBootstrap {
  private readonly logger = new Logger('PlanCapacity');
  private readonly defaults: ResolvedCapacity;
  private readonly ttlMs: number;
  private byPlan = new Map<string, ResolvedCapacity>();
  private loadedAt = Number.NEGATIVE_INFINITY;
  /** The catalogue's version the capacities were read under: a plan edit on any instance changes it. */
  private loadedVersion = Number.NaN;
  /** When a plan unknown here last made the catalogue read again (at most once a second). */
  private unknownAt = Number.NEGATIVE_INFINITY;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly catalog: PlanCatalog,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
  ) {
    this.ttlMs = Math.max(config.registryCacheTtlMs, 1000);
    this.defaults = Object.freeze({
      maxConcurrentRequests: config.tenantMaxConcurrentRequests,
      writeBudgets: Object.freeze({
        statementTimeoutMs: config.dataStatementTimeoutMs,
        lockTimeoutMs: config.dataLockTimeoutMs,
        idleInTransactionTimeoutMs: config.dataIdleInTransactionTimeoutMs,
      }),
      readBudgets: undefined,
      jobConcurrency: config.jobsTenantConcurrency,
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    await this.refresh();
  }

  /** The capacity of a tenant on `plan`; the defaults for none or an unknown one. */
  of(plan: string | undefined): ResolvedCapacity {
    const now = Date.now();
    if (now - this.loadedAt > this.ttlMs || this.catalog.version !== this.loadedVersion) void this.refresh();
    if (plan === undefined) return this.defaults;
    const found = this.byPlan.get(plan);
    if (found) return found;
    // A plan added since the last read (a tenant is on it already): read again now rather than give
    // its tenants the defaults for a TTL. Throttled, so a record naming a missing plan costs one read a second.
    if (now - this.unknownAt >= 1000) {
      this.unknownAt = now;
      this.catalog.refresh();
      void this.refresh();
    }
    return this.defaults;
  }

  writeBudgetsOf(plan: string | undefined): UnitBudgets {
    return this.of(plan).writeBudgets;
  }

  readBudgetsOf(plan: string | undefined): ReadBudgets | undefined {
    return this.of(plan).readBudgets;
  }

  jobConcurrencyOf(plan: string | undefined): number {
    return this.of(plan).jobConcurrency;
  }

  /** Re-reads the plans (one query, shared by concurrent callers); a failure keeps what was known. */
  refresh(): Promise<void> {
    if (this.loading) return this.loading;
    // Taken before the read: an edit published while it runs makes its answer stale at once.
    const version = this.catalog.version;
    this.loading = this.catalog
      .list()
      .then((plans) => {
        this.byPlan = new Map(plans.map((p) => [p.id, this.resolve(p)]));
      })
      .catch((err: unknown) => this.logger.warn(`plans not read, keeping the last known capacities: ${String((err as Error)?.message ?? err)}`))
      .finally(() => {
        // Failed or not, the next try waits a TTL: a control plane that is down is not asked per request.
        this.loadedAt = Date.now();
        this.loadedVersion = version;
        this.loading = undefined;
      });
    return this.loading;
  }

  private resolve(plan: Plan): ResolvedCapacity {
    const c = plan.capacity;
    const d = this.defaults;
    const statementTimeoutMs = c.statementTimeoutMs ?? d.writeBudgets.statementTimeoutMs;
    const lockTimeoutMs = c.lockTimeoutMs ?? d.writeBudgets.lockTimeoutMs;
    const sameReads = statementTimeoutMs === d.writeBudgets.statementTimeoutMs && lockTimeoutMs === d.writeBudgets.lockTimeoutMs;
    // Kept across re-reads while unchanged: read scopes and connections find their setup by this object.
    const known = this.byPlan.get(plan.id)?.readBudgets;
    const readBudgets = sameReads
      ? undefined
      : known && known.statementTimeoutMs === statementTimeoutMs && known.lockTimeoutMs === lockTimeoutMs
        ? known
        : Object.freeze({ statementTimeoutMs, lockTimeoutMs });
    return Object.freeze({
      maxConcurrentRequests: c.maxConcurrentRequests ?? d.maxConcurrentRequests,
      writeBudgets: Object.freeze({
        statementTimeoutMs,
        lockTimeoutMs,
        idleInTransactionTimeoutMs: c.idleInTransactionTimeoutMs ?? d.writeBudgets.idleInTransactionTimeoutMs,
      }),
      readBudgets,
      jobConcurrency: c.jobConcurrency ?? d.jobConcurrency,
    });
  }
}
