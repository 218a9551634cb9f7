import { TransactionRolledBackError } from '#strata/tenancy/platform';
import { createTenancyFixture, rejectionOf, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

/**
 * A placement that fails validation (a hand-built one with schema `Shared`) used to be refused
 * after the connection was taken and corked: the connection went back to the pool corked and every
 * later unit on it, of any tenant, hung. One connection per pool makes any leak visible at once.
 */
describe('a refused placement', () => {
  let fx: TenancyFixture;
  const tenants: TestTenant[] = [];
  beforeAll(async () => {
    fx = await createTenancyFixture({ dataPoolMax: 1 });
    for (const tier of ['pool', 'bridge'] as const) tenants.push(await fx.onboard(tier, `wedge-${tier}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it.each(['transaction', 'read'] as const)('never wedges the shared connection of a %s unit: the next units of every tenant still run', async (kind) => {
    const [pool, bridge] = tenants;
    const bad = { ...pool.placement, schemaName: 'Shared' };
    const run = kind === 'transaction' ? fx.inTenant.bind(fx) : fx.readInTenant.bind(fx);
    expect((await rejectionOf(run(bad, async (em) => em.query('SELECT 1')))).message).toMatch(/refusing schema/);
    const deadline = <T>(p: Promise<T>) =>
      Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the next unit hung: the connection was left wedged')), 3000))]);
    for (const t of [pool, bridge]) {
      await deadline(fx.inTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('after a refused placement')`)));
      const [{ n }] = await deadline(fx.readInTenant(t, (em) => em.query(`SELECT count(*)::int AS n FROM projects`)));
      expect(n).toBeGreaterThan(0);
    }
  });
});

describe('a transaction whose statement failed and whose work went on', () => {
  let fx: TenancyFixture;
  beforeAll(async () => {
    fx = await createTenancyFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  it.each(['pool', 'bridge', 'silo'] as const)('is reported as rolled back on %s, never as committed, and stores nothing', async (tier) => {
    const t = await fx.onboard(tier, `rb-${tier}`);
    const err = await rejectionOf(
      fx.inTenant(t, async (em) => {
        await em.query(`INSERT INTO projects (name) VALUES ('never stored')`);
        try {
          await em.query('SELECT 1/0');
        } catch {
          // swallowed, as an event listener with suppressErrors would
        }
        return 'ok';
      }),
    );
    expect(err).toBeInstanceOf(TransactionRolledBackError);
    const [{ n }] = await fx.readInTenant(t, (em) => em.query(`SELECT count(*)::int AS n FROM projects WHERE name = 'never stored'`));
    expect(n).toBe(0);
    // The connection is clean for the next unit.
    await fx.inTenant(t, (em) => em.query(`INSERT INTO projects (name) VALUES ('stored')`));
  });
});
