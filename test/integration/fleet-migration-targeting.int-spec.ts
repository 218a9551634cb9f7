import { randomUUID } from 'node:crypto';
import type { TargetResult } from '#strata/migrator';
import { createFleet, nextVersion, resultOf, sqlMigration, statusByKey, withExtra, type Fleet, type TestTarget } from '../support/fleet-fixture';

jest.setTimeout(120_000);

const V2 = nextVersion();
const ADD_ARCHIVE = withExtra(
  sqlMigration(
    V2,
    'archive_and_amount_cap',
    `ALTER TABLE projects ADD COLUMN archived_at timestamptz;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_cap CHECK (amount <= 1000000);`,
  ),
);

/** Which targets have the new column; everything else must be exactly as onboarding left it. */
async function touched(fleet: Fleet): Promise<string[]> {
  const out: string[] = [];
  for (const t of fleet.targets) {
    const column = await fleet.hasColumn(t, 'projects', 'archived_at');
    const ledger = (await fleet.ledger(t)).includes(V2);
    if (column !== ledger) throw new Error(`${t.key} is half-migrated: column ${column}, ledger ${ledger}`);
    if (column) out.push(t.key);
  }
  return out.sort();
}

const centralKeys = async (fleet: Fleet) => [...new Set((await fleet.centralLedger()).map((r) => r.target_key))].sort();

describe('--tenant migrates only that tenant’s target', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 2, bridge: 4, silo: 2 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('a bridge tenant: only its schema', async () => {
    const tenant = fleet.bridges[1];
    const report = await fleet.run({ mode: 'up', tenantSlug: tenant.slug, migrations: ADD_ARCHIVE });
    expect(report.ok).toBe(true);
    expect(statusByKey(report)).toEqual({ [`bridge:${tenant.slug}`]: 'migrated' });
    expect(await touched(fleet)).toEqual([`bridge:${tenant.slug}`]);
    expect(await centralKeys(fleet)).toEqual([`bridge:${tenant.slug}`]);
    const versions = await fleet.schemaVersions();
    expect(versions.get(`bridge:${tenant.slug}`)).toBe(V2);
    expect(versions.get(`bridge:${fleet.bridges[0].slug}`)).not.toBe(V2);
    expect(versions.get('pool:main-pool')).not.toBe(V2);
  });

  it('a silo tenant: only its database', async () => {
    const tenant = fleet.silos[0];
    const report = await fleet.run({ mode: 'up', tenantSlug: tenant.slug, migrations: ADD_ARCHIVE });
    expect(report.ok).toBe(true);
    expect(statusByKey(report)).toEqual({ [`silo:${tenant.slug}`]: 'migrated' });
    expect(await touched(fleet)).toEqual([`bridge:${fleet.bridges[1].slug}`, `silo:${tenant.slug}`].sort());
  });

  it("a pool tenant: its pool's shared schema, which every pool tenant shares, and nothing else", async () => {
    const tenant = fleet.poolTenants[1];
    const report = await fleet.run({ mode: 'up', tenantSlug: tenant.slug, migrations: ADD_ARCHIVE });
    expect(report.ok).toBe(true);
    expect(statusByKey(report)).toEqual({ 'pool:main-pool': 'migrated' });
    expect(await touched(fleet)).toEqual(['pool:main-pool', `bridge:${fleet.bridges[1].slug}`, `silo:${fleet.silos[0].slug}`].sort());
    expect((await fleet.schemaVersions()).get('pool:main-pool')).toBe(V2);
    // The other pool tenant names the same target, which is now current.
    const other = await fleet.run({ mode: 'status', tenantSlug: fleet.poolTenants[0].slug, migrations: ADD_ARCHIVE });
    expect(statusByKey(other)).toEqual({ 'pool:main-pool': 'current' });
  });

  it('plan for one tenant looks at that target only and changes nothing', async () => {
    const tenant = fleet.bridges[3];
    const plan = await fleet.run({ mode: 'plan', tenantSlug: tenant.slug, migrations: ADD_ARCHIVE });
    expect(plan.results.map((r) => [r.target.key, r.status, r.pending])).toEqual([[`bridge:${tenant.slug}`, 'behind', [V2]]]);
    expect(await touched(fleet)).not.toContain(`bridge:${tenant.slug}`);
  });

  it('an unknown slug is refused before anything runs', async () => {
    const before = await touched(fleet);
    await expect(fleet.run({ mode: 'up', tenantSlug: 'no-such-tenant', migrations: ADD_ARCHIVE })).rejects.toThrow(/no tenant no-such-tenant/);
    expect(await touched(fleet)).toEqual(before);
  });
});

describe('canary', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 1, bridge: 6, silo: 2 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('a canary whose target fails stops the run: no other target is touched', async () => {
    const canary = fleet.bridges[2];
    const target = fleet.targetOf(canary);
    await fleet.query(target, `INSERT INTO ${target.schema}.invoices (tenant_id, number, amount, currency) VALUES ($1, $2, 5000000, 'EUR')`, [
      canary.id,
      `INV-${randomUUID().slice(0, 8)}`,
    ]);
    const order: string[] = [];
    const report = await fleet.run({
      mode: 'up',
      canary: canary.slug,
      migrations: ADD_ARCHIVE,
      concurrency: 8,
      onTargetDone: (r) => order.push(r.target.key),
    });

    expect(report.ok).toBe(false);
    expect(report.canaryFailed).toBe(true);
    expect(order).toEqual([target.key]);
    const canaryResult = resultOf(report, target.key);
    expect(canaryResult).toMatchObject({ status: 'failed', failedVersion: V2 });
    expect(canaryResult.error).toMatch(/invoices_amount_cap/);
    const others = report.results.filter((r) => r.target.key !== target.key);
    expect(others.map((r) => r.target.key).sort()).toEqual(fleet.targets.filter((t) => t !== target).map((t) => t.key).sort());
    expect(others.every((r: TargetResult) => r.status === 'not-run')).toBe(true);

    expect(await touched(fleet)).toEqual([]);
    const ledger = await fleet.centralLedger();
    expect(ledger.map((r) => [r.target_key, r.status])).toEqual([[target.key, 'failed']]);
    const versions = await fleet.schemaVersions();
    expect([...versions.values()].filter((v) => v === V2)).toEqual([]);
  });

  it('a healthy canary goes first, alone, and the rest of the fleet follows', async () => {
    const failedCanary: TestTarget = fleet.targetOf(fleet.bridges[2]);
    await fleet.query(failedCanary, `UPDATE ${failedCanary.schema}.invoices SET amount = 1 WHERE amount > 1000000`);
    const canary = fleet.silos[1];
    const target = fleet.targetOf(canary);
    const order: string[] = [];
    const report = await fleet.run({
      mode: 'up',
      canary: canary.slug,
      migrations: ADD_ARCHIVE,
      concurrency: 8,
      onTargetDone: (r) => order.push(r.target.key),
    });

    expect(report.ok).toBe(true);
    expect(report.canaryFailed).toBe(false);
    expect(order[0]).toBe(target.key);
    expect(order.filter((k) => k === target.key)).toHaveLength(1); // not migrated twice
    expect(order.slice().sort()).toEqual(fleet.targets.map((t) => t.key).sort());
    expect(report.results.every((r) => r.status === 'migrated')).toBe(true);
    expect(await touched(fleet)).toEqual(fleet.targets.map((t) => t.key).sort());
    // Alone: every other target started only after the canary's outcome was recorded.
    const rows = (await fleet.centralLedger()).filter((r) => r.run_id === report.runId);
    expect(rows).toHaveLength(fleet.targets.length);
    const canaryRow = rows.find((r) => r.target_key === target.key)!;
    for (const r of rows.filter((x) => x !== canaryRow)) expect(r.started_at.getTime()).toBeGreaterThanOrEqual(canaryRow.finished_at.getTime());
  });
});
