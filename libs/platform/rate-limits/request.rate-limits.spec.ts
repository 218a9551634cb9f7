import { loadStrataConfig } from '#strata/common';
import type { Plan, PlanCatalog } from '#strata/plans';
import { RequestRateLimits } from './request.rate-limits';

const config = loadStrataConfig({ DATABASE_URL: 'postgres://owner@127.0.0.1:5432/strata', AUTH_JWT_SECRET: 'x'.repeat(32), RATE_LIMIT_USER_PER_SECOND: '1000' });
const plan = (rateLimitPerSecond: number | null) => ({ id: 'standard', rateLimitPerSecond }) as Plan;

/** The limiter without Redis, over a catalogue (and the registry behind it) that count how often they are asked. */
function limiter(catalogue: { cached: Plan | undefined; loaded: Plan | null }) {
  const calls = { registry: 0, planGets: 0 };
  const recordOf = async () => (calls.registry++, { id: 't1', plan: 'standard' });
  const get = async () => (calls.planGets++, catalogue.loaded);
  const plans = {
    peek: () => catalogue.cached,
    get,
    // As PlanCatalog.planOfTenant: the placement's plan, else the registry's record.
    planOfTenant: async (t: { plan?: string }) => (t.plan ?? (await recordOf()).plan, get()),
  } as unknown as PlanCatalog;
  return { limits: new RequestRateLimits(config, plans, null), calls };
}

describe('request rate limits', () => {
  it('admits a request synchronously from the placement plan and the cached catalogue, asking nobody', () => {
    const { limits, calls } = limiter({ cached: plan(50), loaded: plan(50) });
    const headers = limits.admit({ tenant: { id: 't1', slug: 'acme', plan: 'standard' }, userId: 'u1' });
    expect(headers).not.toBeInstanceOf(Promise);
    expect(Object.keys(headers as object)).toContain('RateLimit-Policy');
    expect(calls).toEqual({ registry: 0, planGets: 0 });
  });

  it('loads the plan when the catalogue is not fresh, and looks the tenant up when the placement carries no plan', async () => {
    const stale = limiter({ cached: undefined, loaded: plan(50) });
    const answered = stale.limits.admit({ tenant: { id: 't1', slug: 'acme', plan: 'standard' }, userId: 'u1' });
    expect(answered).toBeInstanceOf(Promise);
    await expect(answered).resolves.toBeDefined();
    expect(stale.calls).toEqual({ registry: 0, planGets: 1 });

    const planless = limiter({ cached: plan(50), loaded: plan(50) });
    await planless.limits.admit({ tenant: { id: 't1', slug: 'acme' }, userId: 'u1' });
    expect(planless.calls).toEqual({ registry: 1, planGets: 1 });
  });

  it('refuses past the plan rate on the synchronous path as on the loading one', () => {
    const { limits } = limiter({ cached: plan(1), loaded: plan(1) });
    const caller = { tenant: { id: 't1', slug: 'acme', plan: 'standard' }, userId: 'u1' };
    // A rate of 1/s holds RATE_LIMIT_BURST_SECONDS (2) tokens.
    limits.admit(caller);
    limits.admit(caller);
    expect(() => limits.admit(caller)).toThrow(expect.objectContaining({ message: expect.stringMatching(/this tenant's plan allows 1 requests per second/) }));
  });
});
