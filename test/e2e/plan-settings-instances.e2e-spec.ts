import type { NestExpressApplication } from '@nestjs/platform-express';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import request from 'supertest';
import { TenantRegistryInvalidation } from '#strata/cache';
import { createApp } from '../../apps/api/src/app.factory';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { as } from '../support/cross-tenant';
import { waitFor } from '../support/tenancy-fixture';

jest.setTimeout(120_000);

/**
 * Two API instances on one control plane, with a registry TTL far beyond the test's 1 s budget:
 * only the registry's invalidation over Redis can make them see a plan, settings or flag change.
 */
describe('plan and settings changes reach every instance at once', () => {
  let t: TestApp;
  let two: NestExpressApplication;
  let tenant: OnboardedTenant;

  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const onOne = () => t.http();
  const onTwo = () => request(two.getHttpServer());
  /** Within 1 s of the change, measured from the change's answer. */
  const seenWithinASecond = async <T>(probe: () => Promise<T>, done: (v: T) => boolean): Promise<T> => {
    const started = Date.now();
    const seen = await waitFor(probe, done, 3000, 20);
    expect(done(seen)).toBe(true);
    expect(Date.now() - started).toBeLessThan(1000);
    return seen;
  };

  beforeAll(async () => {
    t = await startTestApp({ registryCacheTtlMs: 60_000 });
    two = await createApp(t.config, { logger: ['error', 'fatal'] });
    await two.init();
    await waitFor(() => t.app.get(TenantRegistryInvalidation).listening && two.get(TenantRegistryInvalidation).listening, Boolean, 5000);
    tenant = await t.onboard('plan-2x', 'pool');
  });
  afterAll(async () => {
    await two?.close();
    await t?.close();
  });

  it('a plan change on instance 1 lifts the limit on instance 2 within a second, and lowering it refuses again', async () => {
    await onOne().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'free' }).expect(200);
    for (const name of ['a', 'b', 'c']) await onTwo().post('/projects').set(as(tenant)).send({ name }).expect(201);
    // Instance 2 now holds the tenant on `free` (3 projects) for 60 s, unless told otherwise.
    expect((await onTwo().post('/projects').set(as(tenant)).send({ name: 'd' })).status).toBe(402);

    const changed = await onOne().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'standard' }).expect(200);
    expect(changed.body).toMatchObject({ tenantId: tenant.id, plan: { id: 'standard', quotas: { projects: 10000 } } });
    const lifted = await seenWithinASecond(
      () => onTwo().get('/usage').set(as(tenant)),
      (r) => r.body.plan === 'standard',
    );
    expect(lifted.body.projects).toEqual({ used: 3, limit: 10000 });
    await onTwo().post('/projects').set(as(tenant)).send({ name: 'd' }).expect(201);

    await onOne().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'free' }).expect(200);
    const refused = await seenWithinASecond(
      () => onTwo().post('/projects').set(as(tenant)).send({ name: 'e' }),
      (r) => r.status === 402,
    );
    expect(refused.body).toMatchObject({ statusCode: 402, error: 'plan_limit_reached', message: expect.stringContaining('projects') });
    // Above the new limit: nothing is taken away, nothing more is allowed.
    expect((await onOne().get('/usage').set(as(tenant)).expect(200)).body.projects).toEqual({ used: 4, limit: 3 });
    // Each change is in the audit log with the operator and the plans either side.
    const audited = await onOne().get('/admin/audit').query({ tenantId: tenant.id, action: 'tenant.plan_changed', limit: 10 }).set(admin()).expect(200);
    expect(audited.body.items.map((e: { details: { from: string; to: string } }) => `${e.details.from}->${e.details.to}`)).toEqual(['standard->free', 'free->standard', 'standard->free']);
    expect(audited.body.items[0].actor).toEqual({ type: 'operator', id: 'test-operator' });
  });

  it("the owner's settings are cached on both instances and a PATCH on one is read on the other within a second", async () => {
    const before = await onTwo().get('/settings').set(as(tenant)).expect(200);
    // Onboarding seeded the defaults (timezone UTC, locale en).
    expect(before.body).toEqual({ plan: 'free', settings: { timezone: 'UTC', locale: 'en' }, features: { webhooks: true, fileSharing: false, auditLog: false } });

    const patched = await onOne()
      .patch('/settings')
      .set(as(tenant))
      .send({ timezone: 'Europe/Paris', notifications: { weeklyDigest: true } })
      .expect(200);
    expect(patched.body.settings).toEqual({ timezone: 'Europe/Paris', locale: 'en', notifications: { weeklyDigest: true } });
    await seenWithinASecond(
      () => onTwo().get('/settings').set(as(tenant)),
      (r) => r.body.settings?.timezone === 'Europe/Paris',
    );

    // A merge patch: objects merge, null removes.
    await onTwo().patch('/settings').set(as(tenant)).send({ timezone: null, notifications: { invoiceOverdue: false } }).expect(200);
    const merged = await seenWithinASecond(
      () => onOne().get('/settings').set(as(tenant)),
      (r) => r.body.settings?.timezone === undefined,
    );
    expect(merged.body.settings).toEqual({ locale: 'en', notifications: { weeklyDigest: true, invoiceOverdue: false } });
  });

  it("an operator's flag override and settings change are read on both instances within a second", async () => {
    const res = await onOne()
      .patch(`/admin/tenants/${tenant.id}/settings`)
      .set(admin())
      .send({ features: { fileSharing: true, betaReports: true }, settings: { currency: 'EUR' } })
      .expect(200);
    expect(res.body.features).toEqual({ webhooks: true, fileSharing: true, auditLog: false, betaReports: true });
    for (const instance of [onOne, onTwo]) {
      const seen = await seenWithinASecond(
        () => instance().get('/settings').set(as(tenant)),
        (r) => r.body.features?.fileSharing === true,
      );
      expect(seen.body).toEqual({
        plan: 'free',
        settings: { locale: 'en', currency: 'EUR', notifications: { weeklyDigest: true, invoiceOverdue: false } },
        features: { webhooks: true, fileSharing: true, auditLog: false, betaReports: true },
      });
    }
    // null drops the override: the plan's flag again.
    await onTwo().patch(`/admin/tenants/${tenant.id}/settings`).set(admin()).send({ features: { fileSharing: null } }).expect(200);
    const dropped = await seenWithinASecond(
      () => onOne().get('/settings').set(as(tenant)),
      (r) => r.body.features?.fileSharing === false,
    );
    expect(dropped.body.features).toEqual({ webhooks: true, fileSharing: false, auditLog: false, betaReports: true });
    expect((await onOne().get(`/admin/tenants/${tenant.id}/settings`).set(admin()).expect(200)).body).toEqual(dropped.body);
  });

  it.each([
    ['an unknown key', { colour: 'blue' }, 'colour', 'unknown_field'],
    ['a value of the wrong type', { weekStartsOn: 'friday' }, 'weekStartsOn', 'enum'],
    ['a nested unknown key', { notifications: { sms: true } }, 'notifications.sms', 'unknown_field'],
    ['a malformed currency', { currency: 'euro' }, 'currency', 'pattern'],
  ])('PATCH /settings with %s → 400 validation_failed naming the field, nothing stored', async (_, body, field, code) => {
    const before = (await onOne().get('/settings').set(as(tenant)).expect(200)).body;
    const res = await onOne().patch('/settings').set(as(tenant)).send(body).expect(400);
    expect(res.body).toEqual({
      statusCode: 400,
      error: 'validation_failed',
      message: expect.stringContaining(field),
      details: [expect.objectContaining({ field, code })],
    });
    expect((await onOne().get('/settings').set(as(tenant)).expect(200)).body).toEqual(before);
  });

  it('PATCH /admin/tenants/:id/settings refuses unknown fields and flags that are not booleans (400 validation_failed)', async () => {
    const unknown = await onOne().patch(`/admin/tenants/${tenant.id}/settings`).set(admin()).send({ plan: 'enterprise' }).expect(400);
    expect(unknown.body).toMatchObject({ error: 'validation_failed', details: [{ field: 'plan', code: 'unknown_field' }] });
    const notBoolean = await onOne().patch(`/admin/tenants/${tenant.id}/settings`).set(admin()).send({ features: { webhooks: 'yes' } }).expect(400);
    expect(notBoolean.body).toMatchObject({ error: 'validation_failed', details: [{ field: 'features.webhooks' }] });
  });

  it('a member may read the settings and usage but only an owner may change the settings (403)', async () => {
    const email = `member@${tenant.slug}.test`;
    const password = 'correct-horse-battery';
    await onOne().post(`/admin/tenants/${tenant.id}/users`).set(admin()).send({ email, password, role: 'member' }).expect(201);
    const login = await onOne().post('/auth/login').set('X-Tenant', tenant.slug).send({ email, password }).expect(200);
    const member = { ...tenant, token: login.body.access_token as string };
    await onOne().get('/settings').set(as(member)).expect(200);
    await onOne().get('/usage').set(as(member)).expect(200);
    expect((await onOne().patch('/settings').set(as(member)).send({ locale: 'fr-FR' })).status).toBe(403);
  });

  it("an operator's edit of a plan's quotas on instance 1 is in force on instance 2 within a second, and audited", async () => {
    const plan = `edit-${randomBytes(4).toString('hex')}`;
    const owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
    try {
      await owner.query(`INSERT INTO control.plans (id, name, default_tier, max_projects) VALUES ($1, $1, 'pool', 1)`, [plan]);
    } finally {
      await owner.end();
    }
    const edited = await t.onboard('plan-edit', 'pool');
    await onOne().patch(`/admin/tenants/${edited.id}/plan`).set(admin()).send({ plan }).expect(200);
    await onTwo().post('/projects').set(as(edited)).send({ name: 'one' }).expect(201);
    // Instance 2 now holds the plan (1 project) in its catalogue for 60 s, unless told otherwise.
    expect((await onTwo().post('/projects').set(as(edited)).send({ name: 'two' })).status).toBe(402);

    const patched = await onOne().patch(`/admin/plans/${plan}`).set(admin()).send({ quotas: { projects: 3, webhookEndpoints: null } }).expect(200);
    expect(patched.body).toMatchObject({ id: plan, quotas: { projects: 3, webhookEndpoints: null } });
    await seenWithinASecond(
      () => onTwo().post('/projects').set(as(edited)).send({ name: 'two' }),
      (r) => r.status === 201,
    );
    expect((await onTwo().get('/usage').set(as(edited)).expect(200)).body.projects).toEqual({ used: 2, limit: 3 });
    const listed = await onTwo().get('/admin/plans').set(admin()).expect(200);
    expect(listed.body.find((p: { id: string }) => p.id === plan).quotas.projects).toBe(3);

    const audited = await onOne().get('/admin/audit').query({ action: 'plan.updated', limit: 10 }).set(admin()).expect(200);
    expect(audited.body.items).toEqual([
      expect.objectContaining({ actor: { type: 'operator', id: 'test-operator' }, details: { plan, changed: { projects: 3, webhookEndpoints: null } } }),
    ]);
  });

  it('PATCH /admin/plans/:id refuses bad quotas and unknown fields (400 validation_failed) and an unknown plan (404 plan_not_found)', async () => {
    for (const body of [{ quotas: { projects: -1 } }, { quotas: { storageBytes: 'lots' } }, { quotas: { seats: 5 } }, { rateLimitPerSecond: 0 }, { defaultTier: 'silo' }, { quotas: [1] }]) {
      const res = await onOne().patch('/admin/plans/free').set(admin()).send(body);
      expect([res.status, res.body.error]).toEqual([400, 'validation_failed']);
    }
    for (const id of ['no-such-plan', 'NOT_A_PLAN']) {
      const res = await onOne().patch(`/admin/plans/${id}`).set(admin()).send({ quotas: { projects: 1 } });
      expect([res.status, res.body.error]).toEqual([404, 'plan_not_found']);
    }
    // Nothing of the refused edits was stored.
    const free = (await onOne().get('/admin/plans').set(admin()).expect(200)).body.find((p: { id: string }) => p.id === 'free');
    expect(free.quotas).toEqual({ projects: 3, invoicesPerMonth: 50, storageBytes: 104857600, webhookEndpoints: 1 });
    expect(free.rateLimitPerSecond).toBe(5);
  });
});
