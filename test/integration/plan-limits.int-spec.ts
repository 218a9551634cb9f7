import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE, TIERS } from '#strata/control-plane';
import { PlanCatalog, PlanLimits, PlanLimitReachedError, type QuotaMetric } from '#strata/plans';
import { readUsage } from '../../libs/platform/plans/usage.counters';
import { Client, escapeIdentifier } from 'pg';
import { createTenancyFixture, deferred, rejectionOf, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { urlFor } from '../support/test-env';

/**
 * PlanLimits against real homes on every tier, without HTTP: what a domain create or delete does
 * inside its transaction, and what concurrent transactions of one tenant see of each other.
 */
describe('PlanLimits: quota reservations in the tenant transaction', () => {
  let fx: TenancyFixture;
  let limits: PlanLimits;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  /** A plan of its own per tenant and test, so limits are whatever the test says. */
  const withPlan = async (tenant: TestTenant, quotas: Partial<Record<'max_projects' | 'max_storage_bytes', number | null>>) => {
    const id = `int-${randomBytes(4).toString('hex')}`;
    await fx.ownerQuery(`INSERT INTO control.plans (id, name, default_tier, max_projects, max_storage_bytes) VALUES ($1, $1, 'pool', $2, $3)`, [
      id,
      quotas.max_projects ?? null,
      quotas.max_storage_bytes ?? null,
    ]);
    await fx.ownerQuery(`UPDATE control.tenants SET plan = $2 WHERE id = $1`, [tenant.id, id]);
    fx.registry.invalidateTenant(tenant);
  };
  const used = async (tenant: TestTenant, counter: string): Promise<number> => {
    // The counter's row and its shards (unlimited quotas count on `<counter>#<n>`).
    const rows = await fx.ownerQuery<{ used: string | null }>(
      `SELECT sum(used) AS used FROM ${tenant.table('usage_counters')} WHERE tenant_id = $1 AND split_part(metric, '#', 1) = $2`,
      [tenant.id, counter],
      tenant.database,
    );
    return Number(rows[0]?.used ?? 0);
  };
  const reserve = (tenant: TestTenant, metric: QuotaMetric, amount = 1, holdMs = 0) =>
    fx.inTenant(tenant, async () => {
      await limits.reserve(metric, amount);
      // Held open like a create whose insert and listeners still run: the others must wait, not overtake.
      if (holdMs) await sleep(holdMs);
    });

  beforeAll(async () => {
    fx = await createTenancyFixture();
    const catalog = new PlanCatalog(fx.module.get<DataSource>(CONTROL_DATA_SOURCE), fx.config, fx.registry);
    limits = new PlanLimits(fx.conn, fx.ctx, fx.registry, catalog);
    for (const tier of TIERS) tenants[tier] = await fx.onboard(tier, `lim-${tier}`);
  });
  afterAll(async () => {
    await fx?.close();
  });

  it.each(TIERS)('%s: 10 concurrent transactions at limit − 1 → exactly one reserves, 9 get 402, the counter equals the limit', async (tier) => {
    const tenant = tenants[tier];
    await withPlan(tenant, { max_projects: 5 });
    for (let i = 0; i < 4; i++) await reserve(tenant, 'projects');

    const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => reserve(tenant, 'projects', 1, 30)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    const refused = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected').map((o) => o.reason as PlanLimitReachedError);
    expect(refused).toHaveLength(9);
    for (const err of refused) {
      expect(err).toBeInstanceOf(PlanLimitReachedError);
      expect([err.getStatus(), err.metric, err.limit]).toEqual([402, 'projects', 5]);
    }
    expect(await used(tenant, 'projects')).toBe(5);
  });

  it.each(TIERS)('%s: a reservation whose transaction rolls back is not counted; a release gives its place back', async (tier) => {
    const tenant = tenants[tier];
    await withPlan(tenant, { max_storage_bytes: 100 });
    await reserve(tenant, 'storageBytes', 60);
    const failed = await rejectionOf(
      fx.inTenant(tenant, async () => {
        await limits.reserve('storageBytes', 40);
        throw new Error('the insert after the reservation failed');
      }),
    );
    expect(failed.message).toBe('the insert after the reservation failed');
    expect(await used(tenant, 'storage_bytes')).toBe(60);

    // More than is left is refused whole, and changes nothing.
    expect(await rejectionOf(reserve(tenant, 'storageBytes', 41))).toBeInstanceOf(PlanLimitReachedError);
    expect(await used(tenant, 'storage_bytes')).toBe(60);
    await reserve(tenant, 'storageBytes', 40);
    expect(await used(tenant, 'storage_bytes')).toBe(100);

    await fx.inTenant(tenant, () => limits.release('storageBytes', 70));
    expect(await used(tenant, 'storage_bytes')).toBe(30);
  });

  it.each(TIERS)('%s: an open create holds no lock on its counter; another create of the tenant reserves and commits meanwhile', async (tier) => {
    const tenant = tenants[tier];
    await withPlan(tenant, { max_projects: 100 });
    await reserve(tenant, 'projects');
    const before = await used(tenant, 'projects');
    const reserved = deferred();
    const finish = deferred();
    const open = fx.inTenant(tenant, async () => {
      await limits.reserve('projects');
      reserved.resolve();
      await finish.promise;
    });
    try {
      await reserved.promise;
      // NOWAIT fails at once (55P03) if any transaction holds the row: no timing involved. With the
      // reservation run where reserve() is called, the open create above would hold it until it ends.
      const locked = await fx.ownerQuery(
        `SELECT used FROM ${tenant.table('usage_counters')} WHERE tenant_id = $1 AND metric = 'projects' FOR UPDATE NOWAIT`,
        [tenant.id],
        tenant.database,
      );
      expect(locked).toHaveLength(1);
      await reserve(tenant, 'projects');
      expect(await used(tenant, 'projects')).toBe(before + 1);
    } finally {
      finish.resolve();
    }
    await open;
    expect(await used(tenant, 'projects')).toBe(before + 2);
  });

  it.each(TIERS)('%s: a refusal at commit rolls back everything the unit wrote before it', async (tier) => {
    const tenant = tenants[tier];
    await withPlan(tenant, { max_projects: 0 });
    const name = `refused-${randomBytes(4).toString('hex')}`;
    const refused = await rejectionOf(
      fx.inTenant(tenant, async (em) => {
        await limits.reserve('projects');
        await em.query(`INSERT INTO projects (name) VALUES ($1)`, [name]);
      }),
    );
    expect(refused).toBeInstanceOf(PlanLimitReachedError);
    const rows = await fx.ownerQuery(`SELECT 1 FROM ${tenant.table('projects')} WHERE tenant_id = $1 AND name = $2`, [tenant.id, name], tenant.database);
    expect(rows).toHaveLength(0);
  });

  it('reservations and releases of one unit are applied together at its commit', async () => {
    const tenant = tenants.silo;
    // Earlier tests left bytes on this counter: the plan leaves 100 on top of them.
    const before = await used(tenant, 'storage_bytes');
    await withPlan(tenant, { max_storage_bytes: before + 100 });
    await reserve(tenant, 'storageBytes', 90);
    // Replacing a 50-byte file with a 55-byte one fits (90 − 50 + 55 = 95), though 90 + 55 alone would not.
    await fx.inTenant(tenant, async () => {
      await limits.reserve('storageBytes', 30);
      await limits.reserve('storageBytes', 25);
      await limits.release('storageBytes', 50);
    });
    expect(await used(tenant, 'storage_bytes')).toBe(before + 95);
  });

  it('an unlimited quota (null) refuses nothing and still counts', async () => {
    const tenant = tenants.pool;
    await withPlan(tenant, { max_projects: null });
    const before = await used(tenant, 'projects');
    await Promise.all(Array.from({ length: 5 }, () => reserve(tenant, 'projects')));
    expect(await used(tenant, 'projects')).toBe(before + 5);
  });

  it.each(TIERS)('%s: an unlimited quota counts on shard rows; usage, a release and a later limit all see their sum', async (tier) => {
    const tenant = tenants[tier];
    await withPlan(tenant, { max_projects: null });
    const before = await used(tenant, 'projects');
    await Promise.all(Array.from({ length: 12 }, () => reserve(tenant, 'projects')));
    const shards = await fx.ownerQuery<{ metric: string }>(
      `SELECT metric FROM ${tenant.table('usage_counters')} WHERE tenant_id = $1 AND metric LIKE 'projects#%' AND used > 0`,
      [tenant.id],
      tenant.database,
    );
    // 12 reservations on 16 shards at random: all on one row has odds of 16^-11.
    expect(shards.length).toBeGreaterThan(1);
    expect(await fx.inTenant(tenant, (em) => readUsage(em, tenant.id, ['projects']))).toEqual(new Map([['projects', before + 12]]));

    await fx.inTenant(tenant, () => limits.release('projects', 2));
    expect(await used(tenant, 'projects')).toBe(before + 10);

    // The plan gets a limit: the first reservation drains the shards into the counter's row and
    // checks the limit against all of it.
    await withPlan(tenant, { max_projects: before + 11 });
    await reserve(tenant, 'projects');
    expect(await rejectionOf(reserve(tenant, 'projects'))).toBeInstanceOf(PlanLimitReachedError);
    const rows = await fx.ownerQuery<{ metric: string; used: string }>(
      `SELECT metric, used FROM ${tenant.table('usage_counters')} WHERE tenant_id = $1 AND split_part(metric, '#', 1) = 'projects' AND used > 0`,
      [tenant.id],
      tenant.database,
    );
    expect(rows.map((r) => [r.metric, Number(r.used)])).toEqual([['projects', before + 11]]);
  });

  const rowsOf = (tenant: TestTenant, counter: string) =>
    fx.ownerQuery<{ metric: string; used: string; allowance: string | null; allowance_limit: string | null }>(
      `SELECT metric, used, allowance, allowance_limit FROM ${tenant.table('usage_counters')} WHERE tenant_id = $1 AND split_part(metric, '#', 1) = $2 ORDER BY metric`,
      [tenant.id, counter],
      tenant.database,
    );

  it.each(TIERS)('%s: far from the limit, creates take from shard allowances (the counter row is left alone) and the total stays exact', async (tier) => {
    const tenant = tenants[tier];
    const before = await used(tenant, 'projects');
    await withPlan(tenant, { max_projects: before + 1000 });
    await reserve(tenant, 'projects');
    // The slow path folded everything into the row and handed out half the headroom: 16 × ⌊999 / 32⌋.
    const granted = await rowsOf(tenant, 'projects');
    expect(granted.filter((r) => r.metric.includes('#')).map((r) => [Number(r.used), Number(r.allowance), Number(r.allowance_limit)])).toEqual(
      Array.from({ length: 16 }, () => [0, 31, before + 1000]),
    );
    expect(granted.find((r) => r.metric === 'projects')?.used).toBe(String(before + 1));
    await Promise.all(Array.from({ length: 10 }, () => reserve(tenant, 'projects')));
    const after = await rowsOf(tenant, 'projects');
    expect(after.find((r) => r.metric === 'projects')?.used).toBe(String(before + 1));
    expect(await used(tenant, 'projects')).toBe(before + 11);
  });

  it.each(TIERS)('%s: 60 concurrent creates with 40 places left → exactly 40, through allowances and the slow path alike', async (tier) => {
    const tenant = tenants[tier];
    const before = await used(tenant, 'projects');
    // Room for 1,000 more: allowances are handed out, then the limit is lowered to 40 more.
    await withPlan(tenant, { max_projects: before + 1000 });
    await reserve(tenant, 'projects');
    await withPlan(tenant, { max_projects: before + 41 });
    const outcomes = await Promise.allSettled(Array.from({ length: 60 }, () => reserve(tenant, 'projects', 1, 5)));
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(40);
    for (const o of outcomes) if (o.status === 'rejected') expect(o.reason).toBeInstanceOf(PlanLimitReachedError);
    expect(await used(tenant, 'projects')).toBe(before + 41);
  });

  it("a create whose shard ran dry under it lets go of that shard before it waits for the counter row, so it cannot deadlock with the slow path's holder", async () => {
    const tenant = tenants.pool;
    const before = await used(tenant, 'projects');
    const limit = before + 1000;
    await withPlan(tenant, { max_projects: limit });
    await reserve(tenant, 'projects'); // the slow path hands every shard an allowance
    const connect = async () => {
      const c = new Client({ connectionString: urlFor(tenant.database), application_name: 'strata-test-deadlock' });
      await c.connect();
      await c.query(`SET search_path TO ${escapeIdentifier(tenant.schema)}`);
      return c;
    };
    const [drainer, creator, folder] = [await connect(), await connect(), await connect()];
    const pidOf = async (c: Client) => (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid;
    const [creatorPid, drainerPid, folderPid] = [await pidOf(creator), await pidOf(drainer), await pidOf(folder)];
    const blockersOfCreator = async () =>
      (await fx.ownerQuery<{ b: number[] }>('SELECT pg_blocking_pids($1) AS b', [creatorPid]))[0].b;
    try {
      // Another unit empties shard 3's allowance and has not committed yet.
      await drainer.query('BEGIN');
      await drainer.query(`UPDATE usage_counters SET allowance = 0 WHERE tenant_id = $1 AND metric = 'projects#3'`, [tenant.id]);
      await creator.query('BEGIN');
      const reserving = creator.query<{ ok: boolean }>(`SELECT usage_reserve($1, 'projects', 1, $2, 3) AS ok`, [tenant.id, limit]);
      expect(await waitFor(blockersOfCreator, (b) => b.includes(drainerPid), 5000)).toEqual([drainerPid]);
      // The slow path's holder takes the counter row; then the drainer commits and the creator's
      // re-check of shard 3 fails: it goes to the slow path and waits for the counter row.
      await folder.query('BEGIN');
      await folder.query(`SELECT 1 FROM usage_counters WHERE tenant_id = $1 AND metric = 'projects' FOR UPDATE`, [tenant.id]);
      await drainer.query('COMMIT');
      expect(await waitFor(blockersOfCreator, (b) => b.includes(folderPid), 5000)).toEqual([folderPid]);
      // What the holder takes next: shard 3. NOWAIT fails at once (55P03) if the creator kept it
      // from its failed update, which is the deadlock (the creator waits for the holder's row).
      const shard = await folder.query(`SELECT 1 FROM usage_counters WHERE tenant_id = $1 AND metric = 'projects#3' FOR UPDATE NOWAIT`, [tenant.id]);
      expect(shard.rowCount).toBe(1);
      await folder.query('COMMIT');
      expect((await reserving).rows[0].ok).toBe(true);
      await creator.query('COMMIT');
    } finally {
      for (const c of [drainer, creator, folder]) await c.end().catch(() => undefined);
    }
    expect(await used(tenant, 'projects')).toBe(before + 2);
  });

  it('allowances granted under a limit are not used after an unlimited spell that ends on the same limit', async () => {
    const tenant = tenants.pool;
    const before = await used(tenant, 'projects');
    const limit = before + 100;
    await withPlan(tenant, { max_projects: limit });
    await reserve(tenant, 'projects');
    // Unlimited for a while: 150 more, past the old limit, while 15 of 16 shards keep their allowance.
    await withPlan(tenant, { max_projects: null });
    await reserve(tenant, 'projects', 150);
    // The same limit again: every create is refused, whichever shard it lands on.
    await withPlan(tenant, { max_projects: limit });
    for (let i = 0; i < 8; i++) expect(await rejectionOf(reserve(tenant, 'projects'))).toBeInstanceOf(PlanLimitReachedError);
    expect(await used(tenant, 'projects')).toBe(before + 151);
  });

  it('invoices count per UTC month and a release gives nothing back', async () => {
    const tenant = tenants.bridge;
    const month = `invoices:${new Date().toISOString().slice(0, 7)}`;
    await reserve(tenant, 'invoicesPerMonth');
    await reserve(tenant, 'invoicesPerMonth');
    await fx.inTenant(tenant, () => limits.release('invoicesPerMonth'));
    expect(await used(tenant, month)).toBe(2);
  });

  it('outside a tenant transaction a reservation is refused before any statement (fail closed)', async () => {
    await expect(limits.reserve('projects')).rejects.toThrow(/no tenant context/);
    await expect(fx.ctx.run({ tenant: tenants.pool.placement }, () => limits.reserve('projects'))).rejects.toThrow(/no open tenant transaction/);
  });
});
