import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { Client, escapeIdentifier } from 'pg';
import { auditRows } from '../support/audit';
import { uploadFile } from '../support/files-fixture';
import { buildCli } from '../support/fleet-fixture';
import { waitFor } from '../support/tenancy-fixture';
import { type OnboardedTenant, type TestApp } from '../support/test-app';
import { startCliTestApp, type CliTestApp } from '../support/cli-fixture';
import { uniqueSlug } from '../support/test-database';
import { scanTenantStores, type FileStore } from '../support/tenant-store-scanner';

jest.setTimeout(120_000);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DELETION_STEP_COUNT = 7;

let fx: CliTestApp;
let t: TestApp;
let owner: Client;
let files: FileStore;
// The API of this file runs no executors (MOVES_EXECUTOR off): whatever deletes a tenant here is the CLI.
beforeAll(async () => {
  fx = await startCliTestApp({ files: 'delete' });
  ({ t, owner } = fx);
  files = { local: fx.filesRoot! };
});
afterAll(() => fx?.close());

const cli = (args: string[], opts: { tty?: boolean } = {}) => fx.cli(args, opts);

/** The compiled CLI (`npm run tenants`) as a child process, to be interrupted as an operator would. */
function spawnCli(args: string[]) {
  const root = resolve(__dirname, '../..');
  const env = { ...process.env, DATABASE_URL: t.db.ownerUrl, DB_APP_USER: t.db.appRole, REDIS_URL: t.config.redisUrl, MOVE_LEASE_MS: '3000' };
  const child = spawn(process.execPath, [join(root, 'dist/apps/cli/src/tenants.js'), ...args], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => child.on('close', (code) => res({ code, stdout, stderr })));
  return { child, done, output: () => ({ stdout, stderr }) };
}

const statusOf = async (id: string) => (await owner.query(`SELECT status FROM control.tenants WHERE id = $1`, [id])).rows[0]?.status;

describe('npm run tenants -- delete <id|slug>', () => {
  it('deletes a tenant by slug from every store with a progress line per step, prints the report, and audits it as the API does', async () => {
    const tenant: OnboardedTenant = await t.onboard('cli-del', 'bridge');
    await t.http().post('/projects').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).send({ name: 'doomed' }).expect(201);
    await uploadFile(t, tenant, 'bytes that must go').expect(201);
    const subject = { id: tenant.id, slug: tenant.slug, soleUserIds: [tenant.userId] };
    expect((await scanTenantStores(t, subject, files)).length).toBeGreaterThan(2);

    const run = await cli(['delete', tenant.slug]);
    expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: `${tenant.id}\n` });
    expect(await scanTenantStores(t, subject, files)).toEqual([]);
    expect(await statusOf(tenant.id)).toBe('deleted');
    // Progress on stderr (not a terminal: a line per step), then the report, store by store.
    expect(run.stderr).toContain(`deleting jobs 1/${DELETION_STEP_COUNT} (0%)`);
    expect(run.stderr).toContain(`deleted ${DELETION_STEP_COUNT}/${DELETION_STEP_COUNT} (100%)`);
    expect(run.stderr).toContain(`tenant ${tenant.slug} (${tenant.id}) deleted in `);
    expect(run.stderr).toMatch(/ files +object storage \(local\): objects 1, export_archives 0/);
    expect(run.stderr).toMatch(new RegExp(` home +postgres bridge home: schema t_${tenant.slug.replace(/-/g, '_')}: .*projects 1`));
    const audited = await auditRows(owner, `tenant_id = $1 AND action IN ('tenant.deletion_requested', 'tenant.deleted')`, [tenant.id]);
    expect(audited.map((e) => [e.action, e.actor_type])).toEqual([
      ['tenant.deletion_requested', 'operator'],
      ['tenant.deleted', 'system'],
    ]);
    expect(audited[0].actor_id).toMatch(/^cli:/);
  });

  it('draws one progress bar redrawn in place on a terminal, ending full', async () => {
    const tenant = await t.onboard('cli-del-tty', 'pool');
    const run = await cli(['delete', tenant.slug], { tty: true });
    expect(run.code).toBe(0);
    const frames = run.stderr.split('\r\x1b[2K').slice(1);
    expect(frames[0]).toMatch(/^deleting jobs 1\/7 \[░+\] +0% +0:0\d$/);
    // The last frame ends the line; the report follows below it.
    expect(frames[frames.length - 1]).toMatch(/^deleted 7\/7 \[█+\] 100% +0:\d\d\ntenant /);
  });

  it('deletes a failed tenant by id and leaves the foreign schema it collided with, rows and all', async () => {
    const slug = uniqueSlug('cli-del-failed');
    const schema = escapeIdentifier(`t_${slug.replace(/-/g, '_')}`);
    await owner.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.keep (id int); INSERT INTO ${schema}.keep VALUES (1), (2)`);
    try {
      await t.http().post('/admin/tenants').set('authorization', `Bearer ${t.adminToken}`).send({ slug, name: 'Collide inc', tier: 'bridge' }).expect(409);
      const { rows: [failed] } = await owner.query(`SELECT id, status FROM control.tenants WHERE slug = $1`, [slug]);
      expect(failed.status).toBe('failed');

      const run = await cli(['delete', failed.id]);
      expect({ code: run.code, stdout: run.stdout }).toEqual({ code: 0, stdout: `${failed.id}\n` });
      expect(run.stderr).toMatch(/ home +postgres bridge home of a failed onboarding: .*: nothing \(kept: .*left untouched\)/);
      expect((await owner.query(`SELECT count(*)::int AS n FROM ${schema}.keep`)).rows[0].n).toBe(2);
      expect((await owner.query(`SELECT 1 FROM control.tenants WHERE slug = $1`, [slug])).rows).toEqual([]);
    } finally {
      await owner.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    }
  });

  it('starts the deletion and exits at once with --no-wait; a later delete of the same tenant follows that deletion to its end', async () => {
    const tenant = await t.onboard('cli-del-nowait', 'pool');
    const started = await cli(['delete', tenant.slug, '--no-wait']);
    expect({ code: started.code, stdout: started.stdout }).toEqual({ code: 0, stdout: `${tenant.id}\n` });
    expect(started.stderr).toContain('requested (deleting)');
    // Nobody runs deletions in this file but a waiting CLI: it is still at its first step.
    const { rows: [deletion] } = await owner.query(`SELECT step, state FROM control.tenant_deletions WHERE tenant_id = $1`, [tenant.id]);
    expect(deletion).toEqual({ step: 'jobs', state: 'running' });
    expect(await statusOf(tenant.id)).toBe('deleting');

    const followed = await cli(['delete', tenant.id]);
    expect(followed.code).toBe(0);
    expect(await statusOf(tenant.id)).toBe('deleted');
    const requests = await auditRows(owner, `tenant_id = $1 AND action = 'tenant.deletion_requested'`, [tenant.id]);
    expect(requests).toHaveLength(1);
  });

  it('Ctrl-C only stops waiting (exit 130): the deletion goes on where it stood and a later delete finishes it', async () => {
    buildCli();
    const tenant = await t.onboard('cli-del-int', 'bridge');
    const schema = escapeIdentifier(`t_${tenant.slug.replace(/-/g, '_')}`);
    // A session reading the tenant's home holds its step there: DROP SCHEMA waits for its lock.
    const reader = new Client({ connectionString: t.db.ownerUrl });
    await reader.connect();
    try {
      await reader.query(`BEGIN; LOCK TABLE ${schema}.projects IN ACCESS SHARE MODE`);
      const run = spawnCli(['delete', tenant.slug]);
      await waitFor(async () => run.output().stderr, (s) => s.includes(`deleting home 5/${DELETION_STEP_COUNT}`), 60_000, 20);
      run.child.kill('SIGINT');
      const exit = await run.done;
      expect({ code: exit.code, stdout: exit.stdout }).toEqual({ code: 130, stdout: `${tenant.id}\n` });
      expect(exit.stderr).toMatch(/stopped waiting; deletion of cli-del-int-\S+ goes on\. This process was running it: its lease runs out within 3 s and the API \(MOVES_EXECUTOR\) resumes it/);
      const { rows: [deletion] } = await owner.query(`SELECT step, state FROM control.tenant_deletions WHERE tenant_id = $1`, [tenant.id]);
      expect(deletion).toEqual({ step: 'home', state: 'running' });
    } finally {
      await reader.query('ROLLBACK').catch(() => undefined);
      await reader.end();
    }
    const resumed = await cli(['delete', tenant.id]);
    expect(resumed.code).toBe(0);
    expect(await statusOf(tenant.id)).toBe('deleted');
    expect((await owner.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [`t_${tenant.slug.replace(/-/g, '_')}`])).rows).toEqual([]);
  });

  it.each([
    [['delete', 'no-such-tenant'], 2, /^tenant_not_found: no tenant with slug no-such-tenant/],
    [['delete', '6f1c7a52-0c77-4bb6-9d2a-b7c2a3e9a001'], 2, /^tenant_not_found: /],
    [['delete'], 2, /delete needs a tenant id or slug/],
    [['delete', 'acme', '--to', 'pool'], 2, /--to and --pool belong to move, not delete/],
    [['delete', 'acme', '--wait', '--no-wait'], 2, /--wait or --no-wait, not both/],
    [['moves', 'acme', '--no-wait'], 2, /--no-wait belongs to delete and restore, not moves/],
  ])('answers %j with exit status %d', async (args, code, message) => {
    const run = await cli(args as string[]);
    expect(run.code).toBe(code);
    expect(run.stderr).toMatch(message);
  });
});
