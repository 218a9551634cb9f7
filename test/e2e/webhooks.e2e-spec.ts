import { randomUUID } from 'node:crypto';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { as, probeForeignIds } from '../support/cross-tenant';
import { WEBHOOK_FOREIGN_ROUTES } from '../support/cross-tenant-routes';
import { WEBHOOK_EVENT_TYPES } from '#strata/webhooks';

const ENDPOINT_KEYS = ['createdAt', 'enabled', 'events', 'id', 'url'];

describe('webhook endpoints over HTTP', () => {
  let t: TestApp;
  let owner: OnboardedTenant;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await t.onboard('hooks', 'pool');
  }, 60_000);
  afterAll(() => t.close());

  it('registers an endpoint and shows its secret once, in the 201 answer only', async () => {
    const created = await t.http().post('/webhooks').set(as(owner)).send({ url: 'https://hooks.example.com/strata?token=abc' }).expect(201);
    expect(created.body).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      url: 'https://hooks.example.com/strata?token=abc',
      // Every event type by default.
      events: [...WEBHOOK_EVENT_TYPES],
      enabled: true,
      // Standard Webhooks: whsec_ + 32 random bytes in standard base64.
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9+/]{43}=$/),
      createdAt: expect.any(String),
    });
    const got = await t.http().get(`/webhooks/${created.body.id}`).set(as(owner)).expect(200);
    expect(Object.keys(got.body).sort()).toEqual(ENDPOINT_KEYS);
    expect(got.body).toEqual({ ...created.body, secret: undefined });
    const list = await t.http().get('/webhooks?limit=100').set(as(owner)).expect(200);
    for (const item of list.body.items) expect(Object.keys(item).sort()).toEqual(ENDPOINT_KEYS);
    expect(JSON.stringify(list.body)).not.toContain(created.body.secret);
    expect(JSON.stringify(got.body)).not.toContain(created.body.secret);
  });

  it('gives every endpoint its own secret', async () => {
    const a = await t.http().post('/webhooks').set(as(owner)).send({ url: 'https://a.example.com/' }).expect(201);
    const b = await t.http().post('/webhooks').set(as(owner)).send({ url: 'https://b.example.com/' }).expect(201);
    expect(a.body.secret).not.toBe(b.body.secret);
  });

  it('lists newest first, in keyset pages', async () => {
    const ids: string[] = [];
    for (const n of [1, 2, 3]) ids.push((await t.http().post('/webhooks').set(as(owner)).send({ url: `https://page${n}.example.com/` }).expect(201)).body.id);
    const first = await t.http().get('/webhooks?limit=2').set(as(owner)).expect(200);
    expect(first.body.items.map((e: { id: string }) => e.id)).toEqual([ids[2], ids[1]]);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await t.http().get(`/webhooks?limit=2&cursor=${first.body.nextCursor}`).set(as(owner)).expect(200);
    expect(second.body.items[0].id).toBe(ids[0]);
    await t.http().get('/webhooks?cursor=%%%garbage').set(as(owner)).expect(400);
  });

  it('lists an endpoint\'s deliveries (none yet) and deletes it: 204, then 404 everywhere but its delivery log', async () => {
    const { body } = await t.http().post('/webhooks').set(as(owner)).send({ url: 'https://delete-me.example.com/', events: ['invoice.created'] }).expect(201);
    const deliveries = await t.http().get(`/webhooks/${body.id}/deliveries`).set(as(owner)).expect(200);
    expect(deliveries.body).toEqual({ items: [], nextCursor: null });
    await t.http().delete(`/webhooks/${body.id}`).set(as(owner)).expect(204);
    // The log of a deleted endpoint stays readable for WEBHOOK_DELIVERY_RETENTION_MS.
    expect((await t.http().get(`/webhooks/${body.id}/deliveries`).set(as(owner)).expect(200)).body).toEqual({ items: [], nextCursor: null });
    for (const [method, path] of [['get', `/webhooks/${body.id}`], ['delete', `/webhooks/${body.id}`], ['patch', `/webhooks/${body.id}`], ['post', `/webhooks/${body.id}/ping`]] as const) {
      const res = await t.http()[method](path).set(as(owner));
      expect({ path, status: res.status, body: res.body }).toEqual({
        path,
        status: 404,
        body: { statusCode: 404, error: 'webhook_not_found', message: 'webhook endpoint not found' },
      });
    }
    const list = await t.http().get('/webhooks?limit=100').set(as(owner)).expect(200);
    expect(list.body.items.map((e: { id: string }) => e.id)).not.toContain(body.id);
  });

  it.each([
    ['text that is no URL', 'not a url'],
    ['a relative path', '/relative/path'],
    ['another scheme', 'ftp://files.example.com/'],
    ['credentials in the URL', 'https://user:password@example.com/'],
    ['more than 2048 characters', `https://example.com/${'x'.repeat(2048)}`],
    ['a loopback IP', 'http://127.0.0.1:8080/'],
    ['localhost', 'http://localhost/'],
    ['the cloud metadata address', 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 loopback', 'http://[::1]/'],
    ['a private network', 'http://10.0.0.1/'],
  ])('refuses a URL with %s: 400 invalid_webhook_url', async (_why, url) => {
    const res = await t.http().post('/webhooks').set(as(owner)).send({ url }).expect(400);
    expect(res.body).toEqual({ statusCode: 400, error: 'invalid_webhook_url', message: expect.any(String) });
  });

  it.each([
    [{}],
    [{ url: 42 }],
    [{ url: 'https://example.com/', events: ['invoice.deleted'] }],
    [{ url: 'https://example.com/', events: [] }],
    [{ url: 'https://example.com/', secret: 'whsec_mine' }],
  ])('refuses the body %j with 400 validation_failed', async (body) => {
    const res = await t.http().post('/webhooks').set(as(owner)).send(body).expect(400);
    expect(res.body.error).toBe('validation_failed');
  });

  it('answers 400 invalid_id to a malformed id and 404 webhook_not_found to an unknown one', async () => {
    for (const path of ['/webhooks/not-a-uuid', '/webhooks/not-a-uuid/deliveries']) {
      expect((await t.http().get(path).set(as(owner)).expect(400)).body.error).toBe('invalid_id');
    }
    expect((await t.http().delete('/webhooks/123').set(as(owner)).expect(400)).body.error).toBe('invalid_id');
    expect((await t.http().get(`/webhooks/${randomUUID()}`).set(as(owner)).expect(404)).body.error).toBe('webhook_not_found');
  });

  it('is a tenant route: no token, no webhooks', async () => {
    const res = await t.http().get('/webhooks').set('X-Tenant', owner.slug);
    expect(res.status).toBe(401);
  });
});

describe('webhook endpoints: cross-tenant isolation on every tier pair', () => {
  let t: TestApp;
  const owned: Array<{ tenant: OnboardedTenant; endpointId: string }> = [];

  beforeAll(async () => {
    t = await startTestApp();
    // Two tenants per tier, so same-tier pairs are covered as well as cross-tier ones.
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      for (const n of [1, 2]) {
        const tenant = await t.onboard(`wh${tier}${n}`, tier);
        const res = await t.http().post('/webhooks').set(as(tenant)).send({ url: `https://${tenant.slug}.example.com/hook` }).expect(201);
        owned.push({ tenant, endpointId: res.body.id });
      }
    }
  }, 90_000);
  afterAll(() => t.close());

  it("answers 404 webhook_not_found to every route given another tenant's endpoint id, on all 9 tier pairs", async () => {
    const { pairs, checked, failures } = await probeForeignIds(
      t,
      owned,
      WEBHOOK_FOREIGN_ROUTES,
      'webhook_not_found',
    );
    for (const caller of owned) {
      const list = await t.http().get('/webhooks?limit=100').set(as(caller.tenant)).expect(200);
      for (const victim of owned) {
        if (victim !== caller && list.body.items.some((e: { id: string }) => e.id === victim.endpointId)) {
          failures.push(`${caller.tenant.tier} lists ${victim.tenant.tier}'s endpoint`);
        }
      }
    }
    expect(pairs.size).toBe(9);
    expect(checked).toBe(30 * WEBHOOK_FOREIGN_ROUTES.length);
    expect(failures).toEqual([]);
  }, 120_000);

  it('left every victim endpoint in place and enabled, with no ping in its log, and each tenant lists exactly its own', async () => {
    for (const o of owned) {
      const own = await t.http().get(`/webhooks/${o.endpointId}`).set(as(o.tenant)).expect(200);
      expect(own.body.enabled).toBe(true);
      expect((await t.http().get(`/webhooks/${o.endpointId}/deliveries`).set(as(o.tenant)).expect(200)).body.items).toEqual([]);
      const list = await t.http().get('/webhooks').set(as(o.tenant)).expect(200);
      expect(list.body.items.map((e: { id: string }) => e.id)).toEqual([o.endpointId]);
    }
  });
});
