import { checkFleetGuardrails, type GuardrailViolation, type SqlMigration } from '#strata/migrator';
import {
  buildCli,
  createFleet,
  killCliChildren,
  nextVersion,
  runMigrateCli,
  sqlMigration,
  withExtra,
  type Fleet,
} from '../support/fleet-fixture';

jest.setTimeout(120_000);

const TENANT_ID = `tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('app.tenant_id', true), '')::uuid`;
const TENANT_TEST = `tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid`;

// Each step lands on every target; the test for step k runs shipped + steps[0..k].
const NO_RLS = sqlMigration(
  nextVersion(1),
  'audit_events_without_rls',
  `CREATE TABLE audit_events (${TENANT_ID}, id uuid NOT NULL DEFAULT gen_random_uuid(), what text NOT NULL, PRIMARY KEY (tenant_id, id));`,
);
const NOT_FORCED = sqlMigration(
  nextVersion(2),
  'labels_not_forced',
  `CREATE TABLE labels (${TENANT_ID}, id uuid NOT NULL DEFAULT gen_random_uuid(), name text NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE labels ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON labels USING (${TENANT_TEST}) WITH CHECK (${TENANT_TEST});`,
);
const USING_ONLY = sqlMigration(
  nextVersion(3),
  'comments_using_only',
  `CREATE TABLE comments (${TENANT_ID}, id uuid NOT NULL DEFAULT gen_random_uuid(), body text NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE comments ENABLE ROW LEVEL SECURITY;
ALTER TABLE comments FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON comments USING (${TENANT_TEST});`,
);
const OPEN_DOOR = sqlMigration(
  nextVersion(4),
  'attachments_open_door',
  `SELECT pg_temp.strata_tenant_table('attachments', $$ name text NOT NULL $$);
CREATE POLICY open_door ON attachments USING (true);`,
);
const HELPER_TABLE = sqlMigration(
  nextVersion(5),
  'notes_through_helper',
  `SELECT pg_temp.strata_tenant_table('notes', $$
  project_id uuid NOT NULL,
  body text NOT NULL,
  FOREIGN KEY (tenant_id, project_id) REFERENCES projects (tenant_id, id) ON DELETE CASCADE
$$);
-- A table without tenant_id is not a tenant table: no RLS needed.
CREATE TABLE currencies (code char(3) PRIMARY KEY);`,
);
const REPAIR = sqlMigration(
  nextVersion(6),
  'repair_rls',
  `SELECT pg_temp.strata_enable_tenant_rls('audit_events');
ALTER TABLE labels FORCE ROW LEVEL SECURITY;
DROP POLICY tenant_isolation ON comments;
CREATE POLICY tenant_isolation ON comments USING (${TENANT_TEST}) WITH CHECK (${TENANT_TEST});
DROP POLICY open_door ON attachments;`,
);
const STEPS = [NO_RLS, NOT_FORCED, USING_ONLY, OPEN_DOOR, HELPER_TABLE, REPAIR];

describe('RLS guardrails over the fleet', () => {
  let fleet: Fleet;

  beforeAll(async () => {
    buildCli();
    fleet = await createFleet({ pool: 1, bridge: 4, silo: 2 });
  });
  afterAll(async () => {
    killCliChildren();
    await fleet?.close();
  });

  const check = () => checkFleetGuardrails({ url: fleet.ownerUrl, appRole: fleet.appRole });
  const onTable = (violations: GuardrailViolation[], table: string) => violations.filter((v) => v.table?.endsWith(`.${table}`));
  /** Applies STEPS up to and including `step` to the whole fleet. */
  async function land(step: SqlMigration): Promise<void> {
    const report = await fleet.run({ mode: 'up', migrations: withExtra(...STEPS.slice(0, STEPS.indexOf(step) + 1)), concurrency: 4, perServerCap: 4 });
    expect(report.results.filter((r) => r.status === 'failed')).toEqual([]);
    expect(report.results.every((r) => r.after === step.version)).toBe(true);
  }
  /** The violations of one table: exactly one `problem` per target, naming `<schema>.<table>`. */
  function expectOnEveryTarget(violations: GuardrailViolation[], table: string, problem: RegExp): void {
    const found = onTable(violations, table);
    expect(found.map((v) => [v.target, v.table]).sort()).toEqual(fleet.targets.map((t) => [t.key, `${t.schema}.${table}`]).sort());
    for (const v of found) expect(v.problem).toMatch(problem);
  }

  it('passes on a healthy fleet, and `migrate check` exits 0', async () => {
    expect(await check()).toEqual([]);
    const cli = await runMigrateCli(fleet, ['check']).done;
    expect(cli.code).toBe(0);
    expect(cli.stdout).toMatch(/RLS guardrails: every target passes/);
  });

  it('a migration adding a tenant_id table without RLS fails the check, naming the table and every target it landed on', async () => {
    await land(NO_RLS);
    const violations = await check();
    const found = onTable(violations, 'audit_events');
    for (const t of fleet.targets) {
      expect(found.filter((v) => v.target === t.key).map((v) => [v.table, v.problem])).toEqual(
        expect.arrayContaining([
          [`${t.schema}.audit_events`, 'row-level security is not enabled'],
          [`${t.schema}.audit_events`, expect.stringMatching(/not forced/)],
          [`${t.schema}.audit_events`, expect.stringMatching(/no policy for all commands with USING and WITH CHECK/)],
        ]),
      );
    }
    expect(new Set(found.map((v) => v.target))).toEqual(new Set(fleet.targets.map((t) => t.key)));
    // Nothing else is flagged.
    expect(violations.filter((v) => !found.includes(v))).toEqual([]);
  });

  it('`migrate check` exits 1 and prints each violation with its target and table', async () => {
    const cli = await runMigrateCli(fleet, ['check']).done;
    expect(cli.code).toBe(1);
    for (const t of fleet.targets) expect(cli.stdout).toContain(`${t.key} ${t.schema}.audit_events: row-level security is not enabled`);
    expect(cli.stdout).toMatch(new RegExp(`${fleet.targets.length * 3} RLS guardrail violation\\(s\\)`));
  });

  it('a table with RLS enabled but not forced is reported', async () => {
    await land(NOT_FORCED);
    const violations = onTable(await check(), 'labels');
    expectOnEveryTarget(violations, 'labels', /row-level security is not forced/);
  });

  it('a policy with USING only (no WITH CHECK) is reported', async () => {
    await land(USING_ONLY);
    expectOnEveryTarget(await check(), 'comments', /no policy for all commands with USING and WITH CHECK on app\.tenant_id/);
  });

  it('an extra permissive USING (true) policy is reported by name, even next to a correct one', async () => {
    await land(OPEN_DOOR);
    expectOnEveryTarget(await check(), 'attachments', /permissive policy open_door does not test app\.tenant_id/);
  });

  it('a table created with pg_temp.strata_tenant_table passes, and so does a table without tenant_id', async () => {
    await land(HELPER_TABLE);
    const violations = await check();
    expect(onTable(violations, 'notes')).toEqual([]);
    expect(onTable(violations, 'currencies')).toEqual([]);
    for (const t of fleet.targets) expect(await fleet.hasTable(t, 'notes')).toBe(true);
  });

  it('once a migration repairs every table the check passes again and `migrate check` exits 0', async () => {
    await land(REPAIR);
    expect(await check()).toEqual([]);
    const cli = await runMigrateCli(fleet, ['check']).done;
    expect(cli.code).toBe(0);
  });

  it('a tenant table owned by the app role is reported', async () => {
    const target = fleet.targetOf(fleet.bridges[1]);
    await fleet.query(target, `ALTER TABLE ${target.schema}.notes OWNER TO ${fleet.appRole}`);
    try {
      expect(await check()).toEqual([{ target: target.key, table: `${target.schema}.notes`, problem: `owned by the app role ${fleet.appRole}` }]);
    } finally {
      await fleet.query(target, `ALTER TABLE ${target.schema}.notes OWNER TO postgres`);
    }
    expect(await check()).toEqual([]);
  });
});
