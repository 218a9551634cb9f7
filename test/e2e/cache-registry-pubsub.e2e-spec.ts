import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { randomBytes } from 'node:crypto';
import { JwtService } from '#strata/auth';
import { RegistryInvalidationModule } from '#strata/cache';
import { createApp } from '../../apps/api/src/app.factory';
import { createTestDatabase, uniqueSlug, type TestDatabase } from '../support/test-database';
import { testConfig } from '../support/test-config';
import { waitFor } from '../support/tenancy-fixture';

jest.setTimeout(60_000);

// Own channel: Redis is shared with other runs. Harmless (only redundant) once AppModule imports the module too.
const CHANNEL = `test:registry-e2e:${randomBytes(4).toString('hex')}`;

describe('two API instances on one control plane: a suspension, maintenance or deletion is enforced everywhere within a second', () => {
  let db: TestDatabase;
  let one: NestExpressApplication;
  let two: NestExpressApplication;
  let adminToken: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    // A registry TTL far beyond the 1 s budget: only pub/sub can make the test pass.
    const config = testConfig(db, { registryCacheTtlMs: 60_000 });
    const extra = { imports: [RegistryInvalidationModule.forRoot({ channel: CHANNEL })] };
    one = await createApp(config, { logger: ['error', 'fatal'], extra });
    await one.init();
    two = await createApp(config, { logger: ['error', 'fatal'], extra });
    await two.init();
    adminToken = await one.get(JwtService).signPlatformToken('test-operator');
  });
  afterAll(async () => {
    await one?.close();
    await two?.close();
    await db?.drop();
  });

  const admin = (path: string) => request(one.getHttpServer()).post(path).set('authorization', `Bearer ${adminToken}`);

  /** A tenant onboarded and logged into on instance 1; `onTwo` reads its projects on instance 2 (which then caches it for 60 s). */
  async function tenantSeenByTwo(): Promise<{ id: string; onTwo: () => request.Test }> {
    const slug = uniqueSlug('pubsub-e2e');
    const created = await admin('/admin/tenants').send({ slug, name: 'pubsub inc', tier: 'pool' });
    expect(created.status).toBe(201);
    const email = `owner@${slug}.test`;
    const password = 'correct-horse-battery';
    expect((await admin(`/admin/tenants/${created.body.id}/users`).send({ email, password, role: 'owner' })).status).toBe(201);
    const login = await request(one.getHttpServer()).post('/auth/login').set('X-Tenant', slug).send({ email, password });
    expect(login.status).toBe(200);
    const onTwo = () =>
      request(two.getHttpServer()).get('/projects').set('X-Tenant', slug).set('authorization', `Bearer ${login.body.access_token}`);
    expect((await onTwo()).status).toBe(200);
    return { id: created.body.id, onTwo };
  }

  it('instance 2 answers 403 tenant_suspended, then 200 again, each within 1 s of the admin call on instance 1', async () => {
    const { id, onTwo } = await tenantSeenByTwo();
    expect((await admin(`/admin/tenants/${id}/suspend`)).status).toBe(200);
    let started = Date.now();
    const suspended = await waitFor(onTwo, (r) => r.status === 403, 3000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(suspended.status).toBe(403);
    expect(suspended.body.error).toBe('tenant_suspended');

    expect((await admin(`/admin/tenants/${id}/activate`)).status).toBe(200);
    started = Date.now();
    const back = await waitFor(onTwo, (r) => r.status === 200, 3000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(back.status).toBe(200);
  });

  it('instance 2 answers 503 tenant_maintenance, then 200, then 404 once deleted, each within 1 s of the admin call on instance 1', async () => {
    const { id, onTwo } = await tenantSeenByTwo();
    expect((await admin(`/admin/tenants/${id}/maintenance`).send({ on: true })).status).toBe(200);
    let started = Date.now();
    const closed = await waitFor(onTwo, (r) => r.status === 503, 3000, 20);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(closed.body.error).toBe('tenant_maintenance');

    expect((await admin(`/admin/tenants/${id}/maintenance`).send({ on: false })).status).toBe(200);
    started = Date.now();
    expect((await waitFor(onTwo, (r) => r.status === 200, 3000, 20)).status).toBe(200);
    expect(Date.now() - started).toBeLessThan(1000);

    expect((await request(one.getHttpServer()).delete(`/admin/tenants/${id}`).set('authorization', `Bearer ${adminToken}`)).status).toBe(202);
    started = Date.now();
    expect((await waitFor(onTwo, (r) => r.status === 404, 3000, 20)).status).toBe(404);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
