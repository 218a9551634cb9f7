import { Client } from 'pg';
import { migrateSchema } from '#strata/migrator';
import { nextVersion, sqlMigration, withExtra } from '../support/fleet-fixture';
import { createTestDatabase, type TestDatabase } from '../support/test-database';

jest.setTimeout(30_000);

const NOTES = sqlMigration(nextVersion(), 'notes', `SELECT pg_temp.strata_tenant_table('notes', $$ body text NOT NULL $$);`);
const NOTES_INDEX = sqlMigration(nextVersion(2), 'notes_body_idx', `-- strata:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS notes_body_idx ON notes (body);`);

describe('schema migrator sessions', () => {
  let db: TestDatabase;
  let owner: Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    owner = new Client({ connectionString: db.ownerUrl });
    await owner.connect();
  });
  afterAll(async () => {
    await owner?.end();
    await db?.drop();
  });

  const tempFunctions = async () =>
    (await owner.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_proc WHERE pronamespace = pg_my_temp_schema()`)).rows[0].n;

  it('creates the tenant-table helpers inside each step that calls them and leaves none on the session (a pooled server connection keeps nothing)', async () => {
    const applied = await migrateSchema(owner, { schema: 't_helpers', set: 'tenant', grantTo: db.appRole, migrations: withExtra(NOTES) });
    expect(applied.map((m) => m.version)).toContain(NOTES.version);
    expect(await tempFunctions()).toBe(0);
    const { rows } = await owner.query(
      `SELECT c.relrowsecurity AS rls, c.relforcerowsecurity AS forced FROM pg_class c WHERE c.oid = 't_helpers.notes'::regclass`,
    );
    expect(rows).toEqual([{ rls: true, forced: true }]);
  });

  it('runs a strata:no-transaction step on one session under the target\'s search_path, resets it, and records the step', async () => {
    const applied = await migrateSchema(owner, { schema: 't_helpers', set: 'tenant', grantTo: db.appRole, migrations: withExtra(NOTES, NOTES_INDEX) });
    expect(applied.map((m) => m.version)).toEqual([NOTES_INDEX.version]);
    const { rows } = await owner.query(`SELECT to_regclass('t_helpers.notes_body_idx') IS NOT NULL AS made, current_setting('search_path') AS path`);
    expect(rows).toEqual([{ made: true, path: '"$user", public' }]);
  });

  /** The statements a client is asked to run (one query() call is one round trip). */
  function counting(client: Client): { client: Client; calls: () => number } {
    let n = 0;
    const wrapped = new Proxy(client, {
      get(target, prop, receiver) {
        if (prop === 'query') return (...args: unknown[]) => (n++, (target.query as (...a: unknown[]) => unknown).apply(target, args));
        return Reflect.get(target, prop, receiver);
      },
    });
    return { client: wrapped, calls: () => n };
  }

  it('migrates a fresh home (batchFresh) in one transaction sent as one string, with the same tables, grants and ledger as step by step', async () => {
    const { client, calls } = counting(owner);
    const applied = await migrateSchema(client, { schema: 't_batched', set: 'tenant', grantTo: db.appRole, migrations: withExtra(NOTES), batchFresh: true });
    // The ledger look, the batch, the ledger read back.
    expect(calls()).toBe(3);
    await migrateSchema(owner, { schema: 't_stepwise', set: 'tenant', grantTo: db.appRole, migrations: withExtra(NOTES) });
    const shape = async (schema: string) =>
      (
        await owner.query(
          `SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, has_table_privilege($2, c.oid, 'INSERT') AS app_writes
             FROM pg_class c WHERE c.relnamespace = $1::regnamespace AND c.relkind = 'r' ORDER BY c.relname`,
          [schema, db.appRole],
        )
      ).rows;
    expect(await shape('t_batched')).toEqual(await shape('t_stepwise'));
    const ledger = await owner.query(`SELECT version, name, checksum FROM t_batched.strata_migrations ORDER BY version`);
    expect(ledger.rows.map((r) => r.version)).toEqual(applied.map((m) => m.version));
    expect(ledger.rows.map((r) => r.version)).toContain(NOTES.version);
    expect(await tempFunctions()).toBe(0);
  });

  it('falls back to one step at a time when the batch fails, applying what it can and naming the step that broke', async () => {
    const broken = sqlMigration(nextVersion(3), 'broken', `CREATE TABLE notes_twice (id int); SELECT no_such_function();`);
    await expect(
      migrateSchema(owner, { schema: 't_batch_broken', set: 'tenant', grantTo: db.appRole, migrations: withExtra(NOTES, broken), batchFresh: true }),
    ).rejects.toThrow(`migration ${broken.version}_broken failed`);
    const ledger = await owner.query(`SELECT version FROM t_batch_broken.strata_migrations`);
    expect(ledger.rows.map((r) => r.version)).toContain(NOTES.version);
    expect(ledger.rows.map((r) => r.version)).not.toContain(broken.version);
  });
});
