import { randomBytes, randomUUID } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { migrateSchema } from '#strata/migrator';
import { HomeCopier } from '../../libs/platform/moves/home-copier';
import type { StrataConfig } from '../../libs/platform/common/strata.config';
import { OwnerConnections, type TenantHome } from '#strata/tenancy/platform';
import { nextVersion, sqlMigration, withExtra } from '../support/fleet-fixture';
import { adminUrl, runInfo } from '../support/test-env';

jest.setTimeout(60_000);

// A tenant table whose column has no extended hash function (json): verified by the md5 fallback.
const NOTES = sqlMigration(nextVersion(), 'json_notes', `SELECT pg_temp.strata_tenant_table('json_notes', $$ body json NOT NULL $$);`);
const TENANT = randomUUID();
const NEIGHBOUR = randomUUID();
const PROJECTS = 6_000; // more than one COPY batch (5,000)

/**
 * The copier as managed PostgreSQL runs it: the owner role is not a superuser, so FORCE ROW LEVEL
 * SECURITY applies to it and COPY FROM refuses a forced table unless the copy lifts FORCE first.
 */
describe('home copier with an owner role that is not a superuser', () => {
  const suffix = randomBytes(4).toString('hex');
  const role = `strata_mover_${suffix}`;
  const database = `strata_copier_${suffix}`;
  let admin: Client;
  let owner: Client;
  let owners: OwnerConnections;

  const home = (schema: string, exclusive: boolean): TenantHome => {
    const u = new URL(adminUrl());
    const port = Number(u.port || 5432);
    return { tier: exclusive ? 'bridge' : 'pool', poolId: 'p', host: u.hostname, port, dataHost: u.hostname, dataPort: port, database, schema, poolDatabase: database, exclusive };
  };
  const enterAs = async (tenant: string, schema: string) =>
    owner.query(`SELECT set_config('app.tenant_id', $1, false), set_config('search_path', $2, false)`, [tenant, escapeIdentifier(schema)]);
  const fill = async (tenant: string, schema: string, projects: number) => {
    await enterAs(tenant, schema);
    await owner.query(`INSERT INTO projects (name, description) SELECT 'p' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'd' || g END FROM generate_series(1, $1::int) g`, [projects]);
    await owner.query(`INSERT INTO tasks (project_id, title, status) SELECT id, 'task of ' || name, 'doing' FROM projects`);
    await owner.query(`INSERT INTO invoices (number, amount, currency, due_at) SELECT 'INV-' || g, g * 100, 'EUR', now() + g * interval '1 day' FROM generate_series(1, 700) g`);
    await owner.query(`INSERT INTO json_notes (body) SELECT json_build_object('n', g) FROM generate_series(1, 30) g`);
  };
  const copy = async (from: TenantHome, to: TenantHome) => {
    const copier = new HomeCopier(owners, from, to, TENANT, randomUUID());
    try {
      await copier.startCapture();
      const copied = await copier.copySnapshot(async () => undefined);
      const checks = await copier.verify();
      await copier.stopCapture();
      return { copied, checks };
    } finally {
      await copier.close();
    }
  };
  const forced = async (schema: string) =>
    (await owner.query<{ relname: string; forced: boolean }>(`SELECT relname, relforcerowsecurity AS forced FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' AND relname <> 'strata_migrations' ORDER BY relname`, [schema])).rows;

  beforeAll(async () => {
    admin = new Client({ connectionString: adminUrl() });
    await admin.connect();
    await admin.query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN NOSUPERUSER NOBYPASSRLS`);
    await admin.query(`CREATE DATABASE ${escapeIdentifier(database)} OWNER ${escapeIdentifier(role)}`);
    const url = new URL(adminUrl());
    url.username = role;
    url.password = '';
    url.pathname = `/${database}`;
    owner = new Client({ connectionString: url.toString() });
    await owner.connect();
    owners = new OwnerConnections({ databaseUrl: url.toString() } as StrataConfig);
    for (const schema of ['src_home', 'dst_home', 'shared_home']) {
      await migrateSchema(owner, { schema, set: 'tenant', grantTo: runInfo().appRole, migrations: withExtra(NOTES) });
    }
    await fill(TENANT, 'src_home', PROJECTS);
    await fill(NEIGHBOUR, 'shared_home', 40);
  });
  afterAll(async () => {
    await owner?.end();
    await admin?.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`);
    await admin?.query(`DROP ROLE IF EXISTS ${escapeIdentifier(role)}`);
    await admin?.end();
  });

  it('runs as a role that is neither superuser nor BYPASSRLS, on tables that FORCE row security', async () => {
    const r = await owner.query(`SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user`);
    expect(r.rows).toEqual([{ rolsuper: false, rolbypassrls: false }]);
    expect((await forced('src_home')).every((t) => t.forced)).toBe(true);
  });

  it('copies into an exclusive home with COPY, verifies equal counts and checksums, and leaves FORCE on every table', async () => {
    const { copied, checks } = await copy(home('src_home', true), home('dst_home', true));
    const expected = PROJECTS * 2 + 700 + 30;
    expect(copied).toBe(expected);
    expect(checks.length).toBeGreaterThanOrEqual(4);
    for (const c of checks) {
      expect({ table: c.table, rows: c.targetRows, sum: c.targetChecksum }).toEqual({ table: c.table, rows: c.sourceRows, sum: c.sourceChecksum });
    }
    expect(checks.find((c) => c.table === 'tasks')?.targetRows).toBe(PROJECTS);
    expect(await forced('dst_home')).toEqual((await forced('src_home')).map((t) => ({ ...t, forced: true })));
  });

  it('copies again into the same exclusive home from the start (a copy run again after a crash), with nothing doubled', async () => {
    const { checks } = await copy(home('src_home', true), home('dst_home', true));
    for (const c of checks) expect(c.targetRows).toBe(c.sourceRows);
  });

  it("copies into a shared home through a staging table, leaving the other tenant's rows as they were", async () => {
    await enterAs(NEIGHBOUR, 'shared_home');
    const before = (await owner.query(`SELECT count(*)::int AS n, sum(hashtext(p::text)) AS h FROM projects p`)).rows[0];
    const { copied, checks } = await copy(home('src_home', true), home('shared_home', false));
    expect(copied).toBe(PROJECTS * 2 + 700 + 30);
    for (const c of checks) expect(c.targetChecksum).toBe(c.sourceChecksum);
    await enterAs(NEIGHBOUR, 'shared_home');
    expect((await owner.query(`SELECT count(*)::int AS n, sum(hashtext(p::text)) AS h FROM projects p`)).rows[0]).toEqual(before);
    expect((await forced('shared_home')).every((t) => t.forced)).toBe(true);
  });

  it('finds one changed value in a copied row by its checksum, in a hashed table and in one checked by md5', async () => {
    for (const [table, change] of [
      ['tasks', `UPDATE tasks SET status = 'done' WHERE id = (SELECT id FROM tasks ORDER BY id LIMIT 1)`],
      ['json_notes', `UPDATE json_notes SET body = '{"n": -1}' WHERE id = (SELECT id FROM json_notes ORDER BY id LIMIT 1)`],
    ] as const) {
      await enterAs(TENANT, 'dst_home');
      await owner.query(change);
      const copier = new HomeCopier(owners, home('src_home', true), home('dst_home', true), TENANT, randomUUID());
      try {
        await copier.startCapture();
        const checks = await copier.verify();
        await copier.stopCapture();
        const bad = checks.filter((c) => c.sourceChecksum !== c.targetChecksum).map((c) => c.table);
        expect(bad).toEqual([table]);
        expect(checks.find((c) => c.table === table)!.targetRows).toBe(checks.find((c) => c.table === table)!.sourceRows);
      } finally {
        await copier.close();
      }
      // Put the home back as the copy made it, for the next change.
      await copy(home('src_home', true), home('dst_home', true));
    }
  });
});
