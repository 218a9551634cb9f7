import { appendFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runFleet } from '#strata/migrator';
import { runMigrateCli } from '../../apps/cli/src/migrate-cli';
import { capturedStream, copyOfShippedMigrations, createFleet, nextVersion, statusByKey, type Fleet } from '../support/fleet-fixture';

jest.setTimeout(120_000);

const V2 = nextVersion();

/**
 * Checksum drift: an applied migration whose file was edited afterwards. The migrations are read
 * from a copy (STRATA_MIGRATIONS_DIR) the tests edit; the CLI runs in process, as `npm run migrate`.
 */
describe('migrate: an applied migration whose file changed (checksum drift)', () => {
  let fleet: Fleet;
  let dir: string;
  const fileOf = (set: 'tenant' | 'control', version: string) => join(dir, set, readdirSync(join(dir, set)).find((f) => f.startsWith(`${version}_`))!);

  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const stdout = capturedStream();
    const stderr = capturedStream();
    const code = await runMigrateCli(args, { DATABASE_URL: fleet.ownerUrl, DB_APP_USER: fleet.appRole }, { stdout, stderr });
    return { code, out: stdout.text, err: stderr.text };
  }

  beforeAll(async () => {
    fleet = await createFleet({ pool: 1, bridge: 3, silo: 1 });
    dir = copyOfShippedMigrations();
    // Read by the migrator whenever it loads the files.
    process.env.STRATA_MIGRATIONS_DIR = dir;
  });
  afterAll(async () => {
    delete process.env.STRATA_MIGRATIONS_DIR;
    await fleet?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('status and check pass while every applied file is as it was applied', async () => {
    const status = await cli('status');
    expect([status.code, status.err]).toEqual([0, '']);
    expect(status.out).not.toMatch(/CHANGED AFTER APPLIED/);
    const check = await cli('check');
    expect(check.code).toBe(0);
    expect(check.out).toMatch(/checksums: every applied migration matches its file \(5 targets and the control plane\)/);
  });

  it('flags an edited applied file on every target at once: status, plan and check exit 1 naming the version and the way out', async () => {
    appendFileSync(fileOf('tenant', '0002'), '\n-- a comment added after the fact\n');
    const report = await runFleet({ ownerUrl: fleet.ownerUrl, appRole: fleet.appRole, mode: 'status' });
    expect(Object.values(statusByKey(report))).toEqual(fleet.targets.map(() => 'drifted'));
    expect(report.ok).toBe(false);
    expect(report.results[0].drifted).toEqual([{ version: '0002', name: 'files', appliedChecksum: expect.stringMatching(/^[0-9a-f]{64}$/), fileChecksum: expect.stringMatching(/^[0-9a-f]{64}$/) }]);

    for (const command of ['status', 'plan', 'check']) {
      const { code, out } = await cli(command);
      expect([command, code]).toEqual([command, 1]);
      for (const t of fleet.targets) expect(out).toMatch(new RegExp(`${t.key}\\s.*drifted\\s.*CHANGED AFTER APPLIED: 0002_files \\(applied [0-9a-f]{12}, file now [0-9a-f]{12}\\)`));
      expect(out).toMatch(/Never edit an applied migration: restore the file .* npm run migrate -- repair --target <key> --yes/);
    }
  });

  it('up applies nothing more to a drifted target (exit 1), not even a new pending step', async () => {
    writeFileSync(join(dir, 'tenant', `${V2}_archived_at.sql`), 'ALTER TABLE projects ADD COLUMN archived_at timestamptz;\n');
    const { code, out } = await cli('up');
    expect(code).toBe(1);
    expect(out).toMatch(new RegExp(`${fleet.bridges[0].slug}\\s.*DRIFT: 0002_files changed after it was applied; nothing applied`));
    for (const t of fleet.targets) {
      expect(await fleet.ledger(t)).not.toContain(V2);
      expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(false);
    }
  });

  it('repair without --yes shows what it would re-record and changes nothing', async () => {
    const target = fleet.targetOf(fleet.bridges[0]).key;
    const dry = await cli('repair', '--target', target);
    expect(dry.code).toBe(1);
    expect(dry.out).toMatch(new RegExp(`${target}: would re-record: 0002_files`));
    expect(dry.out).toMatch(/nothing changed/);
    expect(statusByKey(await runFleet({ ownerUrl: fleet.ownerUrl, appRole: fleet.appRole, mode: 'status' }))[target]).toBe('drifted');
  });

  it('repair --target <key> --yes records the file for that target only; --all --yes for the rest; then up migrates, showing progress', async () => {
    const target = fleet.targetOf(fleet.bridges[0]).key;
    const one = await cli('repair', '--target', target, '--yes');
    expect([one.code, one.out]).toEqual([0, expect.stringContaining(`${target}: re-recorded 0002: 0002_files`)]);
    const after = statusByKey(await runFleet({ ownerUrl: fleet.ownerUrl, appRole: fleet.appRole, mode: 'status' }));
    expect(after[target]).toBe('behind');
    expect(Object.entries(after).filter(([k]) => k !== target).map(([, s]) => s)).toEqual(fleet.targets.slice(1).map(() => 'drifted'));

    const rest = await cli('repair', '--all', '--yes');
    expect(rest.code).toBe(0);
    expect(rest.out.match(/re-recorded 0002/g)).toHaveLength(fleet.targets.length - 1);

    const up = await cli('up');
    expect([up.code, up.err]).toEqual([0, '']);
    // Not a terminal: a header, then a line per target that changed, numbered.
    expect(up.out).toMatch(new RegExp(`^migrating ${fleet.targets.length} target\\(s\\)$`, 'm'));
    for (const t of fleet.targets) expect(up.out).toMatch(new RegExp(`^\\[\\d/${fleet.targets.length}\\] ${t.key} migrated \\d{4} -> ${V2}`, 'm'));
    for (const t of fleet.targets) expect(await fleet.hasColumn(t, 'projects', 'archived_at')).toBe(true);
    expect((await cli('status')).code).toBe(0);
  });

  it('flags an edited control-plane migration as drift of "control", repaired by --target control', async () => {
    appendFileSync(fileOf('control', '0002'), '\n-- edited\n');
    const status = await cli('status');
    expect(status.code).toBe(1);
    expect(status.out).toMatch(/control plane: CHANGED AFTER APPLIED: 0002_migration_ledger/);
    expect(status.out).toMatch(/1 target\(s\) run a migration whose file changed after it was applied: control\./);
    expect((await cli('check')).code).toBe(1);
    const repair = await cli('repair', '--target', 'control', '--yes');
    expect([repair.code, repair.out]).toEqual([0, expect.stringContaining('control: re-recorded 0002')]);
    expect((await cli('status')).code).toBe(0);
  });

  it('refuses a repair without a target, and an unknown target, naming the keys to use', async () => {
    const none = await cli('repair', '--yes');
    expect([none.code, none.err]).toEqual([2, expect.stringContaining('repair needs --target <key> (repeatable) or --all')]);
    const unknown = await cli('repair', '--target', 'bridge:nobody', '--yes');
    expect([unknown.code, unknown.err]).toEqual([2, expect.stringMatching(/unknown target\(s\) bridge:nobody: use the keys .*status --verbose/)]);
  });
});
