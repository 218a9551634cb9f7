import { randomUUID } from 'node:crypto';
import type { FleetReport } from '#strata/migrator';
import { createFleet, nextVersion, resultOf, sqlMigration, statusByKey, withExtra, type Fleet, type TestTarget } from '../support/fleet-fixture';

jest.setTimeout(120_000);

const V2 = nextVersion();
// The column comes first, so a step that was not rolled back as a whole would leave it behind.
const CAP_AMOUNTS = sqlMigration(
  V2,
  'archive_and_amount_cap',
  `ALTER TABLE projects ADD COLUMN archived_at timestamptz;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_cap CHECK (amount <= 1000000);`,
);
const MIGRATIONS = withExtra(CAP_AMOUNTS);

async function addInvoice(fleet: Fleet, target: TestTarget, tenantId: string, amount: number): Promise<void> {
  await fleet.query(target, `INSERT INTO ${target.schema}.invoices (tenant_id, number, amount, currency) VALUES ($1, $2, $3, 'EUR')`, [
    tenantId,
    `INV-${randomUUID().slice(0, 8)}`,
    amount,
  ]);
}

async function hasConstraint(fleet: Fleet, target: TestTarget, name: string): Promise<boolean> {
  const rows = await fleet.query(
    target,
    `SELECT 1 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1 AND c.conname = $2`,
    [target.schema, name],
  );
  return rows.length === 1;
}

describe('a migration that fails on two targets because of their data', () => {
  let fleet: Fleet;
  let bad: TestTarget[];
  let good: TestTarget[];
  let first: FleetReport | undefined;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 2, bridge: 20, silo: 5 });
    // Exactly two targets (a bridge schema and a silo database) hold an invoice above the new cap;
    // others hold invoices under it, the pool's shared schema included.
    bad = [fleet.targetOf(fleet.bridges[7]), fleet.targetOf(fleet.silos[2])];
    good = fleet.targets.filter((t) => !bad.includes(t));
    for (const t of bad) await addInvoice(fleet, t, t.tenant!.id, 5_000_000);
    for (const t of [fleet.poolTarget, fleet.targetOf(fleet.bridges[0]), fleet.targetOf(fleet.silos[0])]) {
      await addInvoice(fleet, t, t.tenant?.id ?? fleet.poolTenants[0].id, 999_999);
    }
    await addInvoice(fleet, fleet.poolTarget, fleet.poolTenants[1].id, 1_000_000);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('migrates every other target and reports exactly the two as failed with the error and the failed version', async () => {
    first = await fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 8, perServerCap: 4 });

    expect(first.ok).toBe(false);
    expect(first.canaryFailed).toBe(false);
    expect(first.results).toHaveLength(fleet.targets.length);
    const failed = first.results.filter((r) => r.status === 'failed');
    expect(failed.map((r) => r.target.key).sort()).toEqual(bad.map((t) => t.key).sort());
    for (const r of failed) {
      expect(r.failedVersion).toBe(V2);
      expect(r.error).toMatch(/invoices_amount_cap/);
      expect(r.error).toMatch(/violated by some row/);
      expect(r.applied).toEqual([]);
      expect(r.after).toBe(r.before);
      expect(r.pending).toEqual([V2]);
    }
    for (const t of good) {
      const r = resultOf(first, t.key);
      expect({ key: t.key, status: r.status, after: r.after }).toEqual({ key: t.key, status: 'migrated', after: V2 });
      expect(await hasConstraint(fleet, t, 'invoices_amount_cap')).toBe(true);
      expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(true);
      expect(await fleet.ledger(t)).toContain(V2);
    }
  });

  it("rolled the failed step back on the two: their own ledger stays at the old version and their schema is unchanged", async () => {
    expect(first).toBeDefined();
    for (const t of bad) {
      expect({ key: t.key, ledger: await fleet.ledger(t) }).toEqual({ key: t.key, ledger: withExtra().map((m) => m.version) });
      // The ALTER before the failing statement is gone too: the whole step was one transaction.
      expect({ key: t.key, column: await fleet.hasColumn(t, 'projects', 'archived_at') }).toEqual({ key: t.key, column: false });
      expect({ key: t.key, cap: await hasConstraint(fleet, t, 'invoices_amount_cap') }).toEqual({ key: t.key, cap: false });
    }
  });

  it("records failed rows with the error in control.migration_ledger and leaves the two tenants' schema_version behind", async () => {
    const rows = await fleet.centralLedger();
    const failedRows = rows.filter((r) => r.status === 'failed');
    expect(failedRows.map((r) => r.target_key).sort()).toEqual(bad.map((t) => t.key).sort());
    for (const r of failedRows) {
      expect(r).toMatchObject({ version: V2, run_id: first!.runId });
      expect(r.error).toMatch(/invoices_amount_cap/);
      expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    }
    expect(rows.filter((r) => r.status === 'applied').map((r) => r.target_key).sort()).toEqual(good.map((t) => t.key).sort());

    const versions = await fleet.schemaVersions();
    for (const t of bad) expect(versions.get(t.key)).not.toBe(V2);
    for (const t of good) expect(versions.get(t.key)).toBe(V2);
  });

  it('status shows the two as behind with their last error and every other target current', async () => {
    const status = await fleet.run({ mode: 'status', migrations: MIGRATIONS });
    expect(status.ok).toBe(false);
    for (const t of bad) {
      const r = resultOf(status, t.key);
      expect(r.status).toBe('behind');
      expect(r.pending).toEqual([V2]);
      expect(r.lastError).toMatchObject({ version: V2, error: expect.stringMatching(/invoices_amount_cap/) });
      expect(r.lastError!.at).toBeInstanceOf(Date);
    }
    for (const t of good) {
      const r = resultOf(status, t.key);
      expect({ key: t.key, status: r.status, lastError: r.lastError }).toEqual({ key: t.key, status: 'current', lastError: undefined });
    }
    // status changed nothing
    expect((await fleet.ledger(bad[0])).includes(V2)).toBe(false);
  });

  it('after the data is fixed, a rerun migrates exactly the two and leaves the others alone', async () => {
    const ledgerBefore = await fleet.centralLedger();
    for (const t of bad) await fleet.query(t, `UPDATE ${t.schema}.invoices SET amount = 1000000 WHERE amount > 1000000`);

    const rerun = await fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 8, perServerCap: 4 });

    expect(rerun.ok).toBe(true);
    const expected = Object.fromEntries(fleet.targets.map((t) => [t.key, bad.includes(t) ? 'migrated' : 'current']));
    expect(statusByKey(rerun)).toEqual(expected);
    for (const t of bad) {
      expect(resultOf(rerun, t.key).applied.map((a) => a.version)).toEqual([V2]);
      expect(await fleet.ledger(t)).toContain(V2);
      expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(true);
      expect(await hasConstraint(fleet, t, 'invoices_amount_cap')).toBe(true);
    }

    const after = await fleet.centralLedger();
    // The others' rows are exactly as the first run left them.
    const untouched = (rows: typeof after) => rows.filter((r) => !bad.some((t) => t.key === r.target_key));
    expect(untouched(after)).toEqual(untouched(ledgerBefore));
    for (const t of bad) {
      const row = after.find((r) => r.target_key === t.key)!;
      expect(row).toMatchObject({ version: V2, status: 'applied', run_id: rerun.runId, error: null });
    }
    const versions = await fleet.schemaVersions();
    for (const t of fleet.targets) expect({ key: t.key, version: versions.get(t.key) }).toEqual({ key: t.key, version: V2 });
  });

  it('status afterwards shows the whole fleet current with no last error', async () => {
    const status = await fleet.run({ mode: 'status', migrations: MIGRATIONS });
    expect(status.ok).toBe(true);
    expect(status.results.filter((r) => r.status !== 'current' || r.lastError)).toEqual([]);
  });
});
