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
function catalogOf(rows: Plan[]): PlanCatalog & { rows: Plan[]; reads: number; version: number } {
  const catalog = { rows, reads: 0, version: 0, list: async () => (catalog.reads++, catalog.rows), refresh: () => undefined };
  return catalog as unknown as PlanCatalog & { rows: Plan[]; reads: number; version: number };
}
const settle = () => new Promise((r) => setImmediate(r));

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

  it('reads the plans again at once for a plan added since (not the defaults for a TTL), at most once a second', async () => {
    const catalog = catalogOf([plan('standard', {})]);
    const policy = new PlanCapacityPolicy(catalog, config);
    await policy.refresh();
    catalog.rows = [plan('standard', {}), plan('bench', { maxConcurrentRequests: 1000 })];
    expect(policy.of('bench').maxConcurrentRequests).toBe(8);
    await settle();
    expect(policy.of('bench').maxConcurrentRequests).toBe(1000);
    // A record naming a plan that does not exist: one more read a second, not one per request.
    let now = Date.now() + 5000;
    const clock = jest.spyOn(Date, 'now').mockImplementation(() => now);
    try {
      const reads = catalog.reads;
      for (let i = 0; i < 5; i++) policy.of('no-such-plan');
      await settle();
      expect(catalog.reads).toBe(reads + 1);
      now += 1000;
      policy.of('no-such-plan');
      await settle();
      expect(catalog.reads).toBe(reads + 2);
    } finally {
      clock.mockRestore();
    }
  });

  it('applies a plan edit published to every instance at once, without waiting for its TTL', async () => {
    const catalog = catalogOf([plan('free', { maxConcurrentRequests: 2 })]);
    const policy = new PlanCapacityPolicy(catalog, config);
    await policy.refresh();
    catalog.rows = [plan('free', { maxConcurrentRequests: 5 })];
    expect(policy.of('free').maxConcurrentRequests).toBe(2);
    catalog.version++;
    policy.of('free');
    await settle();
    expect(policy.of('free').maxConcurrentRequests).toBe(5);
  });
});
