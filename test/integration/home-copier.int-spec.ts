import { randomBytes, randomUUID } from 'node:crypto';
import { Client, escapeIdentifier } from 'pg';
import { migrateSchema } from '#strata/migrator';
import { HomeCopier } from '../../libs/platform/moves/home-copier';
import type { StrataConfig } from '../../libs/platform/common/strata.config';
import { OwnerConnections, type TenantHome } from '#strata/tenancy/platform';
import { deleteTenantRows } from '../../libs/platform/tenancy/tiers/tenant-tables.catalog';
import { startExtraPostgres, type ExtraPostgres } from '../support/extra-postgres';
import { nextVersion, sqlMigration, withExtra } from '../support/fleet-fixture';
import { sleep } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

// A tenant table whose column has no extended hash function (json): verified by the md5 fallback.
const NOTES = sqlMigration(nextVersion(), 'json_notes', `SELECT pg_temp.strata_tenant_table('json_notes', $$ body json NOT NULL $$);`);
const TENANT = randomUUID();
const NEIGHBOUR = randomUUID();
const PROJECTS = 6_000; // more than one COPY batch (5,000)

/**
 * The copier as managed PostgreSQL runs it: the owner role is not a superuser, so FORCE ROW LEVEL
 * SECURITY applies to it and COPY FROM refuses a forced table unless the copy lifts FORCE first.
 * On a server of its own: the lock tests hold locks.
 */
describe('home copier with an owner role that is not a superuser', () => {
  const suffix = randomBytes(4).toString('hex');
  const role = `strata_mover_${suffix}`;
  const appRole = `strata_app_${suffix}`;
  const database = `strata_copier_${suffix}`;
  let server: ExtraPostgres;
  let admin: Client;
  let owner: Client;
  let ownerUrl: string;
  let owners: OwnerConnections;

  const home = (schema: string, exclusive: boolean): TenantHome => ({
    tier: exclusive ? 'bridge' : 'pool',
    poolId: 'p',
    host: server.host,
    port: server.port,
    dataHost: server.host,
    dataPort: server.port,
    database,
    schema,
    poolDatabase: database,
    exclusive,
  });
  /** Another session of the owner, entered as `tenant` in `schema`. */
  const sessionAs = async (tenant: string, schema: string) => {
    const c = new Client({ connectionString: ownerUrl });
    await c.connect();
    await c.query(`SELECT set_config('app.tenant_id', $1, false), set_config('search_path', $2, false)`, [tenant, escapeIdentifier(schema)]);
    return c;
  };
  const timed = async (work: () => Promise<unknown>) => {
    const started = Date.now();
    await work();
    return Date.now() - started;
  };
  const captureTriggers = async (schema: string, table?: string) =>
    (
      await owner.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_trigger g JOIN pg_class c ON c.oid = g.tgrelid
          WHERE c.relnamespace = $1::regnamespace AND g.tgname LIKE 'strata_move_%' AND ($2::text IS NULL OR c.relname = $2)`,
        [schema, table ?? null],
      )
    ).rows[0].n;
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
  /** The schema's indexes and constraints (the schema's name taken out), in a stable order. */
  const shapeOf = async (schema: string) =>
    (
      await owner.query<{ def: string }>(
        `SELECT replace(indexdef, $1 || '.', '') AS def FROM pg_indexes WHERE schemaname = $1
         UNION ALL
         SELECT c.relname || ': ' || replace(pg_get_constraintdef(k.oid), $1 || '.', '') || CASE WHEN k.convalidated THEN '' ELSE ' NOT VALID' END
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid WHERE c.relnamespace = $1::regnamespace
         ORDER BY 1`,
        [schema],
      )
    ).rows.map((r) => r.def);
  const forced = async (schema: string) =>
    (await owner.query<{ relname: string; forced: boolean }>(`SELECT relname, relforcerowsecurity AS forced FROM pg_class WHERE relnamespace = $1::regnamespace AND relkind = 'r' AND relname <> 'strata_migrations' ORDER BY relname`, [schema])).rows;

  beforeAll(async () => {
    server = await startExtraPostgres();
    admin = new Client({ connectionString: server.url() });
    await admin.connect();
    await admin.query(`CREATE ROLE ${escapeIdentifier(role)} LOGIN NOSUPERUSER NOBYPASSRLS`);
    await admin.query(`CREATE ROLE ${escapeIdentifier(appRole)} LOGIN NOSUPERUSER NOBYPASSRLS`);
    await admin.query(`CREATE DATABASE ${escapeIdentifier(database)} OWNER ${escapeIdentifier(role)}`);
    const url = new URL(server.url(database));
    url.username = role;
    ownerUrl = url.toString();
    owner = new Client({ connectionString: ownerUrl });
    await owner.connect();
    owners = new OwnerConnections({ databaseUrl: ownerUrl } as StrataConfig);
    for (const schema of ['src_home', 'dst_home', 'shared_home']) {
      await migrateSchema(owner, { schema, set: 'tenant', grantTo: appRole, migrations: withExtra(NOTES) });
    }
    await fill(TENANT, 'src_home', PROJECTS);
    await fill(NEIGHBOUR, 'shared_home', 40);
  });
  afterAll(async () => {
    await owner?.end();
    await admin?.end();
    await server?.stop();
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
    // Every index and constraint as the migration made it: foreign keys added back, validated.
    expect(await shapeOf('dst_home')).toEqual(await shapeOf('src_home'));
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

  it("installs its capture triggers past a long transaction that writes to a shared table, without stalling the table's other writers behind its wait", async () => {
    const blocker = await sessionAs(NEIGHBOUR, 'shared_home');
    const writer = await sessionAs(NEIGHBOUR, 'shared_home');
    const copier = new HomeCopier(owners, home('shared_home', false), home('dst_home', true), TENANT, randomUUID());
    try {
      await blocker.query('BEGIN');
      await blocker.query(`INSERT INTO projects (name) VALUES ('held open')`);
      const capturing = copier.startCapture();
      await sleep(300);
      // CREATE TRIGGER waits for the open writer, and a later writer queues behind a waiting CREATE TRIGGER:
      // for at most one short attempt now (it was the whole 2 s lock_timeout).
      const waited = await timed(() => writer.query(`INSERT INTO projects (name) VALUES ('written meanwhile')`));
      expect(waited).toBeLessThan(1000);
      expect(await captureTriggers('shared_home', 'projects')).toBe(0);
      await blocker.query('COMMIT');
      await capturing;
      expect(await captureTriggers('shared_home', 'projects')).toBe(3);
      expect(await captureTriggers('shared_home')).toBe(3 * (await forced('shared_home')).length);
    } finally {
      await copier.stopCapture();
      await copier.close();
      await blocker.end();
      await writer.end();
    }
  });

  it("removes its capture triggers past a long transaction that reads a shared table, without stalling the table's readers behind its wait", async () => {
    const blocker = await sessionAs(NEIGHBOUR, 'shared_home');
    const reader = await sessionAs(NEIGHBOUR, 'shared_home');
    const copier = new HomeCopier(owners, home('shared_home', false), home('dst_home', true), TENANT, randomUUID());
    try {
      await copier.startCapture();
      await blocker.query('BEGIN');
      await blocker.query(`SELECT count(*) FROM projects`);
      const removing = copier.stopCapture();
      await sleep(300);
      const waited = await timed(() => reader.query(`SELECT count(*) FROM projects`));
      expect(waited).toBeLessThan(1000);
      await blocker.query('COMMIT');
      await removing;
      expect(await captureTriggers('shared_home')).toBe(0);
    } finally {
      await copier.close();
      await blocker.end();
      await reader.end();
    }
  });

  it.each([
    ['an exclusive', 'dst_home', true],
    ['a shared', 'shared_home', false],
  ] as const)(
    'applies captured inserts, updates and deletes (quotes, backslashes, newlines, json) into %s home in a catch-up round and in the fenced drain, row for row',
    async (_kind, schema, exclusive) => {
      // A move's target starts without the tenant's rows (the driver drops what an earlier copy left).
      if (!exclusive) await deleteTenantRows(owner, schema, TENANT);
      await copy(home('src_home', true), home(schema, exclusive));
      const tables = ['projects', 'tasks', 'invoices', 'json_notes'];
      const rowsOf = async (at: string) => {
        await enterAs(TENANT, at);
        const out: Record<string, string> = {};
        for (const t of tables) out[t] = (await owner.query(`SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY id)), '') AS v FROM ${t} t`)).rows[0].v;
        return out;
      };
      const writer = await sessionAs(TENANT, 'src_home');
      const moveId = randomUUID();
      const copier = new HomeCopier(owners, home('src_home', true), home(schema, exclusive), TENANT, moveId);
      try {
        await copier.startCapture();
        await writer.query(`INSERT INTO projects (name, description) VALUES ($1, $2)`, [`it's \\ "q"\nline`, 'C:\\path\\']);
        await writer.query(`UPDATE projects SET description = $1 WHERE id = (SELECT id FROM projects ORDER BY id LIMIT 1)`, [`back\\slash 'quote'`]);
        await writer.query(`DELETE FROM projects WHERE id = (SELECT id FROM projects ORDER BY id OFFSET 1 LIMIT 1)`); // and its task, by cascade
        await writer.query(`INSERT INTO json_notes (body) VALUES ($1::json)`, [JSON.stringify({ q: `it's "x" \\ y`, nl: 'a\nb' })]);
        expect((await copier.catchUpRound()).applied).toBeGreaterThanOrEqual(4);
        expect(await rowsOf(schema)).toEqual(await rowsOf('src_home'));

        await writer.query(`UPDATE tasks SET title = $1, status = 'done' WHERE id = (SELECT id FROM tasks ORDER BY id DESC LIMIT 1)`, ['tab\there']);
        // An invoice deleted and another made with its number, in one round: the number is unique.
        const number = (await writer.query(`DELETE FROM invoices WHERE id = (SELECT id FROM invoices ORDER BY id LIMIT 1) RETURNING number`)).rows[0].number;
        await writer.query(`INSERT INTO invoices (number, amount, currency, due_at) VALUES ($1, 1, 'EUR', now())`, [number]);
        await writer.query(`INSERT INTO invoices (number, amount, currency, due_at) VALUES ($1, 1, 'EUR', now())`, [`INV-'new' ${schema}`]);
        const { drained } = await copier.fencedDrain(5000);
        expect(drained).toBe(4);
        expect(await rowsOf(schema)).toEqual(await rowsOf('src_home'));
        const retired = await owner.query(`SELECT move_id FROM strata_fence.retired_homes WHERE tenant_id = $1 AND schema_name = 'src_home'`, [TENANT]);
        expect(retired.rows).toEqual([{ move_id: moveId }]);
        expect(await copier.lag()).toBe(0);
      } finally {
        await copier.stopCapture();
        await copier.close();
        await writer.end();
        await owner.query(`DELETE FROM strata_fence.retired_homes WHERE tenant_id = $1 AND schema_name = 'src_home'`, [TENANT]);
      }
    },
  );

  it("deletes a tenant's rows from a shared home in batches, each committed on its own, and leaves the other tenant's rows", async () => {
    const count = async (tenant: string) => {
      await enterAs(tenant, 'shared_home');
      return (await owner.query<{ n: number }>(`SELECT (SELECT count(*) FROM projects) + (SELECT count(*) FROM tasks) + (SELECT count(*) FROM invoices) AS n`)).rows[0].n;
    };
    const neighbour = await count(NEIGHBOUR);
    const before = Number(await count(TENANT));
    expect(before).toBeGreaterThan(PROJECTS);
    const deleting = new Client({ connectionString: ownerUrl });
    await deleting.connect();
    // The tasks of the tenant (6,000) seen from another session while the deletion runs: batches of
    // 1,000 committed one by one show counts in between; one DELETE per table would not.
    const tasks = async () => {
      await enterAs(TENANT, 'shared_home');
      return (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM tasks`)).rows[0].n;
    };
    const seen = new Set<number>();
    let done = false;
    const deletion = deleteTenantRows(deleting, 'shared_home', TENANT, { batchRows: 1000, restRatio: 2 }).finally(() => (done = true));
    while (!done) {
      seen.add(await tasks());
      await sleep(2);
    }
    try {
      expect(await deletion).toBeGreaterThanOrEqual(before + 30);
    } finally {
      await deleting.end();
    }
    expect([...seen].filter((n) => n > 0 && n < PROJECTS).length).toBeGreaterThan(1);
    expect(Number(await count(TENANT))).toBe(0);
    expect(await count(NEIGHBOUR)).toBe(neighbour);
  });
});
