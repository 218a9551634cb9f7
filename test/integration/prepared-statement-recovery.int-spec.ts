import type { EntityManager } from 'typeorm';
import {
  enterReadStatement,
  FENCE_CHECK_STATEMENT,
  forgetSharedServerConnections,
  preparedStatementRecoveries,
  sharesServerConnections,
} from '#strata/tenancy/platform';
import { createTenancyFixture, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;

/** The pg client under a unit of work (TenantPgClient), to put it at odds with its server the way a pooler does. */
interface UnitClient {
  setupParsed: boolean;
  preparesStatements: boolean;
  connection: { parsedStatements: Record<string, string> };
}
const clientOf = (em: EntityManager): UnitClient => (em.queryRunner as unknown as { databaseConnection: UnitClient }).databaseConnection;

/**
 * Behind a pooler in transaction mode without prepared-statement support (PgBouncer < 1.21) the
 * server connection a client's statement lands on may lack a statement the client prepared (26000)
 * or hold one the client never prepared there (42P05); test/e2e/pgbouncer.e2e-spec.ts runs that for
 * real. Here one connection per server (DATA_POOL_MAX 1, SILO_POOL_MAX 1) is put at odds with its
 * client by hand, so each unit of work provably meets the disagreement.
 */
describe('prepared statements the server connection disagrees about', () => {
  let fx: TenancyFixture;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;
  let address: string;

  beforeAll(async () => {
    fx = await createTenancyFixture({ dataPoolMax: 1, siloPoolMax: 1 });
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `prep-${tier}`);
    const url = new URL(fx.db.ownerUrl);
    address = `${url.hostname}:${url.port || 5432}`;
  });
  beforeEach(() => forgetSharedServerConnections());
  afterAll(async () => {
    forgetSharedServerConnections();
    await fx?.close();
  });

  const countByName = async (t: TestTenant, name: string): Promise<number> =>
    (await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.table('projects')} WHERE tenant_id = $1 AND name = $2`, [t.id, name], t.database))[0].n;

  /** A write unit that inserts a project named `name` and counts how often it ran. */
  const insertProject = async (t: TestTenant, name: string): Promise<number> => {
    let runs = 0;
    await fx.inTenant(t, async (em) => {
      runs++;
      await em.query(`INSERT INTO projects (name) VALUES ($1)`, [name]);
    });
    return runs;
  };

  /** The name the fixture's read setup is prepared under (a hash of its text, budgets included). */
  const readSetupName = () => enterReadStatement(true, { statementTimeoutMs: fx.config.dataStatementTimeoutMs, lockTimeoutMs: fx.config.dataLockTimeoutMs });
  const preparedSetups = async (em: EntityManager): Promise<number> =>
    (await em.query(`SELECT count(*)::int AS n FROM pg_prepared_statements WHERE name = $1`, [readSetupName()]))[0].n;

  it.each(TIERS)('runs a %s write unit once more, preparing the fence check again, when its server connection lost it (26000), and stores its row once', async (tier) => {
    const t = tenants[tier];
    await fx.inTenant(t, (em) => em.query(`DEALLOCATE ${FENCE_CHECK_STATEMENT}`));
    const recovered = preparedStatementRecoveries.writes;
    expect(await insertProject(t, `lost-check-${tier}`)).toBe(2);
    expect(preparedStatementRecoveries.writes).toBe(recovered + 1);
    expect(await countByName(t, `lost-check-${tier}`)).toBe(1);
    // Prepared again by the second run: the next unit runs once.
    expect(await insertProject(t, `lost-check-after-${tier}`)).toBe(1);
    expect(preparedStatementRecoveries.writes).toBe(recovered + 1);
    expect(await countByName(t, `lost-check-after-${tier}`)).toBe(1);
    // A loss the connection explained itself (its own DEALLOCATE) is no sign of a pooler.
    expect(sharesServerConnections(address)).toBe(false);
  });

  it.each(TIERS)('runs a %s write unit once more when its server connection holds the fence check the client does not know of (42P05), stores its row once, and stops preparing there', async (tier) => {
    const t = tenants[tier];
    await fx.inTenant(t, async (em) => {
      delete clientOf(em).connection.parsedStatements[FENCE_CHECK_STATEMENT];
    });
    const recovered = preparedStatementRecoveries.writes;
    expect(await insertProject(t, `known-check-${tier}`)).toBe(2);
    expect(preparedStatementRecoveries.writes).toBe(recovered + 1);
    expect(await countByName(t, `known-check-${tier}`)).toBe(1);
    // A 42P05 cannot happen on a session of one's own: the address shares server connections.
    expect(sharesServerConnections(address)).toBe(true);
    expect(await insertProject(t, `known-check-after-${tier}`)).toBe(1);
    expect(preparedStatementRecoveries.writes).toBe(recovered + 1);
  });

  it.each(TIERS)('recovers a %s read statement whose server connection holds the prepared setup the client does not know of (42P05), and sends the setup unnamed from then on', async (tier) => {
    const t = tenants[tier];
    await fx.readInTenant(t, async (em) => {
      await em.query('SELECT 1');
      clientOf(em).setupParsed = false;
      const recovered = preparedStatementRecoveries.reads;
      const [row] = await em.query(`SELECT current_setting('app.tenant_id') AS tenant, current_setting('transaction_read_only') AS ro`);
      expect(row).toEqual({ tenant: t.id, ro: 'on' });
      expect(preparedStatementRecoveries.reads).toBe(recovered + 1);
      expect(clientOf(em).preparesStatements).toBe(false);
      // Unnamed now: a setup the server lost is no longer needed.
      await em.query(`DEALLOCATE ${readSetupName()}`);
      expect(await preparedSetups(em)).toBe(0);
      expect(preparedStatementRecoveries.reads).toBe(recovered + 1);
    });
  });

  it("names the prepared statements after their text, so two releases with different SQL never bind each other's", () => {
    expect(enterReadStatement(true)).toMatch(/^strata_enter_read_[0-9a-f]{12}$/);
    expect(enterReadStatement(true, { statementTimeoutMs: 1000, lockTimeoutMs: 100 })).not.toBe(enterReadStatement(true, { statementTimeoutMs: 2000, lockTimeoutMs: 100 }));
    expect(FENCE_CHECK_STATEMENT).toMatch(/^strata_fence_check_[0-9a-f]{12}$/);
  });
});
