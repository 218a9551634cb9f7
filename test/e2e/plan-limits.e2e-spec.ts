import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { Response } from 'supertest';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { as } from '../support/cross-tenant';

jest.setTimeout(120_000);

const TIERS = ['pool', 'bridge', 'silo'] as const;
const PARALLEL = 10;

/** What every refused create answers: the one error shape, naming the limit. */
const limitReached = (metric: string) => ({
  statusCode: 402,
  error: 'plan_limit_reached',
  message: expect.stringContaining(metric),
  details: [{ field: metric, code: 'plan_limit_reached', message: expect.stringContaining(metric) }],
});

const statuses = (answers: Response[]) => answers.map((r) => r.status).sort();
const exactlyOneCreated = [201, ...Array<number>(PARALLEL - 1).fill(402)];

describe('plan limits: quotas hold exactly at the boundary under concurrency, on every tier', () => {
  let t: TestApp;
  let owner: Client;

  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const setPlan = (tenant: OnboardedTenant, plan: string) =>
    t.http().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan }).expect(200);
  const usage = async (tenant: OnboardedTenant) => (await t.http().get('/usage').set(as(tenant)).expect(200)).body;
  /** A plan made for one test: plans are data, and a tiny quota keeps the test's uploads small. */
  const planWith = async (quotas: { projects?: number; storageBytes?: number; webhookEndpoints?: number }): Promise<string> => {
    const id = `test-${randomBytes(4).toString('hex')}`;
    await owner.query(
      `INSERT INTO control.plans (id, name, default_tier, max_projects, max_storage_bytes, max_webhook_endpoints) VALUES ($1, $1, 'pool', $2, $3, $4)`,
      [id, quotas.projects ?? null, quotas.storageBytes ?? null, quotas.webhookEndpoints ?? null],
    );
    return id;
  };

  beforeAll(async () => {
    t = await startTestApp();
    owner = new Client({ connectionString: t.db.ownerUrl });
    await owner.connect();
  });
  afterAll(async () => {
    await owner?.end();
    await t?.close();
  });

  it('GET /admin/plans lists the seeded plans with tier, rate limit, quotas, flags and capacity', async () => {
    const res = await t.http().get('/admin/plans').set(admin()).expect(200);
    const byId = Object.fromEntries((res.body as Array<{ id: string }>).map((p) => [p.id, p]));
    expect(byId.free).toEqual({
      id: 'free',
      name: 'Free',
      defaultTier: 'pool',
      rateLimitPerSecond: 5,
      quotas: { projects: 3, invoicesPerMonth: 50, storageBytes: 104857600, webhookEndpoints: 1 },
      features: { webhooks: true, fileSharing: false, auditLog: false },
      capacity: { maxConcurrentRequests: 4, statementTimeoutMs: 5000, lockTimeoutMs: null, idleInTransactionTimeoutMs: null, jobConcurrency: 2 },
    });
    expect(byId.enterprise).toMatchObject({ defaultTier: 'silo', quotas: { projects: null, invoicesPerMonth: null, storageBytes: null, webhookEndpoints: null } });
    expect(byId.standard).toBeDefined();
  });

  it.each(TIERS)('%s: 10 parallel project creates at limit − 1 → exactly one succeeds, the rest 402 naming the limit', async (tier) => {
    const tenant = await t.onboard(`lim-${tier}`, tier);
    await setPlan(tenant, 'free'); // 3 projects
    for (const name of ['one', 'two']) await t.http().post('/projects').set(as(tenant)).send({ name }).expect(201);

    const answers = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) => t.http().post('/projects').set(as(tenant)).send({ name: `race ${i}` })),
    );
    expect(statuses(answers)).toEqual(exactlyOneCreated);
    for (const refused of answers.filter((r) => r.status === 402)) expect(refused.body).toEqual(limitReached('projects'));

    const listed = await t.http().get('/projects?limit=100').set(as(tenant)).expect(200);
    expect(listed.body.items).toHaveLength(3);
    expect((await usage(tenant)).projects).toEqual({ used: 3, limit: 3 });

    // A delete gives its place back, in the same transaction.
    await t.http().delete(`/projects/${listed.body.items[0].id}`).set(as(tenant)).expect(204);
    expect((await usage(tenant)).projects).toEqual({ used: 2, limit: 3 });
    await t.http().post('/projects').set(as(tenant)).send({ name: 'after delete' }).expect(201);
  });

  it('webhook endpoints: 10 parallel registrations at limit − 1 → exactly one; deleting one frees its place', async () => {
    const tenant = await t.onboard('lim-hooks', 'pool');
    await setPlan(tenant, await planWith({ webhookEndpoints: 2 }));
    await t.http().post('/webhooks').set(as(tenant)).send({ url: 'https://hooks.example.com/first' }).expect(201);

    const answers = await Promise.all(
      Array.from({ length: PARALLEL }, (_, i) => t.http().post('/webhooks').set(as(tenant)).send({ url: `https://hooks.example.com/race-${i}` })),
    );
    expect(statuses(answers)).toEqual(exactlyOneCreated);
    for (const refused of answers.filter((r) => r.status === 402)) expect(refused.body).toEqual(limitReached('webhookEndpoints'));
    expect((await usage(tenant)).webhookEndpoints).toEqual({ used: 2, limit: 2 });

    const created = answers.find((r) => r.status === 201)!;
    await t.http().delete(`/webhooks/${created.body.id}`).set(as(tenant)).expect(204);
    expect((await usage(tenant)).webhookEndpoints).toEqual({ used: 1, limit: 2 });
    await t.http().post('/webhooks').set(as(tenant)).send({ url: 'https://hooks.example.com/again' }).expect(201);
  });

  it.each(['pool', 'silo'] as const)('%s: storage bytes are exact, and 10 parallel uploads that each fit alone → exactly one fits', async (tier) => {
    const tenant = await t.onboard(`lim-bytes-${tier}`, tier);
    await setPlan(tenant, await planWith({ storageBytes: 1000 }));
    const upload = (bytes: number, name: string) =>
      t.http().post('/files').set(as(tenant)).attach('file', Buffer.alloc(bytes, 7), { filename: name, contentType: 'application/octet-stream' });
    const first = await upload(900, 'base.bin').expect(201);

    const answers = await Promise.all(Array.from({ length: PARALLEL }, (_, i) => upload(100, `race-${i}.bin`)));
    expect(statuses(answers)).toEqual(exactlyOneCreated);
    for (const refused of answers.filter((r) => r.status === 402)) expect(refused.body).toEqual(limitReached('storageBytes'));
    expect((await usage(tenant)).storageBytes).toEqual({ used: 1000, limit: 1000 });
    // Refused uploads left no file behind.
    expect((await t.http().get('/files?limit=100').set(as(tenant)).expect(200)).body.items).toHaveLength(2);

    await t.http().delete(`/files/${first.body.id}`).set(as(tenant)).expect(204);
    expect((await usage(tenant)).storageBytes).toEqual({ used: 100, limit: 1000 });
    // An empty file fits even at the limit; one byte more than is left does not.
    await upload(900, 'refill.bin').expect(201);
    await upload(0, 'empty.bin').expect(201);
    expect((await upload(1, 'over.bin').expect(402)).body).toEqual(limitReached('storageBytes'));
  });

  it('GET /usage and GET /admin/tenants/:id/usage count projects, invoices this month, bytes and endpoints', async () => {
    const tenant = await t.onboard('usage-nums', 'bridge');
    await t.http().post('/projects').set(as(tenant)).send({ name: 'p' }).expect(201);
    for (const number of ['INV-1', 'INV-2']) {
      await t.http().post('/invoices').set(as(tenant)).send({ number, amount: 100, currency: 'EUR' }).expect(201);
    }
    // A create that fails after its reservation (duplicate number) takes the reservation back with it.
    await t.http().post('/invoices').set(as(tenant)).send({ number: 'INV-1', amount: 100, currency: 'EUR' }).expect(409);
    await t.http().post('/files').set(as(tenant)).attach('file', Buffer.alloc(1234, 1), { filename: 'a.bin', contentType: 'application/octet-stream' }).expect(201);
    await t.http().post('/webhooks').set(as(tenant)).send({ url: 'https://hooks.example.com/u' }).expect(201);

    const period = new Date().toISOString().slice(0, 7);
    const expected = {
      tenantId: tenant.id,
      plan: 'standard',
      period,
      projects: { used: 1, limit: 10000 },
      invoicesPerMonth: { used: 2, limit: 100000 },
      storageBytes: { used: 1234, limit: 10737418240 },
      webhookEndpoints: { used: 1, limit: 50 },
    };
    expect(await usage(tenant)).toEqual(expected);
    expect((await t.http().get(`/admin/tenants/${tenant.id}/usage`).set(admin()).expect(200)).body).toEqual(expected);
  });

  it('a plan that does not exist is refused: 400 invalid_plan on a plan change and on onboarding; unknown tenant 404', async () => {
    const tenant = await t.onboard('bad-plan', 'pool');
    const change = await t.http().patch(`/admin/tenants/${tenant.id}/plan`).set(admin()).send({ plan: 'platinum' }).expect(400);
    expect(change.body).toEqual({ statusCode: 400, error: 'invalid_plan', message: expect.stringContaining('platinum') });
    const onboard = await t.http().post('/admin/tenants').set(admin()).send({ slug: `bad-plan-${randomBytes(3).toString('hex')}`, name: 'x', tier: 'pool', plan: 'platinum' }).expect(400);
    expect(onboard.body.error).toBe('invalid_plan');
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await t.http().get(`/admin/tenants/${missing}/usage`).set(admin()).expect(404)).body.error).toBe('tenant_not_found');
  });
});
