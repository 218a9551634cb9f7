import { Client } from 'pg';
import { checkFleetGuardrails, type FleetReport } from '#strata/migrator';
import { createFleet, nextVersion, resultOf, sqlMigration, withExtra, type Fleet } from '../support/fleet-fixture';

jest.setTimeout(120_000);

const V2 = nextVersion();
// A column, an index and a tenant-scoped table through the helper; pg_sleep keeps each target busy
// long enough for the connection sampler to see the runner's real concurrency.
const ADD_ARCHIVE = sqlMigration(
  V2,
  'project_archive_and_notes',
  `ALTER TABLE projects ADD COLUMN archived_at timestamptz;
CREATE INDEX projects_archived_idx ON projects (tenant_id, archived_at) WHERE archived_at IS NOT NULL;
SELECT pg_temp.strata_tenant_table('notes', $$
  project_id uuid NOT NULL,
  body text NOT NULL CHECK (length(body) <= 2000),
  FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
$$);
SELECT pg_sleep(0.03);`,
);
const MIGRATIONS = withExtra(ADD_ARCHIVE);
const CAP = 4;

/** Polls pg_stat_activity for the runner's backends on the fleet's databases until stopped. */
function sampleRunnerConnections(fleet: Fleet): { stop(): Promise<{ peak: number; samples: number }> } {
  const client = new Client({ connectionString: fleet.ownerUrl, application_name: 'strata-test-sampler' });
  let running = true;
  let peak = 0;
  let samples = 0;
  const loop = (async () => {
    await client.connect();
    while (running) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'strata-migrate' AND datname = ANY($1)`,
        [fleet.databases],
      );
      peak = Math.max(peak, rows[0].n);
      samples++;
    }
  })();
  return {
    async stop() {
      running = false;
      try {
        await loop;
      } finally {
        await client.end().catch(() => undefined);
      }
      return { peak, samples };
    },
  };
}

describe('fleet roll-out over the pool shared schema, 20 bridge schemas and 5 silo databases', () => {
  let fleet: Fleet;
  let up: FleetReport | undefined;
  let sampled: { peak: number; samples: number } | undefined;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 2, bridge: 20, silo: 5 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('onboarded every tenant at the shipped version, 26 targets in all', async () => {
    expect(fleet.targets).toHaveLength(26);
    const shipped = withExtra().map((m) => m.version);
    for (const t of fleet.targets) expect({ key: t.key, ledger: await fleet.ledger(t) }).toEqual({ key: t.key, ledger: shipped });
    const report = await fleet.run({ mode: 'status', migrations: withExtra() });
    expect(report.results.map((r) => r.target.key).sort()).toEqual(fleet.targets.map((t) => t.key).sort());
    expect(report.results.every((r) => r.status === 'current')).toBe(true);
    expect(report.ok).toBe(true);
  });

  it('plan lists the pending version for every target and changes nothing', async () => {
    const ledgersBefore = await fleet.ledgers();
    const versionsBefore = await fleet.schemaVersions();

    const plan = await fleet.run({ mode: 'plan', migrations: MIGRATIONS, concurrency: 8, perServerCap: CAP });

    expect(plan.mode).toBe('plan');
    expect(plan.required).toBe(V2);
    expect(plan.results).toHaveLength(fleet.targets.length);
    for (const t of fleet.targets) {
      const r = resultOf(plan, t.key);
      expect({ key: t.key, status: r.status, pending: r.pending, applied: r.applied }).toEqual({ key: t.key, status: 'behind', pending: [V2], applied: [] });
    }
    expect(await fleet.ledgers()).toEqual(ledgersBefore);
    for (const t of fleet.targets) {
      expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(false);
      expect(await fleet.hasTable(t, 'notes')).toBe(false);
    }
    expect(await fleet.centralLedger()).toEqual([]);
    expect(await fleet.schemaVersions()).toEqual(versionsBefore);
  });

  it('up brings every target to the new version with a per-target report', async () => {
    const sampler = sampleRunnerConnections(fleet);
    try {
      up = await fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 8, perServerCap: CAP });
    } finally {
      sampled = await sampler.stop();
    }
    expect(up.ok).toBe(true);
    expect(up.canaryFailed).toBe(false);
    expect(up.required).toBe(V2);
    expect(up.results).toHaveLength(fleet.targets.length);
    for (const t of fleet.targets) {
      const r = resultOf(up, t.key);
      expect({ key: t.key, status: r.status, before: r.before, after: r.after, pending: r.pending }).toEqual({
        key: t.key,
        status: 'migrated',
        before: r.before,
        after: V2,
        pending: [],
      });
      expect(r.before < V2).toBe(true);
      expect(r.applied.map((a) => a.version)).toEqual([V2]);
      expect(r.applied[0].durationMs).toBeGreaterThanOrEqual(30); // the pg_sleep ran inside the step
    }
  });

  it("applied the column, the index and the helper-made table on every target and recorded it in the target's own ledger", async () => {
    expect(up?.ok).toBe(true);
    for (const t of fleet.targets) {
      expect({ key: t.key, ledger: await fleet.ledger(t) }).toEqual({ key: t.key, ledger: expect.arrayContaining([V2]) });
      expect({ key: t.key, column: await fleet.hasColumn(t, 'projects', 'archived_at') }).toEqual({ key: t.key, column: true });
      expect({ key: t.key, index: await fleet.hasIndex(t, 'projects_archived_idx') }).toEqual({ key: t.key, index: true });
      expect({ key: t.key, notes: await fleet.hasTable(t, 'notes') }).toEqual({ key: t.key, notes: true });
    }
  });

  it('recorded an applied row with its duration per target in control.migration_ledger', async () => {
    const rows = await fleet.centralLedger();
    expect(rows.map((r) => r.target_key).sort()).toEqual(fleet.targets.map((t) => t.key).sort());
    for (const r of rows) {
      expect(r).toMatchObject({ version: V2, status: 'applied', run_id: up!.runId, error: null });
      expect(r.duration_ms).toBeGreaterThanOrEqual(30);
      expect(r.finished_at.getTime()).toBeGreaterThanOrEqual(r.started_at.getTime());
      expect(r.duration_ms).toBe(resultOf(up!, r.target_key).applied[0].durationMs);
    }
  });

  it('moved control.tenants and control.pools schema_version to the new version', async () => {
    const versions = await fleet.schemaVersions();
    for (const t of fleet.targets) expect({ key: t.key, version: versions.get(t.key) }).toEqual({ key: t.key, version: V2 });
  });

  it('never held more connections on the server than the cap, by its own count and by pg_stat_activity', () => {
    expect(up).toBeDefined();
    const peaks = Object.values(up!.peakConnections);
    expect(peaks.length).toBeGreaterThanOrEqual(1);
    for (const p of peaks) {
      expect(p).toBeLessThanOrEqual(CAP);
      expect(p).toBeGreaterThanOrEqual(2); // the control connection plus at least one worker
    }
    expect(sampled!.samples).toBeGreaterThan(10);
    expect(sampled!.peak).toBeGreaterThanOrEqual(2);
    expect(sampled!.peak).toBeLessThanOrEqual(CAP);
  });

  it('a second up finds every target current and applies nothing', async () => {
    const ledgerBefore = await fleet.centralLedger();
    const again = await fleet.run({ mode: 'up', migrations: MIGRATIONS, concurrency: 8, perServerCap: CAP });
    expect(again.ok).toBe(true);
    expect(again.results.map((r) => r.status)).toEqual(fleet.targets.map(() => 'current'));
    expect(await fleet.centralLedger()).toEqual(ledgerBefore);
  });

  it('lets the app role use the new table and column under RLS on every tier, and nobody else’s rows', async () => {
    expect(up?.ok).toBe(true);
    const tenants = [fleet.poolTenants[0], fleet.bridges[4], fleet.silos[3]];
    for (const tenant of tenants) {
      const target = fleet.targetOf(tenant);
      const app = await fleet.fx.appClient(target.database);
      const asTenant = async (tenantId: string, sql: string) =>
        app.query(`BEGIN; SELECT set_config('app.tenant_id', '${tenantId}', true), set_config('search_path', '${target.schema}', true); ${sql}; COMMIT`);
      try {
        await asTenant(
          tenant.id,
          `WITH p AS (INSERT INTO projects (name, archived_at) VALUES ('rolled out', now()) RETURNING id)
           INSERT INTO notes (project_id, body) SELECT id, 'first note' FROM p`,
        );
        const mine = await fleet.fx.appClient(target.database);
        try {
          const read = (id: string) =>
            mine.query(`BEGIN; SELECT set_config('app.tenant_id', '${id}', true), set_config('search_path', '${target.schema}', true);
                        SELECT n.body, p.archived_at IS NOT NULL AS archived FROM notes n JOIN projects p ON p.tenant_id = n.tenant_id AND p.id = n.project_id; COMMIT`);
          const own = (await read(tenant.id)) as unknown as Array<{ rows: unknown[] }>;
          expect({ key: target.key, rows: own[2].rows }).toEqual({ key: target.key, rows: [{ body: 'first note', archived: true }] });
          const foreign = (await read(fleet.bridges[0].id)) as unknown as Array<{ rows: unknown[] }>;
          expect({ key: target.key, rows: foreign[2].rows }).toEqual({ key: target.key, rows: [] });
        } finally {
          await mine.end();
        }
      } finally {
        await app.end();
      }
    }
  });

  it('passes the RLS guardrails after the roll-out, the helper-made table included', async () => {
    expect(await checkFleetGuardrails({ url: fleet.ownerUrl, appRole: fleet.appRole })).toEqual([]);
  });
});
