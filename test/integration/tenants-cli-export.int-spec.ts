import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { archiveKeyOf } from '#strata/exports';
import { fillTenant } from '../support/export-harness';
import { buildCli } from '../support/fleet-fixture';
import { type OnboardedTenant, type TestApp } from '../support/test-app';
import { startCliTestApp, type CliTestApp } from '../support/cli-fixture';
import { uniqueSlug } from '../support/test-database';
import { auditRows } from '../support/audit';
import { waitFor } from '../support/tenancy-fixture';
import { RESTORE_ONBOARDING_STEPS } from '#strata/onboarding';

jest.setTimeout(120_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let fx: CliTestApp;
let t: TestApp;
let owner: Client;
let filesRoot: string;
// The API of this file runs no executors (MOVES_EXECUTOR off): whatever produces or restores an export here is the CLI.
beforeAll(async () => {
  fx = await startCliTestApp({ files: 'exports' });
  ({ t, owner } = fx);
  filesRoot = fx.filesRoot!;
});
afterAll(() => fx?.close());

const cli = (args: string[], opts: { tty?: boolean } = {}) => fx.cli(args, opts);

const rowsOf = async (tenantId: string) =>
  (await owner.query(`SELECT tables FROM control.tenant_exports WHERE tenant_id = $1 AND state = 'done' ORDER BY created_at DESC LIMIT 1`, [tenantId])).rows[0]?.tables;

describe('npm run tenants -- export / restore', () => {
  let acme: OnboardedTenant;
  let exportId: string;

  beforeAll(async () => {
    acme = await t.onboard('cli-export', 'bridge');
    await fillTenant(t, acme);
  });

  it('exports a tenant with --wait, producing it in this process, and prints the export id', async () => {
    const run = await cli(['export', acme.slug, '--wait']);
    exportId = run.stdout.trim();
    const { rows: [record] } = await owner.query(`SELECT rows_exported::int AS n FROM control.tenant_exports WHERE id = $1`, [exportId]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({ code: 0, stderr: `export ${exportId} done: ${record.n} rows, 2 files, ${run.stderr.match(/(\d+) bytes/)?.[1]} bytes (sha256 ${run.stderr.match(/sha256 ([0-9a-f]{64})/)?.[1]})\n` });
    // fillTenant: 3 projects, 3 tasks, 2 invoices, 1 webhook endpoint, 2 files, 3 idempotency keys, and whatever else the home counts.
    expect(record.n).toBeGreaterThanOrEqual(14);
    expect(exportId).toMatch(UUID);
    const { rows } = await owner.query(`SELECT state, requested_by FROM control.tenant_exports WHERE id = $1`, [exportId]);
    expect(rows[0]).toEqual({ state: 'done', requested_by: expect.stringMatching(/^operator:cli:/) });
  });

  it('restores the export as a new silo tenant through the onboarding pipeline (steps, progress, audit), with the same tables, counts and checksums', async () => {
    const slug = uniqueSlug('cli-restored');
    const run = await cli(['restore', '--export', exportId, '--slug', slug, '--tier', 'silo']);
    expect(run.code).toBe(0);
    const tenantId = run.stdout.trim();
    expect(tenantId).toMatch(UUID);
    const { rows: [exported] } = await owner.query(`SELECT rows_exported::int AS n FROM control.tenant_exports WHERE id = $1`, [exportId]);
    expect(run.stderr).toContain(`restored as ${slug} on silo/main-silo: ${exported.n} rows in`);
    const { rows } = await owner.query(`SELECT tier, status, slug FROM control.tenants WHERE id = $1`, [tenantId]);
    expect(rows[0]).toEqual({ tier: 'silo', status: 'active', slug });
    // The pipeline's record: every step of a restore done once, as POST /admin/tenants {restoreFrom} leaves it.
    const { rows: [onboarding] } = await owner.query(`SELECT steps, params FROM control.tenant_onboardings WHERE tenant_id = $1`, [tenantId]);
    expect(onboarding.steps.map((st: { name: string; state: string; attempts: number }) => [st.name, st.state, st.attempts])).toEqual(
      RESTORE_ONBOARDING_STEPS.map((name) => [name, 'done', 1]),
    );
    expect(onboarding.params).toEqual({ restoreFrom: exportId });
    // Audited as the API's onboarding is: requested by the operator at the CLI, then onboarded.
    const audited = await auditRows(owner, `tenant_id = $1`, [tenantId]);
    expect(audited.map((e) => [e.action, e.actor_type])).toEqual([
      ['tenant.onboarding_requested', 'operator'],
      ['tenant.onboarded', 'system'],
    ]);
    expect(audited[0].actor_id).toMatch(/^cli:/);
    expect(audited[0].details).toMatchObject({ slug, tier: 'silo', restoredFrom: exportId });
    // A progress line per step on a non-terminal stderr, ending at all steps done.
    const steps = RESTORE_ONBOARDING_STEPS.length;
    expect(run.stderr).toContain(`restoring create_home 1/${steps} (0%)`);
    expect(run.stderr).toContain(`restored ${steps}/${steps} (100%)`);
    // Its own export carries the same per-table counts and checksums.
    const again = await cli(['export', slug, '--wait']);
    expect(again.code).toBe(0);
    expect(await rowsOf(tenantId)).toEqual(await rowsOf(acme.id));
  });

  it('exits 1 when the pipeline fails (a foreign schema holds the slug), naming the step, and leaves that schema alone', async () => {
    const slug = uniqueSlug('cli-collide');
    const schema = `t_${slug.replace(/-/g, '_')}`;
    await owner.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.keep (id int); INSERT INTO ${schema}.keep VALUES (1)`);
    try {
      const run = await cli(['restore', '--export', exportId, '--slug', slug, '--tier', 'bridge']);
      const tenantId = run.stdout.trim();
      expect({ code: run.code, id: tenantId }).toEqual({ code: 1, id: expect.stringMatching(UUID) });
      expect(run.stderr).toContain(`as ${slug} failed at create_home: create_home: schema ${schema} already exists`);
      expect(run.stderr).toContain(`npm run tenants -- delete ${tenantId}`);
      expect((await owner.query(`SELECT count(*)::int AS n FROM ${schema}.keep`)).rows[0].n).toBe(1);
    } finally {
      await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('starts the restore and exits at once with --no-wait; an executor of the API finishes it', async () => {
    const slug = uniqueSlug('cli-nowait');
    const run = await cli(['restore', '--export', exportId, '--slug', slug, '--tier', 'pool', '--no-wait']);
    expect(run.code).toBe(0);
    const tenantId = run.stdout.trim();
    const status = async () => (await owner.query(`SELECT status FROM control.tenants WHERE id = $1`, [tenantId])).rows[0]?.status;
    expect(await waitFor(status, (st) => st === 'active', 30_000, 100)).toBe('active');
  });

  it('refuses a tampered archive with exit status 2 and export_archive_invalid, creating no tenant', async () => {
    const path = join(filesRoot, ...archiveKeyOf(exportId).split('/'));
    const original = readFileSync(path);
    const tampered = Buffer.from(original);
    tampered[Math.floor(tampered.length / 2)] ^= 0x01;
    writeFileSync(path, tampered);
    try {
      const slug = uniqueSlug('cli-tampered');
      const run = await cli(['restore', '--export', exportId, '--slug', slug, '--tier', 'pool']);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 2, stdout: '' });
      expect(run.stderr).toMatch(/^export_archive_invalid: the archive is refused: /);
      expect((await owner.query(`SELECT 1 FROM control.tenants WHERE slug = $1`, [slug])).rows).toEqual([]);
    } finally {
      writeFileSync(path, original);
    }
  });

  it('runs compiled (node dist/apps/cli/src/tenants.js): export --wait and restore exit 0 and print their ids', async () => {
    buildCli();
    const run = (args: string[]) =>
      new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
        const env = { ...process.env, DATABASE_URL: t.db.ownerUrl, DB_APP_USER: t.db.appRole, FILES_DRIVER: 'local', FILES_ROOT: filesRoot };
        const child = execFile(process.execPath, [join(resolve(__dirname, '../..'), 'dist/apps/cli/src/tenants.js'), ...args], { env }, (_err, stdout, stderr) =>
          done({ code: child.exitCode, stdout, stderr }),
        );
      });
    const exported = await run(['export', acme.slug, '--wait']);
    expect({ code: exported.code, stderr: exported.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/ done: \d+ rows, 2 files, /) });
    const restored = await run(['restore', '--export', exported.stdout.trim(), '--slug', uniqueSlug('cli-compiled'), '--tier', 'bridge']);
    expect({ code: restored.code, stdout: restored.stdout.trim() }).toEqual({ code: 0, stdout: expect.stringMatching(UUID) });
  });

  it.each([
    [['restore', '--slug', 'x-new', '--tier', 'pool'], 'restore needs --export <export id>'],
    [['restore', '--export', '00000000-0000-4000-8000-000000000000', '--slug', 'x-new', '--tier', 'gold'], 'restore needs --tier, one of pool, bridge, silo'],
    [['restore', '--export', '00000000-0000-4000-8000-000000000000', '--slug', 'Bad Slug', '--tier', 'pool'], 'restore needs --slug <new slug>'],
    [['export', 'x-new', '--tier', 'pool'], '--export, --slug and --tier belong to restore, not export'],
  ])('answers bad usage %j with exit status 2: %s', async (args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
  });

  it('answers export_not_found (exit status 2) for an unknown export', async () => {
    const run = await cli(['restore', '--export', '00000000-0000-4000-8000-000000000000', '--slug', uniqueSlug('cli-none'), '--tier', 'pool']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^export_not_found: /);
  });
});
