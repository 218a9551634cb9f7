import { Injectable } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { TenantRegistry } from '#strata/control-plane';
import { TenantConnectionManager, TenantContext, type CommitStatement } from '#strata/tenancy';
import { PlanCatalog } from './plan.catalog';
import { PlanLimitReachedError, type QuotaMetric } from './plans.errors';
import { counterOf, isUsageRefusal, releaseStatement, takeStatement } from './usage.counters';

/** What one unit of work has asked for, per counter, until its commit. */
interface PendingUsage {
  reserve: Map<string, { metric: QuotaMetric; amount: number; limit: number | null; plan: string }>;
  release: Map<string, number>;
}

/**
 * The face domain libs use for quotas: inside their create's (or delete's) transaction,
 * `reserve('projects')` before the insert, `release('projects')` with the delete. They learn
 * nothing about plans, tiers or where counters live. The limit comes from the tenant's plan through
 * the registry and the plan catalogue (both cached per instance, invalidated across instances).
 *
 * The counter statements are not run where the domain calls: they are collected per unit of work and
 * sent as its last statements in the same round trip as its COMMIT (TenantConnectionManager.commitWith),
 * one per counter, in counter order; a refusal raises (SQLSTATE SU002), so that COMMIT rolls back. Whatever row it locks is then held for the commit only, not for
 * the create's insert, listeners and outbox writes; and the row is one of the counter's 16 shards
 * (usage.counters.ts: an exact escrow of the headroom when there is a limit), so concurrent creates
 * of one tenant rarely meet at all. A refusal (402) rolls the unit back.
 */
@Injectable()
export class PlanLimits {
  // Keyed by the unit's EntityManager: one per unit of work, gone with it.
  private readonly pending = new WeakMap<EntityManager, PendingUsage>();

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
    private readonly registry: TenantRegistry,
    private readonly catalog: PlanCatalog,
  ) {}

  /**
   * Takes `amount` of `metric` for the current tenant when the open transaction commits, or makes
   * that transaction fail with 402 plan_limit_reached (nothing of it is kept). Must run inside
   * `connections.transaction()`.
   */
  async reserve(metric: QuotaMetric, amount = 1): Promise<void> {
    const { tenant } = this.context.requireTenant('a quota reservation', 'usage');
    const { plan, limit } = await this.limitOf(tenant, metric);
    const pending = this.pendingOf(tenant.id);
    const counter = counterOf(metric);
    const known = pending.reserve.get(counter);
    pending.reserve.set(counter, { metric, amount: (known?.amount ?? 0) + amount, limit, plan });
  }

  /**
   * Gives `amount` back (a deleted project, endpoint or file) when the open transaction commits.
   * `invoicesPerMonth` counts creates in the month, so nothing is given back for it.
   */
  async release(metric: QuotaMetric, amount = 1): Promise<void> {
    if (metric === 'invoicesPerMonth') return;
    const { tenant } = this.context.requireTenant('a quota release', 'usage');
    const pending = this.pendingOf(tenant.id);
    const counter = counterOf(metric);
    pending.release.set(counter, (pending.release.get(counter) ?? 0) + amount);
  }

  /** The unit's pending usage; the first call of a unit registers the statements that apply it. */
  private pendingOf(tenantId: string): PendingUsage {
    const em = this.connections.manager;
    let pending = this.pending.get(em);
    if (pending) return pending;
    pending = { reserve: new Map(), release: new Map() };
    this.pending.set(em, pending);
    const mine = pending;
    this.connections.commitWith(() => {
      this.pending.delete(em);
      const statements: CommitStatement[] = [];
      // One fixed order of row locks across units: two units touching the same two counters cannot deadlock.
      const counters = [...new Set([...mine.release.keys(), ...mine.reserve.keys()])].sort();
      for (const counter of counters) {
        // Gives back first: a unit that deletes one file and stores another needs only the difference.
        const given = mine.release.get(counter);
        if (given) statements.push(releaseStatement(tenantId, counter, given));
        const taken = mine.reserve.get(counter);
        if (taken) {
          statements.push({
            ...takeStatement(tenantId, counter, taken.amount, taken.limit),
            failure: (err) => (isUsageRefusal(err) ? new PlanLimitReachedError(taken.metric, taken.limit!, taken.plan) : undefined),
          });
        }
      }
      return statements;
    });
    return pending;
  }

  /**
   * From the tenant's registry record, not the placement in the context: a plan change reaches the
   * registry on every instance at once (its invalidation), while a context's placement may predate
   * it (a job, a long request), and a quota is exact. The record the guard just cached: no query.
   */
  private async limitOf(tenant: { id: string; slug: string }, metric: QuotaMetric): Promise<{ plan: string; limit: number | null }> {
    const record = await this.registry.recordOf(tenant);
    // The request's tenant was just resolved; a record gone since then has nothing left to count.
    if (!record) return { plan: 'unknown', limit: 0 };
    const plan = await this.catalog.get(record.plan);
    // The foreign key makes a missing plan impossible; refusing is the safe answer if it ever is.
    return { plan: record.plan, limit: plan ? plan.quotas[metric] : 0 };
  }
}
