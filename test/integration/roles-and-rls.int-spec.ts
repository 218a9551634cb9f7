import type { Client } from 'pg';
import { createTenancyFixture, rejectionOf, sqlState, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

const TENANT_TABLES = ['invoices', 'projects', 'tasks'];
const TIERS = ['pool', 'bridge', 'silo'] as const;

describe('database roles and row-level security', () => {
  let fx: TenancyFixture;
  const tenants = {} as Record<(typeof TIERS)[number], TestTenant>;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of TIERS) {
      const t = (tenants[tier] = await fx.onboard(tier, `rls-${tier}`));
      await fx.inTenant(t, async (em) => {
        const [{ id }] = await em.query(`INSERT INTO projects (name) VALUES ('seeded') RETURNING id`);
        await em.query(`INSERT INTO tasks (project_id, title) VALUES ($1, 'seeded')`, [id]);
        await em.query(`INSERT INTO invoices (number, amount, currency) VALUES ('S-1', 1, 'EUR')`);
      });
    }
  });
  afterAll(async () => {
    await fx?.close();
  });

  describe('the app role', () => {
    it('is a login role without SUPERUSER, BYPASSRLS, CREATEDB or CREATEROLE, directly or inherited', async () => {
      const [role] = await fx.ownerQuery(
        `SELECT rolcanlogin, rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = $1`,
        [fx.db.appRole],
      );
      expect(role).toEqual({ rolcanlogin: true, rolsuper: false, rolbypassrls: false, rolcreatedb: false, rolcreaterole: false });
      const powerful = await fx.ownerQuery(
        `SELECT r.rolname FROM pg_roles r
          WHERE pg_has_role($1, r.oid, 'MEMBER') AND (r.rolsuper OR r.rolbypassrls OR r.rolname IN ('pg_read_all_data', 'pg_write_all_data'))`,
        [fx.db.appRole],
      );
      expect(powerful).toEqual([]);
    });

    it.each(TIERS)('owns no table or schema where %s tenant tables live', async (tier) => {
      const t = tenants[tier];
      const tables = await fx.ownerQuery<{ tablename: string; tableowner: string }>(
        `SELECT tablename, tableowner FROM pg_tables WHERE schemaname = $1 ORDER BY tablename`,
        [t.schema],
        t.database,
      );
      // The tables are there (so the check below is not vacuous) and none is the app role's.
      expect(tables.map((r) => r.tablename)).toEqual(expect.arrayContaining(TENANT_TABLES));
      expect(tables.filter((r) => r.tableowner === fx.db.appRole)).toEqual([]);
      const owned = await fx.ownerQuery<{ n: number }>(
        `SELECT (SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1)::int
              + (SELECT count(*) FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE r.rolname = $1)::int AS n`,
        [fx.db.appRole],
        t.database,
      );
      expect(owned[0].n).toBe(0);
    });
  });

  describe('the control plane and the data plane use separate roles', () => {
    it('denies a tenant unit of work any access to the control plane', async () => {
      for (const table of ['users', 'memberships', 'tenants', 'pools']) {
        const read = await rejectionOf(fx.inTenant(tenants.pool, (em) => em.query(`SELECT count(*) FROM control.${table}`)));
        expect(sqlState(read)).toBe('42501');
      }
      const write = await rejectionOf(fx.inTenant(tenants.bridge, (em) => em.query(`UPDATE control.tenants SET status = 'active'`)));
      expect(sqlState(write)).toBe('42501');
    });

    it('gives the control-plane role no access to tenant tables', async () => {
      const url = new URL(fx.db.ownerUrl);
      url.username = fx.config.controlDbUser;
      const { Client: PgClient } = await import('pg');
      const c = new PgClient({ connectionString: url.toString() });
      await c.connect();
      try {
        await expect(c.query(`SELECT count(*) FROM shared.projects`)).rejects.toMatchObject({ code: '42501' });
        await expect(c.query(`SELECT count(*) FROM control.tenants`)).resolves.toBeDefined();
      } finally {
        await c.end();
      }
    });
  });

  describe('a direct app-role connection that never set app.tenant_id', () => {
    const clients: Client[] = [];
    afterAll(async () => {
      await Promise.all(clients.map((c) => c.end()));
    });
    const connect = async (t: TestTenant) => {
      const c = await fx.appClient(t.database);
      clients.push(c);
      const [{ usr, tenant }] = (await c.query(`SELECT current_user AS usr, current_setting('app.tenant_id', true) AS tenant`)).rows;
      expect(usr).toBe(fx.db.appRole);
      expect(tenant ?? '').toBe('');
      return c;
    };

    it.each(TIERS)('sees no rows of the %s tenant tables although rows exist', async (tier) => {
      const t = tenants[tier];
      const c = await connect(t);
      for (const table of TENANT_TABLES) {
        const [{ n: stored }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.table(table as 'projects')}`, [], t.database);
        expect(stored).toBeGreaterThan(0);
        const { rows } = await c.query(`SELECT count(*)::int AS n FROM ${t.table(table as 'projects')}`);
        expect(rows[0].n).toBe(0);
      }
    });

    it.each(TIERS)('cannot insert into the %s tenant tables, with or without a tenant_id', async (tier) => {
      const t = tenants[tier];
      const c = await connect(t);
      const explicit = await rejectionOf(c.query(`INSERT INTO ${t.table('projects')} (tenant_id, name) VALUES ($1, 'x')`, [t.id]));
      expect(sqlState(explicit)).toBe('42501');
      expect(explicit.message).toMatch(/row-level security/);
      const implicit = await rejectionOf(c.query(`INSERT INTO ${t.table('invoices')} (number, amount, currency) VALUES ('X', 1, 'EUR')`));
      expect(['42501', '23502']).toContain(sqlState(implicit));
      const [{ n }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM ${t.table('projects')} WHERE name = 'x'`, [], t.database);
      expect(n).toBe(0);
    });

    it('cannot update or delete rows it cannot see', async () => {
      const t = tenants.pool;
      const c = await connect(t);
      expect((await c.query(`UPDATE shared.projects SET name = 'defaced'`)).rowCount).toBe(0);
      expect((await c.query(`DELETE FROM shared.invoices`)).rowCount).toBe(0);
      const [{ n }] = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.invoices WHERE tenant_id = $1`, [t.id]);
      expect(n).toBe(1);
    });

    it('cannot switch row security off or disable it on a table', async () => {
      const c = await connect(tenants.pool);
      await c.query(`SET row_security = off`);
      const off = await rejectionOf(c.query(`SELECT count(*) FROM shared.projects`));
      expect(sqlState(off)).toBe('42501');
      expect(off.message).toMatch(/row-level security/);
      await c.query(`RESET row_security`);
      const alter = await rejectionOf(c.query(`ALTER TABLE shared.projects DISABLE ROW LEVEL SECURITY`));
      expect(sqlState(alter)).toBe('42501');
      const policy = await rejectionOf(c.query(`CREATE POLICY open_door ON shared.projects USING (true)`));
      expect(sqlState(policy)).toBe('42501');
    });
  });

  describe('tenant tables', () => {
    it.each(TIERS)('have RLS enabled and forced on every %s tenant table', async (tier) => {
      const t = tenants[tier];
      const rows = await fx.ownerQuery<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>(
        `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND c.relname = ANY($2) ORDER BY c.relname`,
        [t.schema, TENANT_TABLES],
        t.database,
      );
      expect(rows).toEqual(TENANT_TABLES.map((relname) => ({ relname, relrowsecurity: true, relforcerowsecurity: true })));
    });

    it.each(TIERS)('guard reads and writes of every %s tenant table with a policy on app.tenant_id', async (tier) => {
      const t = tenants[tier];
      const policies = await fx.ownerQuery<{ tablename: string; cmd: string; permissive: string; qual: string | null; with_check: string | null }>(
        `SELECT tablename, cmd, permissive, qual, with_check FROM pg_policies WHERE schemaname = $1 ORDER BY tablename, policyname`,
        [t.schema],
        t.database,
      );
      for (const table of TENANT_TABLES) {
        const own = policies.filter((p) => p.tablename === table);
        expect(own.length).toBeGreaterThan(0);
        // A guarding policy covering every command, on both sides...
        expect(own).toContainEqual(
          expect.objectContaining({
            cmd: 'ALL',
            qual: expect.stringMatching(/tenant_id = .*current_setting\('app\.tenant_id'::text, true\)/),
            with_check: expect.stringMatching(/tenant_id = .*current_setting\('app\.tenant_id'::text, true\)/),
          }),
        );
        // ...and no permissive policy that would widen it (permissive policies are OR-ed).
        for (const p of own.filter((x) => x.permissive === 'PERMISSIVE')) {
          if (p.cmd !== 'INSERT') expect(p.qual).toMatch(/app\.tenant_id/);
          if (p.cmd !== 'SELECT' && p.cmd !== 'DELETE') expect(p.with_check ?? p.qual).toMatch(/app\.tenant_id/);
        }
      }
    });

    it.each(TIERS)('leave no table with a tenant_id column unprotected in the %s placement', async (tier) => {
      const t = tenants[tier];
      const rows = await fx.ownerQuery<{ relname: string; protected: boolean }>(
        `SELECT c.relname, (c.relrowsecurity AND c.relforcerowsecurity) AS protected
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
          WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
        [t.schema],
        t.database,
      );
      expect(rows.map((r) => r.relname)).toEqual(expect.arrayContaining(TENANT_TABLES));
      expect(rows.filter((r) => !r.protected)).toEqual([]);
    });
  });
});
