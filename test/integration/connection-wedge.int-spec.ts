import type { EntityManager } from 'typeorm';
import { Project } from '#strata/projects';
import { ReadUnitTransactionError, TransactionRolledBackError } from '#strata/tenancy/platform';
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

describe('transaction control inside a read unit', () => {
  let fx: TenancyFixture;
  const tenants: TestTenant[] = [];
  beforeAll(async () => {
    // One connection per pool: anything left on it would reach the very next unit.
    fx = await createTenancyFixture({ dataPoolMax: 1 });
    for (const tier of ['pool', 'bridge'] as const) tenants.push(await fx.onboard(tier, `rtx-${tier}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  const attempts: Array<[string, (em: EntityManager) => Promise<unknown>]> = [
    ['save() (TypeORM wraps it in its own transaction)', (em) => em.save(em.create(Project, { name: 'saved in a read unit' }))],
    ['transaction()', (em) => em.transaction((inner) => inner.query(`INSERT INTO projects (name) VALUES ('x')`))],
    ['a raw BEGIN', (em) => em.query('BEGIN')],
    ['a raw START TRANSACTION', (em) => em.query(' start transaction isolation level serializable')],
  ];

  it.each(attempts)('refuses %s before anything is sent, and leaves the shared connection clean for every tenant', async (_name, attempt) => {
    const [a, b] = tenants;
    const err = await rejectionOf(fx.readInTenant(a, attempt));
    expect(err).toBeInstanceOf(ReadUnitTransactionError);
    expect(err.message).toMatch(/use transaction\(\)/);
    // Nothing of a's is left on the one connection: b's read and write run, as b.
    const [row] = await fx.readInTenant(b, (em) => em.query(`SELECT current_setting('app.tenant_id') AS tenant, count(*)::int AS n FROM projects`));
    expect(row.tenant).toBe(b.id);
    await fx.inTenant(b, (em) => em.query(`INSERT INTO projects (name) VALUES ('after a refused read transaction')`));
    const stuck = await fx.ownerQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE usename = $1 AND state LIKE 'idle in transaction%'`,
      [fx.db.appRole],
    );
    expect(stuck[0].n).toBe(0);
  });
});
