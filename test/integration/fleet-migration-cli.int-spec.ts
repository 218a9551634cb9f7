import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Client } from 'pg';
import { migrateSchema } from '#strata/migrator';
import { waitFor } from '../support/tenancy-fixture';
import {
  buildCli,
  createFleet,
  killCliChildren,
  MIGRATE_CLI,
  nextVersion,
  runMigrateCli,
  shippedTenantMigrations,
  sqlMigration,
  type Fleet,
  type TestTarget,
} from '../support/fleet-fixture';

jest.setTimeout(180_000);

const ROOT = resolve(__dirname, '../..');
const V2 = nextVersion();
const SLOW_ARCHIVE = `-- ALTER first, then a pause: a kill during the pause finds the column inside an open transaction.
ALTER TABLE projects ADD COLUMN archived_at timestamptz;
SELECT pg_sleep(0.2);
`;
const AMOUNT_CAP = `ALTER TABLE projects ADD COLUMN archived_at timestamptz;
ALTER TABLE invoices ADD CONSTRAINT invoices_amount_cap CHECK (amount <= 1000000);
`;

const tempDirs: string[] = [];

/** A STRATA_MIGRATIONS_DIR: control/ and tenant/ copied from the repository, plus one extra tenant file. */
function migrationsDir(extraName: string, extraSql: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'strata-migrations-'));
  tempDirs.push(dir);
  for (const set of ['control', 'tenant']) {
    mkdirSync(join(dir, set));
    for (const f of readdirSync(join(ROOT, 'migrations', set)).filter((x) => x.endsWith('.sql'))) {
      copyFileSync(join(ROOT, 'migrations', set, f), join(dir, set, f));
    }
  }
  writeFileSync(join(dir, 'tenant', `${V2}_${extraName}.sql`), extraSql);
  return dir;
}

const cli = (fleet: Fleet, dir: string, args: string[]) => runMigrateCli(fleet, args, dir);

/** The runner's backends on the fleet's databases (a killed runner's linger until their statement ends). */
async function runnerBackends(fleet: Fleet): Promise<number> {
  const [{ n }] = await fleet.fx.ownerQuery<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'strata-migrate' AND datname = ANY($1)`,
    [fleet.databases],
  );
  return n;
}

/** Per target: 'new' (column and ledger row), 'old' (neither), or 'half' (one without the other). */
async function states(fleet: Fleet): Promise<Record<string, 'new' | 'old' | 'half'>> {
  const out: Record<string, 'new' | 'old' | 'half'> = {};
  for (const t of fleet.targets) {
    const column = await fleet.hasColumn(t, 'projects', 'archived_at');
    const ledger = (await fleet.ledger(t)).includes(V2);
    out[t.key] = column && ledger ? 'new' : !column && !ledger ? 'old' : 'half';
  }
  return out;
}

// The CLI under test is the compiled one, as `npm run migrate` runs it.
beforeAll(() => buildCli(), 120_000);

afterAll(() => {
  killCliChildren();
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

describe('a runner killed mid-run resumes', () => {
  let fleet: Fleet;
  let dir: string;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 2, bridge: 20, silo: 5 });
    dir = migrationsDir('slow_archive', SLOW_ARCHIVE);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('SIGKILL mid-run leaves every target either fully at the new version or fully at the old one, never half', async () => {
    const run = cli(fleet, dir, ['up', '--concurrency', '2']);
    const applied = await waitFor(
      async () => (await fleet.centralLedger()).filter((r) => r.version === V2 && r.status === 'applied').length,
      (n) => n >= 3,
      30_000,
      20,
    );
    expect(applied).toBeGreaterThanOrEqual(3);
    run.child.kill('SIGKILL');
    const exit = await run.done;
    expect(exit.signal).toBe('SIGKILL');

    // Server-side, the killed runner's backends end once their statement returns; their open
    // transactions roll back.
    expect(await waitFor(() => runnerBackends(fleet), (n) => n === 0, 15_000, 50)).toBe(0);

    const byTarget = await states(fleet);
    expect(Object.entries(byTarget).filter(([, s]) => s === 'half')).toEqual([]);
    const counts = Object.values(byTarget).reduce<Record<string, number>>((acc, s) => ((acc[s] = (acc[s] ?? 0) + 1), acc), {});
    // Killed mid-run: some targets made it, some did not.
    expect(counts.new).toBeGreaterThanOrEqual(3);
    expect(counts.old).toBeGreaterThanOrEqual(1);
  });

  it('a rerun of the CLI completes with exit 0 and brings every target to the new version', async () => {
    const before = await states(fleet);
    const { code, stdout, stderr } = await cli(fleet, dir, ['up', '--concurrency', '2']).done;
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(new RegExp(`up: ${fleet.targets.length} targets`));
    expect(stdout).toMatch(new RegExp(`release needs tenant schema ${V2}; targets by version: ${V2}: ${fleet.targets.length}`));

    const after = await states(fleet);
    expect(Object.values(after).every((s) => s === 'new')).toBe(true);
    // Targets that were already there were left alone: their own ledger rows did not change.
    for (const t of fleet.targets.filter((x) => before[x.key] === 'new')) {
      const [row] = await fleet.query<{ n: number }>(t, `SELECT count(*)::int AS n FROM ${t.schema}.strata_migrations WHERE version = $1`, [V2]);
      expect(row.n).toBe(1);
    }
    const versions = await fleet.schemaVersions();
    for (const t of fleet.targets) expect({ key: t.key, version: versions.get(t.key) }).toEqual({ key: t.key, version: V2 });

    const status = await cli(fleet, dir, ['status']).done;
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`${fleet.targets.length} current`));
  });
});

describe('a step that committed just before its runner died', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 1, bridge: 3, silo: 1 });
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('is recorded in control.tenants.schema_version by the next run, so the tenant does not stay 503 tenant_migrating', async () => {
    const migrations = [...shippedTenantMigrations(), sqlMigration(V2, 'slow_archive', SLOW_ARCHIVE)];
    // What a killed runner leaves when it dies between a step's commit and recording the outcome:
    // the target's own ledger has the step, the control plane does not know.
    const target: TestTarget = fleet.targetOf(fleet.bridges[1]);
    const c = new Client({ connectionString: fleet.ownerUrl });
    await c.connect();
    try {
      await migrateSchema(c, { schema: target.schema, set: 'tenant', grantTo: fleet.appRole, migrations });
    } finally {
      await c.end();
    }
    expect((await fleet.schemaVersions()).get(target.key)).not.toBe(V2);

    const report = await fleet.run({ mode: 'up', migrations, concurrency: 2 });
    expect(report.ok).toBe(true);
    expect(report.results.find((r) => r.target.key === target.key)!.status).toBe('current');
    const versions = await fleet.schemaVersions();
    for (const t of fleet.targets) expect({ key: t.key, version: versions.get(t.key) }).toEqual({ key: t.key, version: V2 });
  });
});

describe('the CLI', () => {
  let fleet: Fleet;
  let dir: string;

  beforeAll(async () => {
    fleet = await createFleet({ pool: 1, bridge: 3, silo: 2 });
    dir = migrationsDir('amount_cap', AMOUNT_CAP);
  });
  afterAll(async () => {
    await fleet?.close();
  });

  it('plan lists the pending version per target, changes nothing and exits 1 while targets are behind', async () => {
    const { code, stdout } = await cli(fleet, dir, ['plan']).done;
    expect(code).toBe(1);
    for (const t of fleet.targets) expect(stdout).toMatch(new RegExp(`${t.key}\\s.*behind\\s+\\S+, pending ${V2}`));
    expect(Object.values(await states(fleet)).every((s) => s === 'old')).toBe(true);
  });

  it('up --canary with a failing canary exits 1 and touches no other target, the pool shared schema included', async () => {
    const canary = fleet.bridges[0];
    const target = fleet.targetOf(canary);
    await fleet.query(target, `INSERT INTO ${target.schema}.invoices (tenant_id, number, amount, currency) VALUES ($1, $2, 5000000, 'EUR')`, [
      canary.id,
      `INV-${randomUUID().slice(0, 8)}`,
    ]);
    const { code, stdout } = await cli(fleet, dir, ['up', '--canary', canary.slug]).done;
    expect(code).toBe(1);
    expect(stdout).toMatch(/canary failed: no other target was touched/);
    expect(stdout).toMatch(new RegExp(`${target.key}\\s.*FAILED at ${V2}: .*invoices_amount_cap`));
    expect(await states(fleet)).toEqual(Object.fromEntries(fleet.targets.map((t) => [t.key, 'old'])));
    expect((await fleet.centralLedger()).map((r) => [r.target_key, r.status])).toEqual([[target.key, 'failed']]);
  });

  it('up lists the failed target and exits 1; after the data is fixed a rerun exits 0', async () => {
    const bad = fleet.targetOf(fleet.bridges[0]);
    const first = await cli(fleet, dir, ['up']).done;
    expect(first.code).toBe(1);
    expect(first.stdout).toMatch(new RegExp(`${bad.key}\\s.*FAILED at ${V2}`));
    expect(first.stdout).toMatch(/1 target\(s\) failed/);
    const s1 = await states(fleet);
    expect(s1).toEqual(Object.fromEntries(fleet.targets.map((t) => [t.key, t === bad ? 'old' : 'new'])));

    await fleet.query(bad, `UPDATE ${bad.schema}.invoices SET amount = 1 WHERE amount > 1000000`);
    const second = await cli(fleet, dir, ['up']).done;
    expect(second.code).toBe(0);
    expect(Object.values(await states(fleet)).every((s) => s === 'new')).toBe(true);
  });
});

// Keep the compiled CLI's location honest: a moved entry point should fail here, not hang.
test('the compiled CLI exists where npm run migrate runs it', () => {
  expect(readdirSync(dirname(MIGRATE_CLI))).toContain('migrate.js');
});
