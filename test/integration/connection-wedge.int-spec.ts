import type { EntityManager } from 'typeorm';
import { Project } from '#strata/projects';
import { Client } from 'pg';
import { ensureAppRole, ROLE_BACKSTOPS } from '#strata/migrator';
import { ReadUnitTransactionError, TenantUnavailableError, TransactionRolledBackError } from '#strata/tenancy/platform';
import { adminUrl } from '../support/test-env';
import { createTenancyFixture, deferred, rejectionOf, sleep, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

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

describe('waiting for a data connection', () => {
  let fx: TenancyFixture;
  const tenants: TestTenant[] = [];
  beforeAll(async () => {
    fx = await createTenancyFixture({ dataPoolMax: 1, dataAcquireTimeoutMs: 300 });
    for (const tier of ['pool', 'bridge'] as const) tenants.push(await fx.onboard(tier, `acq-${tier}`));
  });
  afterAll(async () => {
    await fx?.close();
  });

  it('gives up after DATA_ACQUIRE_TIMEOUT_MS with 503 tenant_unavailable and Retry-After, and serves again once a connection is free', async () => {
    const [a, b] = tenants;
    const hold = deferred();
    const holding = fx.inTenant(a, async (em) => {
      await em.query('SELECT 1');
      await hold.promise;
    });
    await sleep(50);
    const started = Date.now();
    const err = await rejectionOf(fx.readInTenant(b, (em) => em.query('SELECT 1')));
    expect(err).toBeInstanceOf(TenantUnavailableError);
    expect((err as unknown as TenantUnavailableError).getStatus()).toBe(503);
    expect((err as unknown as TenantUnavailableError).headers).toEqual({ 'Retry-After': '1' });
    expect(Date.now() - started).toBeLessThan(3000);
    hold.resolve();
    await holding;
    await fx.readInTenant(b, (em) => em.query('SELECT 1'));
  });
});

describe('server-side backstops of the app role', () => {
  it('are set on the role at bootstrap, and an operator\'s own value survives the next bootstrap', async () => {
    const role = `strata_bs_${Math.random().toString(16).slice(2, 10)}`;
    const admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    const settings = async () =>
      (
        await admin.query<{ c: string[] }>(
          `SELECT s.setconfig AS c FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = $1 AND s.setdatabase = 0`,
          [role],
        )
      ).rows[0]?.c ?? [];
    try {
      await ensureAppRole(admin, role);
      expect((await settings()).sort()).toEqual(ROLE_BACKSTOPS.map(([k, v]) => `${k}=${v}`).sort());
      await admin.query(`ALTER ROLE ${role} SET statement_timeout = '5min'`);
      await ensureAppRole(admin, role);
      expect(await settings()).toContain('statement_timeout=5min');
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
    }
  });
});
