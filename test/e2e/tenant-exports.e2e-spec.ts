import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE, type Tier } from '#strata/control-plane';
import { archiveKeyOf, ExportsService, TenantRestorer, type TenantExportView } from '#strata/exports';
import { STORAGE_DRIVER, StorageObjectNotFoundError, type StorageDriver } from '#strata/storage';
import { as, probeForeignIds } from '../support/cross-tenant';
import { EXPORT_FOREIGN_ROUTES } from '../support/cross-tenant-routes';
import { binary } from '../support/files-fixture';
import { contentOf, downloadArchive, exportAndWait, fillTenant, openArchive, packArchive, waitForExport, type TenantContent } from '../support/export-harness';
import { homeAt, moveAndWait, queryHome } from '../support/move-harness';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { uniqueSlug } from '../support/test-database';

jest.setTimeout(90_000);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('tenant export and restore', () => {
  let t: TestApp;
  let filesRoot: string;
  const env = { FILES_DRIVER: process.env.FILES_DRIVER, FILES_ROOT: process.env.FILES_ROOT };
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const control = () => t.app.get<DataSource>(CONTROL_DATA_SOURCE);
  const storage = () => t.app.get<StorageDriver>(STORAGE_DRIVER, { strict: false });
  const restorer = () => t.app.get(TenantRestorer, { strict: false });

  beforeAll(async () => {
    filesRoot = mkdtempSync(join(tmpdir(), 'strata-exports-'));
    Object.assign(process.env, { FILES_DRIVER: 'local', FILES_ROOT: filesRoot });
    t = await startTestApp();
  });
  afterAll(async () => {
    await t?.close();
    rmSync(filesRoot, { recursive: true, force: true });
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  });

  /** Restores `exported` as a new tenant on `tier`, exports that one, and compares the two archives and the rows' ids. */
  async function expectRestoredIdentically(exported: TenantExportView, content: TenantContent, tier: Tier): Promise<void> {
    const slug = uniqueSlug(`rs-${tier}`);
    const { tenant, report } = await restorer().restoreAsNewTenant({ exportId: exported.id, slug, tier });
    expect({ tier: tenant.tier, status: tenant.status }).toEqual({ tier, status: 'active' });
    expect(report.tables).toEqual(exported.tables.map((x) => ({ name: x.name, rows: x.rows })));

    const again = await exportAndWait(t, tenant.id);
    expect(again.state).toBe('done');
    // The same tables, row counts and checksums (rows carry no tenant_id in the archive, so equal files mean equal rows).
    expect(again.tables).toEqual(exported.tables);
    const [before, after] = await Promise.all([openArchive(await downloadArchive(t, exported.id)), openArchive(await downloadArchive(t, again.id))]);
    expect(contentOf(after.manifest)).toEqual(contentOf(before.manifest));
    expect(after.manifest.tenant).toMatchObject({ id: tenant.id, slug, tier });
    // Files: every one back, byte for byte, under the same key.
    for (const f of content.files) expect(sha256(after.entries.get(`files/files/${f.id}`)!)).toBe(sha256(f.bytes));

    // Same ids, in the new tier's home, under the new tenant's id.
    const home = await homeAt(t, tier, tenant.poolId, slug);
    const ids = async (table: string) => (await queryHome<{ id: string }>(t, home, tenant.id, `SELECT id::text FROM ${table} WHERE tenant_id = $1 ORDER BY id`, [tenant.id])).map((r) => r.id);
    expect(await ids('projects')).toEqual([...content.projectIds].sort());
    expect(await ids('tasks')).toEqual([...content.taskIds].sort());
    expect(await ids('invoices')).toEqual([...content.invoiceIds].sort());
    expect(await ids('webhook_endpoints')).toEqual([...content.webhookIds].sort());
    expect(await ids('files')).toEqual(content.files.map((f) => f.id).sort());
  }

  describe('restore into every other tier', () => {
    const sources = new Map<Tier, { tenant: OnboardedTenant; content: TenantContent; exported: TenantExportView }>();

    beforeAll(async () => {
      for (const tier of ['pool', 'bridge', 'silo'] as const) {
        const tenant = await t.onboard(`ex-${tier}`, tier);
        const content = await fillTenant(t, tenant);
        const exported = await exportAndWait(t, tenant.id);
        sources.set(tier, { tenant, content, exported });
      }
    });

    it('exports a tenant of each tier: done, with its rows and files counted and one checksum per table', () => {
      for (const { tenant, exported } of sources.values()) {
        expect(exported).toMatchObject({ tenantId: tenant.id, state: 'done', requestedBy: 'operator:test-operator', tier: tenant.tier, filesExported: 2, error: null });
        expect(Object.fromEntries(exported.tables.map((x) => [x.name, x.rows]))).toMatchObject({ projects: 3, tasks: 3, invoices: 2, webhook_endpoints: 1, files: 2, idempotency_keys: 3 });
        expect(exported.rowsExported).toBe(exported.tables.reduce((n, x) => n + x.rows, 0));
        expect(exported.archiveSha256).toMatch(/^[0-9a-f]{64}$/);
      }
    });

    it.each([
      ['pool', 'bridge'],
      ['pool', 'silo'],
      ['bridge', 'pool'],
      ['silo', 'pool'],
      ['bridge', 'silo'],
    ] as Array<[Tier, Tier]>)('restores a %s tenant into %s with identical row counts, checksums, ids and files', async (from, to) => {
      const { content, exported } = sources.get(from)!;
      await expectRestoredIdentically(exported, content, to);
    });

    it('serves the archive with its length and a Digest of the sha256 the record names', async () => {
      const { exported } = sources.get('pool')!;
      const res = await t.http().get(`/admin/exports/${exported.id}/archive`).set(admin()).buffer(true).parse(binary).expect(200);
      expect(res.headers['content-type']).toBe('application/gzip');
      expect(res.headers['content-disposition']).toMatch(/^attachment; filename="?strata-export-\d{4}-\d{2}-\d{2}-[0-9a-f-]{36}\.tar\.gz"?$/);
      expect(Number(res.headers['content-length'])).toBe(exported.archiveBytes);
      expect(res.headers.digest).toBe(`sha-256=${Buffer.from(exported.archiveSha256!, 'hex').toString('base64')}`);
      expect(sha256(res.body as Buffer)).toBe(exported.archiveSha256);
    });

    it('keeps the archive under a platform key that no tenant prefix reaches', async () => {
      const { tenant, exported } = sources.get('pool')!;
      const keys = await storage().list(`${tenant.id}/`);
      expect(keys.some((k) => k.includes(exported.id))).toBe(false);
      expect((await storage().head(archiveKeyOf(exported.id))).size).toBe(exported.archiveBytes);
    });
  });

  describe('a tampered archive is refused before anything is created', () => {
    let source: { tenant: OnboardedTenant; exported: TenantExportView; archive: Buffer };

    beforeAll(async () => {
      const tenant = await t.onboard('ex-tamper', 'pool');
      await fillTenant(t, tenant);
      const exported = await exportAndWait(t, tenant.id);
      source = { tenant, exported, archive: await downloadArchive(t, exported.id) };
    });
    afterEach(() => storage().put(archiveKeyOf(source.exported.id), source.archive, { contentType: 'application/gzip' }));

    async function expectRefused(slug: string): Promise<void> {
      await expect(restorer().restoreAsNewTenant({ exportId: source.exported.id, slug, tier: 'bridge' })).rejects.toMatchObject({
        response: expect.objectContaining({ statusCode: 422, error: 'export_archive_invalid' }),
      });
      expect(await control().query(`SELECT id FROM control.tenants WHERE slug = $1`, [slug])).toEqual([]);
      const schema = await control().query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [`t_${slug.replace(/-/g, '_')}`]);
      expect(schema).toEqual([]);
    }

    /** Stores `entries` behind `manifest` as the export's archive, with its record's sha256 altered to match, and expects the restore refused. */
    async function expectForgeryRefused(manifest: unknown, entries: Map<string, Buffer>, slug: string): Promise<void> {
      const forged = await packArchive(manifest, entries);
      await storage().put(archiveKeyOf(source.exported.id), forged, { contentType: 'application/gzip' });
      await control().query(`UPDATE control.tenant_exports SET archive_sha256 = $2 WHERE id = $1`, [source.exported.id, sha256(forged)]);
      try {
        await expectRefused(slug);
      } finally {
        await control().query(`UPDATE control.tenant_exports SET archive_sha256 = $2 WHERE id = $1`, [source.exported.id, source.exported.archiveSha256]);
      }
    }

    it('refuses an archive whose bytes differ from the sha256 its export recorded', async () => {
      const flipped = Buffer.from(source.archive);
      flipped[flipped.length - 20] ^= 0xff;
      await storage().put(archiveKeyOf(source.exported.id), flipped, { contentType: 'application/gzip' });
      await expectRefused(uniqueSlug('tamper-a'));
    });

    it('refuses an archive with an altered row even when its record was altered to match, by the manifest checksums', async () => {
      const { manifest, entries } = await openArchive(source.archive);
      const rows = entries.get('tables/invoices.jsonl')!.toString('utf8').replace(/"amount": ?\d+/, '"amount": 1');
      entries.set('tables/invoices.jsonl', Buffer.from(rows));
      await expectForgeryRefused(manifest, entries, uniqueSlug('tamper-b'));
    });

    it('refuses a member line that names no valid role, even in an archive whose manifest and record were altered to match', async () => {
      const { manifest, entries } = await openArchive(source.archive);
      const forgedMembers = Buffer.from(`${JSON.stringify({ userId: source.tenant.userId, email: source.tenant.email, role: 'root' })}\n`);
      entries.set('members.jsonl', forgedMembers);
      const forgedManifest = { ...manifest, members: { path: 'members.jsonl', rows: 1, bytes: forgedMembers.length, sha256: sha256(forgedMembers) } };
      await expectForgeryRefused(forgedManifest, entries, uniqueSlug('tamper-m'));
    });

    it('refuses an archive carrying an entry its manifest does not name', async () => {
      const { manifest, entries } = await openArchive(source.archive);
      entries.set('files/planted', Buffer.from('not in the manifest'));
      await expectForgeryRefused(manifest, entries, uniqueSlug('tamper-c'));
    });
  });

  describe('tenant owners export their own tenant', () => {
    let acme: OnboardedTenant;
    let globex: OnboardedTenant;
    let initech: OnboardedTenant;

    beforeAll(async () => {
      acme = await t.onboard('own-acme', 'pool');
      globex = await t.onboard('own-globex', 'silo');
      initech = await t.onboard('own-initech', 'bridge');
      await fillTenant(t, acme);
    });

    async function waitAsOwner(who: OnboardedTenant, id: string): Promise<TenantExportView> {
      for (let i = 0; i < 300; i++) {
        const res = await t.http().get(`/export/${id}`).set(as(who)).expect(200);
        if (res.body.state === 'done' || res.body.state === 'failed') return res.body;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`export ${id} did not end`);
    }

    it('lets an owner request, follow and download an export of their tenant', async () => {
      const queued = await t.http().post('/export').set(as(acme)).expect(202);
      expect(queued.body).toMatchObject({ tenantId: acme.id, requestedBy: `owner:${acme.userId}` });
      const done = await waitAsOwner(acme, queued.body.id);
      expect(done.state).toBe('done');
      const listed = await t.http().get('/export').set(as(acme)).expect(200);
      expect(listed.body.items.map((e: TenantExportView) => e.id)).toContain(done.id);
      expect(listed.body.items.every((e: TenantExportView) => e.tenantId === acme.id)).toBe(true);
      const archive = await t.http().get(`/export/${done.id}/archive`).set(as(acme)).buffer(true).parse(binary).expect(200);
      const { manifest } = await openArchive(archive.body as Buffer);
      expect(manifest.tenant.id).toBe(acme.id);
      expect(manifest.files).toHaveLength(2);
    });

    it("answers 404 export_not_found to another tenant's owner on every tier pair, for the export and its archive", async () => {
      const owned: Array<{ tenant: OnboardedTenant; exportId: string }> = [];
      for (const who of [acme, globex, initech]) {
        const queued = await t.http().post('/export').set(as(who)).expect(202);
        await waitAsOwner(who, queued.body.id);
        owned.push({ tenant: who, exportId: queued.body.id });
      }
      const { pairs, checked, failures } = await probeForeignIds(t, owned, EXPORT_FOREIGN_ROUTES, 'export_not_found');
      expect([...pairs].sort()).toEqual(['bridge->pool', 'bridge->silo', 'pool->bridge', 'pool->silo', 'silo->bridge', 'silo->pool']);
      expect(checked).toBe(6 * EXPORT_FOREIGN_ROUTES.length);
      expect(failures).toEqual([]);
    });

    it("cannot ask for another tenant's export: its own token on another tenant's wire is refused at the edge, and nothing is queued there", async () => {
      for (const wire of [{ 'X-Tenant': globex.slug }, {}]) {
        const path = 'X-Tenant' in wire ? '/export' : `/t/${globex.slug}/export`;
        const res = await t.http().post(path).set({ authorization: `Bearer ${acme.token}`, ...wire });
        expect(res.status).toBe(404);
      }
      expect(await control().query(`SELECT id FROM control.tenant_exports WHERE tenant_id = $1 AND requested_by = $2`, [globex.id, `owner:${acme.userId}`])).toEqual([]);
    });

    it('refuses an impersonated owner (403 impersonation_forbidden): operators export through the admin API, as themselves', async () => {
      const started = await t.http().post(`/admin/tenants/${acme.id}/impersonate`).set(admin()).send({ userId: acme.userId, reason: 'support case 42' }).expect(201);
      const impersonated = { 'X-Tenant': acme.slug, authorization: `Bearer ${started.body.access_token}` };
      for (const req of [t.http().post('/export').set(impersonated), t.http().get('/export').set(impersonated)]) {
        const res = await req.expect(403);
        expect(res.body.error).toBe('impersonation_forbidden');
      }
    });

    it('records each request and download in the audit log, with who asked', async () => {
      const queued = await t.http().post('/export').set(as(acme)).expect(202);
      await waitAsOwner(acme, queued.body.id);
      await t.http().get(`/export/${queued.body.id}/archive`).set(as(acme)).buffer(true).parse(binary).expect(200);
      await t.http().get(`/admin/exports/${queued.body.id}/archive`).set(admin()).buffer(true).parse(binary).expect(200);
      const entries: Array<{ action: string; actor_type: string; actor_id: string }> = await control().query(
        `SELECT action, actor_type, actor_id FROM control.audit_log WHERE tenant_id = $1 AND details->>'exportId' = $2 ORDER BY seq`,
        [acme.id, queued.body.id],
      );
      expect(entries).toEqual([
        { action: 'export.requested', actor_type: 'user', actor_id: acme.userId },
        { action: 'export.downloaded', actor_type: 'user', actor_id: acme.userId },
        { action: 'export.downloaded', actor_type: 'operator', actor_id: 'test-operator' },
      ]);
    });

    it('refuses a member who is not an owner (403)', async () => {
      const email = `member@${acme.slug}.test`;
      await t.http().post(`/admin/tenants/${acme.id}/users`).set(admin()).send({ email, password: 'correct-horse-battery', role: 'admin' }).expect(201);
      const token = (await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email, password: 'correct-horse-battery' }).expect(200)).body.access_token;
      const res = await t.http().post('/export').set({ 'X-Tenant': acme.slug, authorization: `Bearer ${token}` }).expect(403);
      expect(res.body.error).toBe('forbidden_role');
    });
  });

  it('exports a tenant that moved before from where it lives now, and restores it', async () => {
    const tenant = await t.onboard('ex-moved', 'pool');
    const content = await fillTenant(t, tenant);
    expect((await moveAndWait(t, tenant.id, 'silo')).phase).toBe('done');
    const exported = await exportAndWait(t, tenant.id);
    expect(exported).toMatchObject({ state: 'done', tier: 'silo' });
    expect(Object.fromEntries(exported.tables.map((x) => [x.name, x.rows]))).toMatchObject({ projects: 3, tasks: 3, invoices: 2, files: 2 });
    await expectRestoredIdentically(exported, content, 'bridge');
  });

  describe('POST /admin/tenants with restoreFrom', () => {
    let exported: TenantExportView;
    let content: TenantContent;
    let source: OnboardedTenant;
    const member = { email: `${uniqueSlug('ex-member')}@example.test`, password: 'member-password-123' };

    beforeAll(async () => {
      source = await t.onboard('ex-onboard', 'bridge');
      await t.http().post(`/admin/tenants/${source.id}/users`).set(admin()).send({ ...member, role: 'member' }).expect(201);
      content = await fillTenant(t, source);
      exported = await exportAndWait(t, source.id);
    });

    it("lists the tenant's members in the archive: id, email and role, no password hash", async () => {
      const { manifest, entries } = await openArchive(await downloadArchive(t, exported.id));
      const lines = entries.get('members.jsonl')!.toString('utf8').trim().split('\n').map((l) => JSON.parse(l));
      const expected = [
        { userId: source.userId, email: source.email, role: 'owner' },
        { userId: expect.any(String), email: member.email, role: 'member' },
      ].sort((a, b) => a.email.localeCompare(b.email));
      expect(lines).toEqual(expected);
      expect(manifest.members).toMatchObject({ path: 'members.jsonl', rows: 2 });
      expect(entries.get('members.jsonl')!.toString('utf8')).not.toMatch(/password|scrypt/);
    });

    it('gives the exported members their roles in the restored tenant: its people log in there as before', async () => {
      const slug = uniqueSlug('rf-people');
      const created = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'people inc', tier: 'pool', restoreFrom: exported.id }).expect(201);
      const roleOn = async (who: { email: string; password: string }) => {
        const login = await t.http().post('/auth/login').set('X-Tenant', slug).send({ email: who.email, password: who.password }).expect(200);
        const me = await t.http().get('/auth/me').set({ 'X-Tenant': slug, authorization: `Bearer ${login.body.access_token}` }).expect(200);
        return me.body.role;
      };
      expect(await roleOn(source)).toBe('owner');
      expect(await roleOn(member)).toBe('member');
      // Run again (a retried step): nobody is added twice, nobody else is added.
      const home = await homeAt(t, 'pool', created.body.poolId, slug);
      const rerun = await restorer().restore(exported.id, { id: created.body.id }, { ...home, tier: 'pool', dataHost: home.host, dataPort: home.port, poolDatabase: home.database, exclusive: false }, { alreadyRestored: 'ok' });
      expect(rerun.members).toEqual({ restored: 2, skipped: 0 });
      const memberships = await control().query(`SELECT role FROM control.memberships WHERE tenant_id = $1 ORDER BY role`, [created.body.id]);
      expect(memberships.map((m: { role: string }) => m.role)).toEqual(['member', 'owner']);
    });

    it('onboards a tenant filled from the export: 201 active, the same checksums when exported again, the same ids', async () => {
      const slug = uniqueSlug('rf-silo');
      const created = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'restored inc', tier: 'silo', restoreFrom: exported.id }).expect(201);
      expect(created.body).toMatchObject({ slug, tier: 'silo', status: 'active' });
      // Through the onboarding pipeline: a `restore` step right after the migrations.
      expect(created.body.steps.map((s: { name: string; state: string }) => `${s.name}:${s.state}`)).toEqual([
        'create_home:done',
        'migrate:done',
        'restore:done',
        'seed_defaults:done',
        'owner_membership:done',
      ]);
      // Run again (a step retried after a crash): the home already holds the export, so it is done; a plain restore refuses it.
      const home = await homeAt(t, 'silo', created.body.poolId, slug);
      const tenantHome = { ...home, tier: 'silo' as const, dataHost: home.host, dataPort: home.port, poolDatabase: 'postgres', exclusive: true };
      const rerun = await restorer().restore(exported.id, { id: created.body.id }, tenantHome, { alreadyRestored: 'ok' });
      expect(rerun.tables).toEqual(exported.tables.map((x) => ({ name: x.name, rows: x.rows })));
      await expect(restorer().restore(exported.id, { id: created.body.id }, tenantHome)).rejects.toThrow(/already holds rows/);
      const again = await exportAndWait(t, created.body.id);
      expect(again.tables).toEqual(exported.tables);
      const ids = await queryHome<{ id: string }>(t, home, created.body.id, `SELECT id::text FROM projects ORDER BY id`);
      expect(ids.map((r) => r.id)).toEqual([...content.projectIds].sort());
    });

    it('refuses an unknown export (404 export_not_found) and an unfinished one (409 export_not_ready) before creating anything', async () => {
      const slug = uniqueSlug('rf-none');
      const unknown = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'x', tier: 'pool', restoreFrom: '7d1c1b2e-0000-4000-8000-000000000001' }).expect(404);
      expect(unknown.body.error).toBe('export_not_found');
      const [row] = await control().query(`INSERT INTO control.tenant_exports (tenant_id, requested_by, state, lease_owner, lease_until) VALUES ($1, 'test', 'running', 'elsewhere', now() + interval '1 hour') RETURNING id`, [exported.tenantId]);
      const running = await t.http().post('/admin/tenants').set(admin()).send({ slug, name: 'x', tier: 'pool', restoreFrom: row.id }).expect(409);
      expect(running.body.error).toBe('export_not_ready');
      expect(await control().query(`SELECT id FROM control.tenants WHERE slug = $1`, [slug])).toEqual([]);
    });
  });

  it('answers the open export while a tenant has one queued or running, instead of queuing another', async () => {
    const tenant = await t.onboard('ex-open', 'pool');
    const [row] = await control().query(`INSERT INTO control.tenant_exports (tenant_id, requested_by, state, lease_owner, lease_until) VALUES ($1, 'test', 'running', 'elsewhere', now() + interval '1 hour') RETURNING id`, [tenant.id]);
    const [byAdmin, byOwner] = await Promise.all([
      t.http().post(`/admin/tenants/${tenant.id}/exports`).set(admin()).expect(202),
      t.http().post('/export').set(as(tenant)).expect(202),
    ]);
    expect([byAdmin.body.id, byOwner.body.id]).toEqual([row.id, row.id]);
    await control().query(`UPDATE control.tenant_exports SET lease_until = now() - interval '1 second', lease_owner = NULL, state = 'queued' WHERE id = $1`, [row.id]);
    expect((await waitForExport(t, row.id)).state).toBe('done');
    const next = await t.http().post('/export').set(as(tenant)).expect(202);
    expect(next.body.id).not.toBe(row.id);
  });

  it("purges a tenant's archives and export records for offboarding, saying how many", async () => {
    const tenant = await t.onboard('ex-purge', 'bridge');
    await fillTenant(t, tenant);
    const first = await exportAndWait(t, tenant.id);
    const second = await exportAndWait(t, tenant.id);
    const purged = await t.app.get(ExportsService, { strict: false }).purgeTenant(tenant.id);
    expect(purged).toEqual({ archives: 2, records: 2 });
    for (const e of [first, second]) await expect(storage().head(archiveKeyOf(e.id))).rejects.toBeInstanceOf(StorageObjectNotFoundError);
    expect(await control().query(`SELECT id FROM control.tenant_exports WHERE tenant_id = $1`, [tenant.id])).toEqual([]);
    expect(await t.app.get(ExportsService, { strict: false }).purgeTenant(tenant.id)).toEqual({ archives: 0, records: 0 });
  });

  it("offboarding removes the tenant's export archives and records, and says so in the deletion report", async () => {
    const tenant = await t.onboard('ex-offboard', 'silo');
    await fillTenant(t, tenant);
    const exported = await exportAndWait(t, tenant.id);
    await t.http().delete(`/admin/tenants/${tenant.id}`).set(admin()).expect(202);
    let report: { status: string; stores: Array<{ step: string; removed: Record<string, number> }> } | undefined;
    for (let i = 0; i < 300 && report?.status !== 'deleted'; i++) {
      await new Promise((r) => setTimeout(r, 100));
      report = (await t.http().get(`/admin/tenants/${tenant.id}/deletion-report`).set(admin())).body;
    }
    expect(report?.status).toBe('deleted');
    const removed = report!.stores.map((e) => e.removed);
    expect(removed).toEqual(expect.arrayContaining([expect.objectContaining({ export_archives: 1 }), expect.objectContaining({ tenant_exports: 1 })]));
    await expect(storage().head(archiveKeyOf(exported.id))).rejects.toBeInstanceOf(StorageObjectNotFoundError);
    expect(await control().query(`SELECT id FROM control.tenant_exports WHERE tenant_id = $1`, [tenant.id])).toEqual([]);
  });

  it('answers 404 tenant_not_found and export_not_found for unknown ids, and 409 export_not_ready for an archive not made yet', async () => {
    const unknown = '7d1c1b2e-0000-4000-8000-000000000000';
    expect((await t.http().post(`/admin/tenants/${unknown}/exports`).set(admin()).expect(404)).body.error).toBe('tenant_not_found');
    expect((await t.http().get(`/admin/exports/${unknown}`).set(admin()).expect(404)).body.error).toBe('export_not_found');
    const tenant = await t.onboard('ex-notready', 'pool');
    const [row] = await control().query(`INSERT INTO control.tenant_exports (tenant_id, requested_by, state, lease_owner, lease_until) VALUES ($1, 'test', 'running', 'elsewhere', now() + interval '1 hour') RETURNING id`, [tenant.id]);
    expect((await t.http().get(`/admin/exports/${row.id}/archive`).set(admin()).expect(409)).body.error).toBe('export_not_ready');
  });
});
