import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { TenantCache } from '#strata/cache';
import type { Tier } from '#strata/control-plane';
import { placementOf, TenantContext } from '#strata/tenancy/platform';
import { TenantRegistry } from '#strata/control-plane';
import type { DeletionReportView } from '#strata/offboarding';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { addMember, login, PASSWORD } from '../support/sessions';
import { moveAndWait } from '../support/move-harness';
import { waitFor } from '../support/tenancy-fixture';
import { uploadFile } from '../support/files-fixture';
import { scanTenantStores, type FileStore } from '../support/tenant-store-scanner';

// Onboarding a silo is a CREATE DATABASE, moves copy homes: seconds each on a loaded 2-core machine.
jest.setTimeout(120_000);

const as = (who: Pick<OnboardedTenant, 'slug' | 'token'>) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

/** What a tenant leaves in every store before it is deleted, and who must survive its deletion. */
interface Populated {
  tenant: OnboardedTenant;
  soleUserIds: string[];
  /** A member who also belongs to `elsewhere`: their account must survive. */
  shared: { email: string; userId: string };
}

describe('offboarding: DELETE /admin/tenants/:id removes the tenant from every store, with a report', () => {
  let t: TestApp;
  let root: string;
  let files: FileStore;
  let elsewhere: OnboardedTenant;

  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const report = (id: string) => t.http().get(`/admin/tenants/${id}/deletion-report`).set(admin());
  const waitDeleted = async (id: string): Promise<DeletionReportView> => {
    const last = await waitFor(async () => (await report(id)).body as DeletionReportView, (r) => r.status === 'deleted', 60_000, 100);
    if (last.status !== 'deleted') throw new Error(`tenant ${id} still deleting after 60 s: ${JSON.stringify(last)}`);
    return last;
  };

  /** Rows in tenant tables (projects with an idempotency key, a webhook endpoint, an invoice and its delivery), a queued delivery job, a file, a cache key, an invitation, a second member and a shared one. */
  async function populate(tenant: OnboardedTenant): Promise<Populated> {
    await t.http().post('/webhooks').set(as(tenant)).send({ url: 'https://hooks.example.com/offboarding' }).expect(201);
    await t.http().post('/projects').set(as(tenant)).set('Idempotency-Key', `offboarding-${tenant.id}`).send({ name: 'doomed' }).expect(201);
    await t.http().post('/invoices').set(as(tenant)).send({ number: 'OFF-1', amount: 100, currency: 'EUR' }).expect(201);
    await uploadFile(t, tenant, 'bytes that must go').expect(201);
    await t.http().post('/members/invitations').set(as(tenant)).send({ email: `invitee@${tenant.slug}.test`, role: 'member' }).expect(201);
    const member = await addMember(t, tenant, 'member');
    await t.http().post(`/admin/tenants/${tenant.id}/impersonate`).set(admin()).send({ userId: member.userId, reason: 'support ticket before offboarding' }).expect(201);
    const shared = await addMember(t, elsewhere, 'member');
    await t.http().post(`/admin/tenants/${tenant.id}/users`).set(admin()).send({ email: shared.email, role: 'member' }).expect(201);
    await login(t, tenant.slug, shared.email, PASSWORD);
    const record = (await t.app.get(TenantRegistry).findById(tenant.id))!;
    await t.app.get(TenantContext).run({ tenant: placementOf(record) }, () => t.app.get(TenantCache).set('dashboard', { cached: true }, 600));
    return { tenant, soleUserIds: [tenant.userId, member.userId], shared: { email: shared.email, userId: shared.userId } };
  }

  async function deleteAndProve(p: Populated): Promise<DeletionReportView> {
    const subject = { id: p.tenant.id, slug: p.tenant.slug, soleUserIds: p.soleUserIds };
    // The scanner finds what the tenant holds before: it can fail.
    expect((await scanTenantStores(t, subject, files)).length).toBeGreaterThan(5);
    const started = await t.http().delete(`/admin/tenants/${p.tenant.id}`).set(admin()).expect(202);
    expect(started.body).toMatchObject({ tenantId: p.tenant.id, slug: p.tenant.slug, requestedBy: 'test-operator' });
    const done = await waitDeleted(p.tenant.id);
    expect(await scanTenantStores(t, subject, files)).toEqual([]);
    // The member who also belongs elsewhere keeps their account and their other tenant.
    await login(t, elsewhere.slug, p.shared.email, PASSWORD);
    return done;
  }

  const removed = (r: DeletionReportView, step: string) => r.stores.find((s) => s.step === step)?.removed ?? {};

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'strata-offboarding-'));
    process.env.FILES_DRIVER = 'local';
    process.env.FILES_ROOT = root;
    files = { local: root };
    // Old homes of moves are kept for an hour: offboarding must drop them, not the move executor.
    t = await startTestApp({ moveSourceRetentionMs: 3600_000 });
    elsewhere = await t.onboard('off-else', 'pool');
  });
  afterAll(async () => {
    await t?.close();
    rmSync(root, { recursive: true, force: true });
  });

  it.each<Tier>(['pool', 'bridge', 'silo'])('leaves nothing of a %s tenant in any store and reports each store', async (tier) => {
    const p = await populate(await t.onboard(`off-${tier}`, tier));
    const r = await deleteAndProve(p);
    expect(r).toMatchObject({ status: 'deleted', tier, step: 'done', error: null });
    expect(r.stores.map((s) => s.step)).toEqual(['jobs', 'files', 'cache', 'retained_homes', 'home', 'control_plane', 'tombstone']);
    // The invoice's webhook delivery was enqueued (the test app runs no worker): it is removed with the tenant.
    const jobs = Object.entries(removed(r, 'jobs')).filter(([k]) => k.startsWith('jobs:'));
    expect(jobs.reduce((n, [, v]) => n + v, 0)).toBeGreaterThanOrEqual(1);
    // export_archives: the archives of its exports (libs/platform/exports), none made here.
    expect(removed(r, 'files')).toEqual({ objects: 1, export_archives: 0 });
    expect(removed(r, 'cache').keys).toBeGreaterThanOrEqual(1);
    expect(removed(r, 'home')).toMatchObject({ projects: 1, invoices: 1, webhook_endpoints: 1, files: 1 });
    expect(removed(r, 'home').webhook_deliveries).toBeGreaterThanOrEqual(1);
    expect(removed(r, 'home').idempotency_keys).toBe(1);
    expect(removed(r, 'control_plane')).toMatchObject({ memberships: 3, users: 2, invitations: 1, impersonations: 1 });
    expect(removed(r, 'control_plane').refresh_families).toBeGreaterThanOrEqual(3);
    for (const s of r.stores) expect(Date.parse(s.at)).toBeGreaterThanOrEqual(Date.parse(r.requestedAt as unknown as string));
  });

  it('leaves nothing of a tenant that moved pool → silo → bridge before, old homes included', async () => {
    const tenant = await t.onboard('off-moved', 'pool');
    expect((await moveAndWait(t, tenant.id, 'silo')).phase).toBe('done');
    expect((await moveAndWait(t, tenant.id, 'bridge')).phase).toBe('done');
    const p = await populate(tenant);
    const r = await deleteAndProve(p);
    expect(removed(r, 'retained_homes').homes).toBe(2);
    expect(removed(r, 'retained_homes').placement_fence_rows).toBeGreaterThanOrEqual(1);
    expect(removed(r, 'control_plane').tenant_moves).toBe(2);
  });

  it('stops serving the tenant at once, and answers a second DELETE with the same deletion', async () => {
    const tenant = await t.onboard('off-twice', 'pool');
    const first = await t.http().delete(`/admin/tenants/${tenant.id}`).set(admin()).expect(202);
    await t.http().get('/projects').set(as(tenant)).expect(404);
    // No member joins a tenant on its way out (404 once it is deleted).
    const joining = await t.http().post(`/admin/tenants/${tenant.id}/users`).set(admin()).send({ email: `late@${tenant.slug}.test`, password: PASSWORD, role: 'member' });
    expect([409, 404]).toContain(joining.status);
    const second = await t.http().delete(`/admin/tenants/${tenant.id}`).set(admin()).expect(202);
    expect(second.body.requestedAt).toBe(first.body.requestedAt);
    const done = await waitDeleted(tenant.id);
    const third = await t.http().delete(`/admin/tenants/${tenant.id}`).set(admin()).expect(202);
    expect(third.body).toEqual(done);
    // The audit log keeps the request (once, however often it was asked) and the report.
    const audited = await t.http().get('/admin/audit').query({ tenantId: tenant.id, action: 'tenant.*', limit: 100 }).set(admin()).expect(200);
    const deletions = audited.body.items.filter((e: { action: string }) => e.action.startsWith('tenant.deleti') || e.action === 'tenant.deleted');
    expect(deletions.map((e: { action: string }) => e.action).sort()).toEqual(['tenant.deleted', 'tenant.deletion_requested']);
    const deleted = deletions.find((e: { action: string }) => e.action === 'tenant.deleted');
    expect(deleted.details.report.map((s: { step: string }) => s.step)).toEqual(done.stores.map((s: { step: string }) => s.step));
    await t.http().get(`/admin/tenants/${tenant.id}`).set(admin()).expect(404);
    // The slug is free again.
    await t.http().post('/admin/tenants').set(admin()).send({ slug: tenant.slug, name: 'reborn', tier: 'pool' }).expect(201);
  });

  it('answers 404 for an unknown tenant and deletion_not_found for one never deleted', async () => {
    const unknown = '6f1c7a52-0c77-4bb6-9d2a-b7c2a3e9a001';
    expect((await t.http().delete(`/admin/tenants/${unknown}`).set(admin()).expect(404)).body.error).toBe('tenant_not_found');
    expect((await report(unknown).expect(404)).body.error).toBe('tenant_not_found');
    expect((await report(elsewhere.id).expect(404)).body.error).toBe('deletion_not_found');
  });

  it('counts a deletion that finished no step for 10 minutes in strata_tenant_deletions_stuck', async () => {
    const gauge = async () => Number(/^strata_tenant_deletions_stuck (\d+)/m.exec((await t.http().get('/metrics').expect(200)).text)?.[1]);
    expect(await gauge()).toBe(0);
    const tenant = await t.onboard('off-stuck', 'pool');
    // A deletion held by an executor that stopped making progress 11 minutes ago (its lease still runs).
    const db = new Client({ connectionString: t.db.ownerUrl });
    await db.connect();
    try {
      await db.query(
        `WITH t AS (UPDATE control.tenants SET status = 'deleting' WHERE id = $1 RETURNING id, slug, tier, pool_id, schema_name, database_name)
         INSERT INTO control.tenant_deletions (tenant_id, slug, tier, pool_id, schema_name, database_name, step, requested_by, requested_at, progress_at, lease_owner, lease_until)
         SELECT id, slug, tier, pool_id, schema_name, database_name, 'jobs', 'test-operator', now() - interval '12 minutes', now() - interval '11 minutes', 'a-dead-process', now() + interval '1 hour' FROM t`,
        [tenant.id],
      );
      expect(await gauge()).toBe(1);
      // Its lease runs out: any executor resumes it.
      await db.query(`UPDATE control.tenant_deletions SET lease_until = now() - interval '1 second' WHERE tenant_id = $1`, [tenant.id]);
    } finally {
      await db.end();
    }
    await waitDeleted(tenant.id);
    expect(await gauge()).toBe(0);
  });
});
