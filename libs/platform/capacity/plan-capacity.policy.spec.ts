import type { StrataConfig } from '#strata/common';
import type { Plan, PlanCatalog } from '#strata/plans';
import { PlanCapacityPolicy } from './plan-capacity.policy';

const config = {
  registryCacheTtlMs: 60_000,
  tenantMaxConcurrentRequests: 8,
  dataStatementTimeoutMs: 15_000,
  dataLockTimeoutMs: 3000,
  dataIdleInTransactionTimeoutMs: 10_000,
  jobsTenantConcurrency: 4,
} as StrataConfig;

const plan = (id: string, capacity: Partial<Plan['capacity']>): Plan => ({
  id,
  name: id,
  defaultTier: 'pool',
  rateLimitPerSecond: null,
  quotas: { projects: null, invoicesPerMonth: null, storageBytes: null, webhookEndpoints: null },
  features: {},
  capacity: { maxConcurrentRequests: null, statementTimeoutMs: null, lockTimeoutMs: null, idleInTransactionTimeoutMs: null, jobConcurrency: null, ...capacity },
});

/** The plans a catalogue would read from control.plans; `rows` can change between reads. */
function catalogOf(rows: Plan[]): PlanCatalog & { rows: Plan[]; reads: number } {
  const catalog = { rows, reads: 0, list: async () => (catalog.reads++, catalog.rows) };
  return catalog as unknown as PlanCatalog & { rows: Plan[]; reads: number };
}

describe('PlanCapacityPolicy', () => {
  it("fills a plan's unset capacity with the instance's defaults, and gives unknown plans the defaults", async () => {
    const policy = new PlanCapacityPolicy(catalogOf([plan('free', { maxConcurrentRequests: 4, statementTimeoutMs: 5000, jobConcurrency: 2 }), plan('standard', {})]), config);
    await policy.refresh();
    expect(policy.of('free')).toMatchObject({ maxConcurrentRequests: 4, jobConcurrency: 2, writeBudgets: { statementTimeoutMs: 5000, lockTimeoutMs: 3000, idleInTransactionTimeoutMs: 10_000 } });
    expect(policy.of('standard')).toMatchObject({ maxConcurrentRequests: 8, jobConcurrency: 4, writeBudgets: { statementTimeoutMs: 15_000, lockTimeoutMs: 3000 } });
    expect(policy.of('no-such-plan')).toBe(policy.of(undefined));
    expect(policy.jobConcurrencyOf('free')).toBe(2);
  });

  it("gives read units budgets only for plans that differ from the instance's, as one object kept across re-reads", async () => {
    const catalog = catalogOf([plan('free', { statementTimeoutMs: 5000 }), plan('standard', {})]);
    const policy = new PlanCapacityPolicy(catalog, config);
    await policy.refresh();
    expect(policy.readBudgetsOf('standard')).toBeUndefined();
    const free = policy.readBudgetsOf('free');
    expect(free).toEqual({ statementTimeoutMs: 5000, lockTimeoutMs: 3000 });
    await policy.refresh();
    // The same object: connections find the prepared setup of these budgets by it.
    expect(policy.readBudgetsOf('free')).toBe(free);
    catalog.rows = [plan('free', { statementTimeoutMs: 6000 })];
    await policy.refresh();
    expect(policy.readBudgetsOf('free')).toEqual({ statementTimeoutMs: 6000, lockTimeoutMs: 3000 });
  });

  it('keeps what it knew when the plans cannot be read, and does not ask again before its TTL', async () => {
    const catalog = catalogOf([plan('free', { maxConcurrentRequests: 2 })]);
    const policy = new PlanCapacityPolicy(catalog, config);
    await policy.refresh();
    (catalog as unknown as { list: () => Promise<Plan[]> }).list = async () => {
      catalog.reads++;
      throw new Error('control plane down');
    };
    await policy.refresh();
    expect(policy.of('free').maxConcurrentRequests).toBe(2);
    const reads = catalog.reads;
    for (let i = 0; i < 100; i++) policy.of('free');
    expect(catalog.reads).toBe(reads);
  });
});
