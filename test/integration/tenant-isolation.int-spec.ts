import type { EntityManager } from 'typeorm';
import { createTenancyFixture, rejectionOf, sleep, sqlState, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

/** Inserts `names` as projects of the current tenant; returns their ids. */
async function addProjects(em: EntityManager, names: string[]): Promise<string[]> {
  const rows: Array<{ id: string }> = await em.query(`INSERT INTO projects (name) SELECT unnest($1::text[]) RETURNING id`, [names]);
  return rows.map((r) => r.id);
}

describe('tenant isolation', () => {
  let fx: TenancyFixture;

  beforeAll(async () => {
    fx = await createTenancyFixture();
  });
  afterAll(async () => {
    await fx?.close();
  });

  /** Owner's view (no RLS) of a tenant's rows in its own table. */
  const ownerRows = (t: TestTenant, table: 'projects' | 'tasks' | 'invoices' = 'projects') =>
    fx.ownerQuery<{ tenant_id: string; id: string; name?: string }>(
      `SELECT * FROM ${t.table(table)} WHERE tenant_id = $1 ORDER BY 2`,
      [t.id],
      t.database,
    );

  describe('pool tier: RLS on a deliberately unfiltered query', () => {
    let a: TestTenant;
    let b: TestTenant;
    let aProjects: string[];
    let bProjects: string[];

    beforeEach(async () => {
      a = await fx.onboard('pool', 'rls-a');
      b = await fx.onboard('pool', 'rls-b');
      aProjects = await fx.inTenant(a, async (em) => {
        const ids = await addProjects(em, ['a1', 'a2', 'a3']);
        await em.query(`INSERT INTO tasks (project_id, title) VALUES ($1, 'a-task')`, [ids[0]]);
        await em.query(`INSERT INTO invoices (number, amount, currency) VALUES ('A-1', 100, 'EUR')`);
        return ids;
      });
      bProjects = await fx.inTenant(b, async (em) => {
        const ids = await addProjects(em, ['b1', 'b2']);
        await em.query(`INSERT INTO tasks (project_id, title) VALUES ($1, 'b-task'), ($1, 'b-task-2')`, [ids[0]]);
        await em.query(`INSERT INTO invoices (number, amount, currency) VALUES ('B-1', 200, 'USD')`);
        return ids;
      });
      // Both tenants' rows really are in the same table.
      const [{ n }] = await fx.ownerQuery<{ n: number }>(
        `SELECT count(*)::int AS n FROM shared.projects WHERE tenant_id = ANY($1::uuid[])`,
        [[a.id, b.id]],
      );
      expect(n).toBe(5);
    });

    it('returns only the current tenant\'s rows to SELECT * FROM projects without a WHERE clause', async () => {
      const rows: Array<{ tenant_id: string; id: string; name: string }> = await fx.inTenant(a, (em) => em.query(`SELECT * FROM projects`));
      expect(rows.map((r) => r.name).sort()).toEqual(['a1', 'a2', 'a3']);
      expect(new Set(rows.map((r) => r.tenant_id))).toEqual(new Set([a.id]));
    });

    it('returns only the current tenant\'s tasks and invoices without a WHERE clause', async () => {
      const out = await fx.inTenant(b, async (em) => ({
        tasks: (await em.query(`SELECT tenant_id, title FROM tasks ORDER BY title`)) as Array<{ tenant_id: string; title: string }>,
        invoices: (await em.query(`SELECT tenant_id, number FROM invoices`)) as Array<{ tenant_id: string; number: string }>,
      }));
      expect(out.tasks).toEqual([
        { tenant_id: b.id, title: 'b-task' },
        { tenant_id: b.id, title: 'b-task-2' },
      ]);
      expect(out.invoices).toEqual([{ tenant_id: b.id, number: 'B-1' }]);
    });

    it('does not return a project of another tenant, even asked for by id and tenant_id', async () => {
      const rows = await fx.inTenant(a, (em) => em.query(`SELECT * FROM projects WHERE id = $1 OR tenant_id = $2`, [bProjects[0], b.id]));
      expect(rows).toEqual([]);
    });

    it("rejects an INSERT carrying another tenant's tenant_id (WITH CHECK)", async () => {
      const err = await rejectionOf(fx.inTenant(a, (em) => em.query(`INSERT INTO projects (tenant_id, name) VALUES ($1, 'planted')`, [b.id])));
      expect(sqlState(err)).toBe('42501');
      expect(err.message).toMatch(/row-level security/);
      expect((await ownerRows(b)).map((r) => r.name)).toEqual(expect.not.arrayContaining(['planted']));
      expect(await ownerRows(b)).toHaveLength(2);
    });

    it("rejects an UPDATE that would hand the current tenant's row to another tenant", async () => {
      const err = await rejectionOf(
        fx.inTenant(a, (em) => em.query(`UPDATE projects SET tenant_id = $1 WHERE id = $2`, [b.id, aProjects[0]])),
      );
      expect(sqlState(err)).toBe('42501');
      expect(await ownerRows(a)).toHaveLength(3);
      expect(await ownerRows(b)).toHaveLength(2);
    });

    it('touches only the current tenant\'s rows with an UPDATE without a WHERE clause', async () => {
      const updated: Array<{ tenant_id: string }> = await fx.inTenant(a, (em) =>
        em.query(`WITH u AS (UPDATE projects SET name = 'renamed' RETURNING tenant_id) SELECT tenant_id FROM u`),
      );
      expect(updated).toHaveLength(3);
      expect(new Set(updated.map((r) => r.tenant_id))).toEqual(new Set([a.id]));
      expect((await ownerRows(a)).map((r) => r.name)).toEqual(['renamed', 'renamed', 'renamed']);
      expect((await ownerRows(b)).map((r) => r.name).sort()).toEqual(['b1', 'b2']);
    });

    it('touches only the current tenant\'s rows with a DELETE without a WHERE clause', async () => {
      const deleted: Array<{ tenant_id: string }> = await fx.inTenant(a, (em) =>
        em.query(`WITH d AS (DELETE FROM projects RETURNING tenant_id) SELECT tenant_id FROM d`),
      );
      expect(deleted).toHaveLength(3);
      expect(new Set(deleted.map((r) => r.tenant_id))).toEqual(new Set([a.id]));
      expect(await ownerRows(a)).toHaveLength(0);
      expect(await ownerRows(b)).toHaveLength(2);
      expect(await ownerRows(b, 'tasks')).toHaveLength(2);
      expect(await ownerRows(b, 'invoices')).toHaveLength(1);
    });

    it("does not let a task reference another tenant's project (composite foreign key)", async () => {
      // A's project exists; B can attach a task to its own project, but not to A's.
      expect((await ownerRows(a)).map((r) => r.id)).toContain(aProjects[0]);
      await fx.inTenant(b, (em) => em.query(`INSERT INTO tasks (project_id, title) VALUES ($1, 'own project')`, [bProjects[1]]));
      const err = await rejectionOf(
        fx.inTenant(b, (em) => em.query(`INSERT INTO tasks (project_id, title) VALUES ($1, 'foreign project')`, [aProjects[0]])),
      );
      expect(sqlState(err)).toBe('23503');
      expect(err.message).toMatch(/foreign key/);
      const titles = (await fx.ownerQuery<{ title: string }>(`SELECT title FROM shared.tasks WHERE project_id = $1`, [aProjects[0]])).map(
        (r) => r.title,
      );
      expect(titles).toEqual(['a-task']);
    });

    it("does not let a task be written under another tenant's id to reach its project", async () => {
      const err = await rejectionOf(
        fx.inTenant(b, (em) =>
          em.query(`INSERT INTO tasks (tenant_id, project_id, title) VALUES ($1, $2, 'smuggled')`, [a.id, aProjects[0]]),
        ),
      );
      expect(sqlState(err)).toBe('42501');
      expect(await ownerRows(a, 'tasks')).toHaveLength(1);
    });

    it('does not let a task be moved onto another tenant\'s project by UPDATE', async () => {
      const err = await rejectionOf(
        fx.inTenant(b, (em) => em.query(`UPDATE tasks SET project_id = $1`, [aProjects[0]])),
      );
      expect(sqlState(err)).toBe('23503');
    });
  });

  describe('bridge tier', () => {
    let pool: TestTenant;
    let b1: TestTenant;
    let b2: TestTenant;

    beforeAll(async () => {
      pool = await fx.onboard('pool', 'br-pool');
      b1 = await fx.onboard('bridge', 'br-one');
      b2 = await fx.onboard('bridge', 'br-two');
      await fx.inTenant(pool, (em) => addProjects(em, ['pool-1', 'pool-2']));
      await fx.inTenant(b1, (em) => addProjects(em, ['one-1', 'one-2', 'one-3']));
      await fx.inTenant(b2, (em) => addProjects(em, ['two-1']));
    });

    it("keeps a bridge tenant's rows in its own schema", async () => {
      expect(b1.schema).toBe(`t_${b1.slug.replace(/-/g, '_')}`);
      const own = await fx.ownerQuery<{ tenant_id: string; name: string }>(`SELECT tenant_id, name FROM ${b1.table('projects')} ORDER BY name`);
      expect(own).toEqual(['one-1', 'one-2', 'one-3'].map((name) => ({ tenant_id: b1.id, name })));
      const elsewhere = await fx.ownerQuery<{ n: number }>(
        `SELECT (SELECT count(*) FROM shared.projects WHERE tenant_id = $1)::int
              + (SELECT count(*) FROM ${b2.table('projects')} WHERE tenant_id = $1)::int AS n`,
        [b1.id],
      );
      expect(elsewhere[0].n).toBe(0);
    });

    it("hides a bridge tenant's rows from a pool tenant, even addressed by schema", async () => {
      const seen = await fx.inTenant(pool, async (em) => ({
        unqualified: ((await em.query(`SELECT name FROM projects ORDER BY name`)) as Array<{ name: string }>).map((r) => r.name),
        qualified: (await em.query(`SELECT count(*)::int AS n FROM ${b1.table('projects')}`))[0].n,
      }));
      expect(seen).toEqual({ unqualified: ['pool-1', 'pool-2'], qualified: 0 });
    });

    it("hides the pool tenants' rows from a bridge tenant, even addressed by schema", async () => {
      const seen = await fx.inTenant(b1, async (em) => ({
        unqualified: ((await em.query(`SELECT name FROM projects ORDER BY name`)) as Array<{ name: string }>).map((r) => r.name),
        qualified: (await em.query(`SELECT count(*)::int AS n FROM shared.projects`))[0].n,
      }));
      expect(seen).toEqual({ unqualified: ['one-1', 'one-2', 'one-3'], qualified: 0 });
      const [{ n }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.projects WHERE tenant_id = $1`, [pool.id]);
      expect(n).toBe(2);
    });

    it('never shows two bridge tenants on one shared DataSource each other\'s rows', async () => {
      const see = (me: TestTenant, other: TestTenant) =>
        fx.inTenant(me, async (em) => ({
          ds: em.connection,
          mine: ((await em.query(`SELECT name FROM projects ORDER BY name`)) as Array<{ name: string }>).map((r) => r.name),
          theirs: (await em.query(`SELECT count(*)::int AS n FROM ${other.table('projects')}`))[0].n as number,
        }));
      const [one, two] = await Promise.all([see(b1, b2), see(b2, b1)]);
      expect(one.ds).toBe(two.ds);
      expect(one.mine).toEqual(['one-1', 'one-2', 'one-3']);
      expect(two.mine).toEqual(['two-1']);
      expect(one.theirs).toBe(0);
      expect(two.theirs).toBe(0);
    });

    it("rejects a write into another bridge tenant's schema under that tenant's id", async () => {
      const err = await rejectionOf(
        fx.inTenant(b1, (em) => em.query(`INSERT INTO ${b2.table('projects')} (tenant_id, name) VALUES ($1, 'planted')`, [b2.id])),
      );
      expect(sqlState(err)).toBe('42501');
      expect(await ownerRows(b2)).toHaveLength(1);
    });

    it.each([
      ['a bridge tenant', 'another bridge schema', () => [b1, b2] as const],
      ['a bridge tenant', 'the shared schema', () => [b1, pool] as const],
      ['a pool tenant', 'a bridge schema', () => [pool, b2] as const],
    ])("does not let %s plant rows under its own id in %s", async (_who, _where, pick) => {
      const [me, victim] = pick();
      const before = await fx.ownerQuery(`SELECT 1 FROM ${victim.table('projects')}`);
      const err = await rejectionOf(fx.inTenant(me, (em) => em.query(`INSERT INTO ${victim.table('projects')} (name) VALUES ('planted')`)));
      expect(sqlState(err)).toBe('42501');
      expect(await fx.ownerQuery(`SELECT 1 FROM ${victim.table('projects')}`)).toHaveLength(before.length);
    });
  });

  describe('switching tenants', () => {
    it('runs a unit of another tenant entered inside an open unit on its own connection and transaction', async () => {
      const a = await fx.onboard('pool', 'sw-a');
      const b = await fx.onboard('pool', 'sw-b');
      await fx.inTenant(b, (em) => addProjects(em, ['b-before']));
      let inner: { pid: number; names: string[]; sameManager: boolean } | undefined;
      const err = await rejectionOf(
        fx.inTenant(a, async (outer) => {
          await addProjects(outer, ['a-doomed']);
          const [{ pid }] = await outer.query(`SELECT pg_backend_pid() AS pid`);
          inner = await fx.ctx.run({ tenant: b.placement }, () =>
            fx.conn.transaction(async (em) => {
              await addProjects(em, ['b-committed']);
              const rows: Array<{ name: string }> = await em.query(`SELECT name FROM projects ORDER BY name`);
              return { pid: (await em.query(`SELECT pg_backend_pid() AS pid`))[0].pid, names: rows.map((r) => r.name), sameManager: em === outer };
            }),
          );
          expect(inner.pid).not.toBe(pid);
          expect(fx.ctx.tenant.id).toBe(a.id); // the outer context is untouched
          throw new Error('outer unit fails');
        }),
      );
      expect(err.message).toBe('outer unit fails');
      expect(inner).toMatchObject({ names: ['b-before', 'b-committed'], sameManager: false });
      expect((await ownerRows(b)).map((r) => r.name).sort()).toEqual(['b-before', 'b-committed']);
      expect(await ownerRows(a)).toHaveLength(0);
    });
  });

  describe('concurrency', () => {
    it('keeps 200 interleaved concurrent units of 6 tenants on all three tiers apart', async () => {
      const tenants: TestTenant[] = [];
      for (const tier of ['pool', 'pool', 'bridge', 'bridge', 'silo', 'silo'] as const) tenants.push(await fx.onboard(tier, `conc-${tier}`));
      const UNITS = 200;
      // Deterministic shuffle so tenants interleave rather than run in blocks.
      const order = Array.from({ length: UNITS }, (_, i) => i).sort((x, y) => ((x * 7919) % 211) - ((y * 7919) % 211));
      const tenantOf = (i: number) => tenants[i % tenants.length];
      const results = await Promise.all(
        order.map((i, k) => {
          const t = tenantOf(i);
          return fx.ctx.run({ tenant: t.placement }, async () => {
            // Staggered starts: units begin while others are mid-flight, not all in one tick.
            await sleep(k % 25);
            return fx.conn.transaction(async (em) => {
              const name = `unit-${i}`;
              await em.query(`INSERT INTO projects (name) VALUES ($1)`, [name]);
              await em.query(`SELECT pg_sleep(random() * 0.01)`);
              const rows: Array<{ tenant_id: string; name: string }> = await em.query(`SELECT tenant_id, name FROM projects`);
              const [{ setting }] = await em.query(`SELECT current_setting('app.tenant_id') AS setting`);
              return { i, tenant: t, rows, setting, scope: fx.ctx.tenant.id };
            });
          });
        }),
      );
      expect(results).toHaveLength(UNITS);
      const namesOf = (t: TestTenant) => new Set(order.filter((i) => tenantOf(i) === t).map((i) => `unit-${i}`));
      for (const r of results) {
        expect(r.setting).toBe(r.tenant.id);
        expect(r.scope).toBe(r.tenant.id);
        expect(r.rows.map((x) => x.name)).toContain(`unit-${r.i}`);
        const foreign = r.rows.filter((x) => x.tenant_id !== r.tenant.id || !namesOf(r.tenant).has(x.name));
        expect(foreign).toEqual([]);
      }
      const poolUnits = tenants.filter((t) => t.tier === 'pool').reduce((sum, t) => sum + namesOf(t).size, 0);
      for (const t of tenants) {
        const expected = namesOf(t).size;
        expect(expected).toBeGreaterThanOrEqual(33);
        const [{ n, total }] = await fx.ownerQuery<{ n: number; total: number }>(
          `SELECT count(*) FILTER (WHERE tenant_id = $1)::int AS n,
                  count(*) FILTER (WHERE name LIKE 'unit-%')::int AS total FROM ${t.table('projects')}`,
          [t.id],
          t.database,
        );
        expect(n).toBe(expected);
        // No other tenant's unit wrote into this tenant's table (the two pool tenants share one).
        expect(total).toBe(t.tier === 'pool' ? poolUnits : expected);
      }
    });
  });
});
