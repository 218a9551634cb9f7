import type { FleetReport } from '#strata/migrator';
import { createFleet, nextVersion, sqlMigration, withExtra, type Fleet } from '../support/fleet-fixture';

jest.setTimeout(120_000);

const V2 = nextVersion(1);
const V3 = nextVersion(2);
// V2 is not idempotent (a second ADD COLUMN or CREATE TABLE fails); V3 leaves one row per run,
// so a step applied twice would show as a failure or as a second row.
const MIGRATIONS = withExtra(
  sqlMigration(
    V2,
    'archive_and_effects',
    `ALTER TABLE projects ADD COLUMN archived_at timestamptz;
CREATE TABLE migration_effects (step text NOT NULL, backend int NOT NULL DEFAULT pg_backend_pid(), at timestamptz NOT NULL DEFAULT clock_timestamp());
SELECT pg_sleep(0.04);`,
  ),
  sqlMigration(V3, 'count_runs', `INSERT INTO migration_effects (step) VALUES ('${V3}'); SELECT pg_sleep(0.04);`),
);

describe('two runners at once over the same fleet', () => {
  let fleet: Fleet;
  let reports: FleetReport[] = [];

  beforeAll(async () => {
    fleet = await createFleet({ pool: 1, bridge: 20, silo: 5 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('both finish ok, and together they applied every step on every target exactly once', async () => {
    reports = await Promise.all([
      fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 4, perServerCap: 4 }),
      fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 4, perServerCap: 4 }),
    ]);
    for (const r of reports) {
      expect(r.results.filter((x) => x.status === 'failed')).toEqual([]);
      expect(r.ok).toBe(true);
      expect(r.results).toHaveLength(fleet.targets.length);
    }
    for (const t of fleet.targets) {
      const appliedBy = reports.flatMap((rep) => rep.results.filter((x) => x.target.key === t.key).flatMap((x) => x.applied.map((a) => a.version)));
      expect({ key: t.key, applied: appliedBy.sort() }).toEqual({ key: t.key, applied: [V2, V3] });
    }
  });

  it('the runners really raced: a loser found steps already applied under the lock or the target already current', () => {
    expect(reports).toHaveLength(2);
    // Per target, the run that applied nothing there either saw it current or waited for the
    // advisory lock and then skipped the steps the winner had committed.
    const losers = fleet.targets.map((t) => reports.map((rep) => rep.results.find((x) => x.target.key === t.key)!).find((x) => x.applied.length < 2)!);
    for (const l of losers) expect(['current', 'migrated']).toContain(l.status);
    // Both runners start in the same order, so at least some targets were contended mid-step.
    // Both runners got past the ledger read with steps pending there, yet each step landed once:
    // one of them waited on the target's advisory lock and skipped what the other had committed.
    const contended = fleet.targets.filter((t) => reports.every((rep) => rep.results.find((x) => x.target.key === t.key)!.status === 'migrated'));
    expect(contended.length).toBeGreaterThan(0);
  });

  it('each target has one ledger row per version, one effects row and the column once', async () => {
    for (const t of fleet.targets) {
      const rows = await fleet.query<{ version: string; n: number }>(
        t,
        `SELECT version, count(*)::int AS n FROM ${t.schema}.strata_migrations GROUP BY version ORDER BY version`,
      );
      expect({ key: t.key, rows }).toEqual({ key: t.key, rows: withExtra().map((m) => ({ version: m.version, n: 1 })).concat([{ version: V2, n: 1 }, { version: V3, n: 1 }]) });
      const effects = await fleet.query<{ step: string }>(t, `SELECT step FROM ${t.schema}.migration_effects`);
      expect({ key: t.key, effects: effects.map((e) => e.step) }).toEqual({ key: t.key, effects: [V3] });
      expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(true);
    }
    const central = await fleet.centralLedger();
    const applied = central.filter((r) => r.status === 'applied');
    expect(applied).toHaveLength(fleet.targets.length * 2);
    expect(central.filter((r) => r.status === 'failed')).toEqual([]);
    const versions = await fleet.schemaVersions();
    for (const t of fleet.targets) expect(versions.get(t.key)).toBe(V3);
  });
});
