import { Client } from 'pg';
import { CHECKPOINT_COMMIT, LeasedTable, rowsOf } from '#strata/leases';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { sleep } from '../support/tenancy-fixture';

jest.setTimeout(30_000);

/**
 * The statements LeasedTable builds, run on real PostgreSQL against a work table shaped like the
 * executors' (control.tenant_moves, _onboardings, _deletions, _exports): claim, renew and release
 * keep their promises — SKIP LOCKED, lease expiry, back-off, owner and open-state conditions.
 */
describe('LeasedTable on PostgreSQL', () => {
  let db: TestDatabase;
  let a: Client;
  let b: Client;
  const work = new LeasedTable({
    table: 'lease_test.work',
    key: 'id',
    open: `state IN ('queued', 'running')`,
    order: 'created_at',
    columns: 'id, name, state, lease_owner, attempts, error',
  });
  const CLAIM = work.claim({ set: [`state = 'running'`, 'attempts = attempts + 1'] });
  const CLAIM_NAMED = work.claim({ where: ['($3::text IS NULL OR name = $3)'] });
  const CLAIM_CHECKPOINT = work.claim({ checkpoint: true });
  const RENEW = work.renew();
  const RELEASE = work.release({ set: [`state = 'queued'`, 'error = $4'] });
  const RELEASE_OPEN = work.release({ set: ['error = $4'], openOnly: true });

  const claim = async (c: Client, owner: string, leaseMs = 10_000) => rowsOf((await c.query(CLAIM, [owner, leaseMs])).rows)[0] ?? null;
  const names = async () => (await a.query<{ name: string; state: string; lease_owner: string | null }>(`SELECT name, state, lease_owner FROM lease_test.work ORDER BY name`)).rows;

  beforeAll(async () => {
    db = await createTestDatabase();
    a = new Client({ connectionString: db.ownerUrl });
    b = new Client({ connectionString: db.ownerUrl });
    await Promise.all([a.connect(), b.connect()]);
    await a.query(`CREATE SCHEMA lease_test`);
    await a.query(`CREATE TABLE lease_test.work (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL, state text NOT NULL DEFAULT 'queued',
      created_at timestamptz NOT NULL, lease_owner text, lease_until timestamptz, attempts int NOT NULL DEFAULT 0, error text)`);
  });
  beforeEach(async () => {
    await a.query(`TRUNCATE lease_test.work`);
    // Oldest first: 'first' was created before 'second'.
    await a.query(`INSERT INTO lease_test.work (name, created_at) VALUES ('second', now() - interval '1 minute'), ('first', now() - interval '2 minutes')`);
  });
  afterAll(async () => {
    await Promise.all([a?.end(), b?.end()]);
    await db?.drop();
  });

  it('claims the oldest open row and counts the attempt in the same statement', async () => {
    const row = await claim(a, 'owner-a');
    expect(row).toMatchObject({ name: 'first', state: 'running', lease_owner: 'owner-a', attempts: 1 });
  });

  it('lets two claimers at once take two different rows, neither waiting on the other (SKIP LOCKED)', async () => {
    await a.query('BEGIN');
    try {
      expect(await claim(a, 'owner-a')).toMatchObject({ name: 'first' });
      // Without SKIP LOCKED this would block on a's uncommitted claim until the timeout.
      await b.query(`SET statement_timeout = 2000`);
      expect(await claim(b, 'owner-b')).toMatchObject({ name: 'second', lease_owner: 'owner-b' });
    } finally {
      await a.query('COMMIT');
      await b.query(`RESET statement_timeout`);
    }
    expect(await claim(b, 'owner-b')).toBeNull();
  });

  it("leaves a held row alone until its lease runs out; then another owner takes it and the first one's renew and release change nothing", async () => {
    await a.query(`DELETE FROM lease_test.work WHERE name = 'second'`);
    const held = await claim(a, 'owner-a', 300);
    expect(rowsOf((await a.query(RENEW, [held.id, 'owner-a', 300])).rows)).toHaveLength(1);
    expect(await claim(b, 'owner-b')).toBeNull();
    await sleep(400);
    expect(await claim(b, 'owner-b')).toMatchObject({ name: 'first', lease_owner: 'owner-b', attempts: 2 });
    expect((await a.query(RENEW, [held.id, 'owner-a', 10_000])).rows).toHaveLength(0);
    await a.query(RELEASE, [held.id, 'owner-a', 0, 'late']);
    expect(await names()).toEqual([{ name: 'first', state: 'running', lease_owner: 'owner-b' }]);
  });

  it('makes a released row wait out its back-off before anyone can claim it again', async () => {
    await a.query(`DELETE FROM lease_test.work WHERE name = 'second'`);
    const row = await claim(a, 'owner-a');
    await a.query(RELEASE, [row.id, 'owner-a', 400, 'boom']);
    expect(await names()).toEqual([{ name: 'first', state: 'queued', lease_owner: null }]);
    expect(await claim(b, 'owner-b')).toBeNull();
    await sleep(500);
    expect(await claim(b, 'owner-b')).toMatchObject({ name: 'first', error: 'boom', attempts: 2 });
  });

  it('never renews or claims a row that has finished, and an open-only release leaves its end state as it is', async () => {
    const row = await claim(a, 'owner-a');
    await a.query(`UPDATE lease_test.work SET state = 'done' WHERE id = $1`, [row.id]);
    expect((await a.query(RENEW, [row.id, 'owner-a', 10_000])).rows).toHaveLength(0);
    await a.query(RELEASE_OPEN, [row.id, 'owner-a', 0, 'late']);
    const after = (await a.query(`SELECT lease_owner, error FROM lease_test.work WHERE id = $1`, [row.id])).rows[0];
    expect(after).toEqual({ lease_owner: 'owner-a', error: null });
    expect(await claim(b, 'owner-b')).toMatchObject({ name: 'second' });
    expect(await claim(b, 'owner-b')).toBeNull();
  });

  it("claims only the row a table's extra condition names, when it names one", async () => {
    expect(rowsOf((await a.query(CLAIM_NAMED, ['owner-a', 10_000, 'second'])).rows)[0]).toMatchObject({ name: 'second', lease_owner: 'owner-a' });
    expect(rowsOf((await a.query(CLAIM_NAMED, ['owner-a', 10_000, 'second'])).rows)).toHaveLength(0);
    expect(rowsOf((await a.query(CLAIM_NAMED, ['owner-a', 10_000, null])).rows)[0]).toMatchObject({ name: 'first' });
  });
  it('commits a checkpoint claim without waiting for its WAL flush, and the setting ends with the statement', async () => {
    // Right after a commit that did not wait, the WAL is written further than it is flushed (the
    // WAL writer flushes it within wal_writer_delay); a commit that waited leaves nothing unflushed.
    // Once in five is proof enough; a flush by someone else in between only makes one try miss.
    const unflushed = async () => (await a.query<{ lag: boolean }>(`SELECT pg_current_wal_flush_lsn() < pg_current_wal_insert_lsn() AS lag`)).rows[0].lag;
    let lagged = 0;
    for (let i = 0; i < 5; i++) {
      await a.query(`UPDATE lease_test.work SET lease_owner = NULL, lease_until = NULL`);
      const row = rowsOf((await a.query(CLAIM_CHECKPOINT, ['owner-a', 10_000])).rows)[0];
      expect(row).toMatchObject({ name: 'first', lease_owner: 'owner-a', checkpoint_commit: 'off' });
      if (await unflushed()) lagged += 1;
      // Transaction-local: the pooled session is back to the server's default for whoever uses it next.
      expect((await a.query<{ synchronous_commit: string }>(`SHOW synchronous_commit`)).rows[0].synchronous_commit).toBe('on');
    }
    expect(lagged).toBeGreaterThan(0);
    // And the same mark works on any statement's RETURNING, as the onboarding's step records use it.
    const marked = await a.query(`UPDATE lease_test.work SET error = 'x' WHERE name = 'second' RETURNING name, ${CHECKPOINT_COMMIT}`);
    expect(marked.rows).toEqual([{ name: 'second', checkpoint_commit: 'off' }]);
    expect((await a.query(`SHOW synchronous_commit`)).rows[0].synchronous_commit).toBe('on');
  });
});
