import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(60_000);

const as = (who: OnboardedTenant) => ({ 'X-Tenant': who.slug, authorization: `Bearer ${who.token}` });

describe('maintenance mode: POST /admin/tenants/:id/maintenance', () => {
  let t: TestApp;
  let acme: OnboardedTenant;
  let other: OnboardedTenant;
  const admin = () => ({ authorization: `Bearer ${t.adminToken}` });
  const maintenance = (id: string, body: object) => t.http().post(`/admin/tenants/${id}/maintenance`).set(admin()).send(body);

  beforeAll(async () => {
    // A long registry TTL: the switch must reach the guard by invalidation, not by expiry.
    t = await startTestApp({ registryCacheTtlMs: 60_000 });
    acme = await t.onboard('maint-acme', 'bridge');
    other = await t.onboard('maint-other', 'pool');
  });
  afterAll(() => t.close());

  it("answers the tenant's requests 503 tenant_maintenance with Retry-After while admin operations go on, then serves it again", async () => {
    await t.http().get('/projects').set(as(acme)).expect(200);
    const on = await maintenance(acme.id, { on: true, reason: 'reindexing invoices' }).expect(200);
    expect(on.body).toMatchObject({ id: acme.id, status: 'active', maintenanceReason: 'reindexing invoices', maintenanceSince: expect.any(String) });

    const refused = await t.http().get('/projects').set(as(acme)).expect(503);
    expect(refused.body).toEqual({ statusCode: 503, error: 'tenant_maintenance', message: expect.any(String) });
    expect(refused.headers['retry-after']).toBe('60');
    // Logging in is refused the same way; the reason stays with the operators.
    const login = await t.http().post('/auth/login').set('X-Tenant', acme.slug).send({ email: acme.email, password: acme.password }).expect(503);
    expect(login.body.error).toBe('tenant_maintenance');
    expect(JSON.stringify(login.body)).not.toContain('reindexing');

    // Operators keep working on it; other tenants are untouched.
    await t.http().get(`/admin/tenants/${acme.id}`).set(admin()).expect(200);
    await t.http().post(`/admin/tenants/${acme.id}/users`).set(admin()).send({ email: `ops@${acme.slug}.test`, password: 'correct-horse-battery', role: 'member' }).expect(201);
    await t.http().get('/projects').set(as(other)).expect(200);

    const off = await maintenance(acme.id, { on: false }).expect(200);
    expect(off.body).toMatchObject({ maintenanceSince: null, maintenanceReason: null });
    await t.http().get('/projects').set(as(acme)).expect(200);
  });

  it('keeps the first start time when switched on twice', async () => {
    const first = await maintenance(other.id, { on: true }).expect(200);
    const second = await maintenance(other.id, { on: true, reason: 'still at it' }).expect(200);
    expect(second.body.maintenanceSince).toBe(first.body.maintenanceSince);
    await maintenance(other.id, { on: false }).expect(200);
  });

  it('refuses a body without `on` (400) and an unknown tenant (404)', async () => {
    expect((await maintenance(acme.id, { reason: 'x' }).expect(400)).body.error).toBe('validation_failed');
    expect((await maintenance('6f1c7a52-0c77-4bb6-9d2a-b7c2a3e9a002', { on: true }).expect(404)).body.error).toBe('tenant_not_found');
  });
});
