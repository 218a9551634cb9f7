import { Inject, Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { CONTROL_DATA_SOURCE, TenantRegistry, type Tier } from '#strata/control-plane';
import type { QuotaMetric } from './plans.errors';

/** A row of control.plans (migrations/control/0009). A null quota or rate is unlimited. */
export interface Plan {
  id: string;
  name: string;
  defaultTier: Tier;
  rateLimitPerSecond: number | null;
  quotas: Record<QuotaMetric, number | null>;
  features: Record<string, boolean>;
  /** How much of an instance the plan's tenants may hold (migrations/control/0015); null: the instance's default. */
  capacity: PlanCapacity;
}

/** A plan's share of an instance (libs/platform/capacity applies it); null takes the configured default. */
export interface PlanCapacity {
  maxConcurrentRequests: number | null;
  statementTimeoutMs: number | null;
  lockTimeoutMs: number | null;
  idleInTransactionTimeoutMs: number | null;
  jobConcurrency: number | null;
}

interface PlanRow {
  id: string;
  name: string;
  default_tier: Tier;
  rate_limit_per_second: number | null;
  max_projects: number | null;
  max_invoices_per_month: number | null;
  max_storage_bytes: string | null;
  max_webhook_endpoints: number | null;
  features: Record<string, boolean>;
  max_concurrent_requests: number | null;
  statement_timeout_ms: number | null;
  lock_timeout_ms: number | null;
  idle_in_transaction_timeout_ms: number | null;
  job_concurrency: number | null;
}

const toPlan = (r: PlanRow): Plan => ({
  id: r.id,
  name: r.name,
  defaultTier: r.default_tier,
  rateLimitPerSecond: r.rate_limit_per_second,
  quotas: {
    projects: r.max_projects,
    invoicesPerMonth: r.max_invoices_per_month,
    // bigint arrives as text; plan quotas stay far below 2^53.
    storageBytes: r.max_storage_bytes === null ? null : Number(r.max_storage_bytes),
    webhookEndpoints: r.max_webhook_endpoints,
  },
  features: r.features,
  capacity: {
    maxConcurrentRequests: r.max_concurrent_requests,
    statementTimeoutMs: r.statement_timeout_ms,
    lockTimeoutMs: r.lock_timeout_ms,
    idleInTransactionTimeoutMs: r.idle_in_transaction_timeout_ms,
    jobConcurrency: r.job_concurrency,
  },
});

/**
 * The plans, read whole (a handful of rows) and kept per instance for REGISTRY_CACHE_TTL_MS, so a
 * create's quota check costs no control-plane round trip. A tenant's plan *change* is a change of
 * its tenant record and reaches every instance through the registry's invalidation at once; an
 * edit of a plan (PATCH /admin/plans/:id) publishes the registry's invalidate-all, and a catalogue
 * loaded before the registry's last clear (its `generation`) loads again. A plan row edited by SQL
 * is seen within the TTL.
 */
@Injectable()
export class PlanCatalog {
  private loaded: { at: number; generation: number; plans: Map<string, Plan> } | undefined;
  private loading: Promise<Map<string, Plan>> | undefined;
  private readonly ttlMs: number;

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    @Inject(STRATA_CONFIG) config: StrataConfig,
    private readonly registry: TenantRegistry,
  ) {
    this.ttlMs = Math.max(config.registryCacheTtlMs, 1);
  }

  async list(): Promise<Plan[]> {
    return [...(await this.plans()).values()];
  }

  /** The plan, or null; an id not cached is looked up again once (a plan added since the last load). */
  async get(id: string): Promise<Plan | null> {
    const found = (await this.plans()).get(id);
    if (found) return found;
    this.refresh();
    return (await this.plans()).get(id) ?? null;
  }

  /**
   * The plan a tenant is on: its placement's `plan` when the context carries one (no lookup), else
   * its registry record's. Null when the tenant or its plan is gone.
   */
  async planOfTenant(tenant: { id: string; slug: string; plan?: string }): Promise<Plan | null> {
    const id = tenant.plan ?? (await this.registry.recordOf(tenant))?.plan;
    return id === undefined ? null : this.get(id);
  }

  /**
   * Changes whenever plans may have changed on some instance (an edit publishes the registry's
   * invalidate-all): caches derived from the catalogue compare it with the value they loaded under.
   */
  get version(): number {
    return this.registry.generation;
  }

  /**
   * The plan from what is loaded and fresh, without awaiting: undefined when the catalogue would
   * have to (re)load first, so per-request callers take the async path only then.
   */
  peek(id: string): Plan | undefined {
    const loaded = this.loaded;
    if (!loaded || Date.now() - loaded.at >= this.ttlMs || loaded.generation !== this.registry.generation) return undefined;
    return loaded.plans.get(id);
  }

  refresh(): void {
    this.loaded = undefined;
    this.loading = undefined;
  }

  private async plans(): Promise<Map<string, Plan>> {
    if (this.loaded && Date.now() - this.loaded.at < this.ttlMs && this.loaded.generation === this.registry.generation) return this.loaded.plans;
    if (this.loaded && this.loaded.generation !== this.registry.generation) this.refresh();
    // Taken before the query: a clear while it runs makes its answer stale at once.
    const generation = this.registry.generation;
    // Concurrent misses share one query.
    const pending = (this.loading ??= this.db
      .query<PlanRow[]>(
        `SELECT id, name, default_tier, rate_limit_per_second, max_projects, max_invoices_per_month,
                max_storage_bytes, max_webhook_endpoints, features, max_concurrent_requests, statement_timeout_ms,
                lock_timeout_ms, idle_in_transaction_timeout_ms, job_concurrency
           FROM control.plans ORDER BY id`,
      )
      .then((rows) => new Map(rows.map((r) => [r.id, toPlan(r)]))));
    try {
      const plans = await pending;
      if (this.loading === pending) this.loaded = { at: Date.now(), generation, plans };
      return plans;
    } finally {
      if (this.loading === pending) this.loading = undefined;
    }
  }
}
