import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import type { StrataConfig } from '#strata/common';
import { testConfig } from './test-config';
import { JwtService } from '#strata/auth';
import type { Tier } from '#strata/control-plane';
import { createApp, type CreateAppOptions } from '../../apps/api/src/app.factory';
import { createTestDatabase, uniqueSlug, type TestDatabase } from './test-database';

export { testConfig, TEST_JWT_SECRET } from './test-config';

export interface OnboardedTenant {
  id: string;
  slug: string;
  name: string;
  tier: Tier;
  email: string;
  password: string;
  userId: string;
  token: string;
}

export interface TestApp {
  app: NestExpressApplication;
  db: TestDatabase;
  config: StrataConfig;
  http: () => ReturnType<typeof request>;
  adminToken: string;
  /** Onboards a tenant through the admin API, adds a user and logs in through /auth/login. */
  onboard(base: string, tier: Tier): Promise<OnboardedTenant>;
  close(): Promise<void>;
}

/**
 * The real API on a fresh cloned database, listening on an ephemeral port. `opts.extra` mounts a
 * test's own controllers or queues beside the app, as the bench does.
 */
export async function startTestApp(overrides: Partial<StrataConfig> = {}, opts: CreateAppOptions = {}): Promise<TestApp> {
  return startTestAppOn(await createTestDatabase(), overrides, opts);
}

/** The same, on a database the caller prepared (on a server a fault test started, say); close() drops it with db.drop(). */
export async function startTestAppOn(db: TestDatabase, overrides: Partial<StrataConfig> = {}, opts: CreateAppOptions = {}): Promise<TestApp> {
  const config = testConfig(db, overrides);
  const app = await createApp(config, { logger: ['error', 'fatal'], ...opts });
  await app.init();
  const server = app.getHttpServer();
  const adminToken = await app.get(JwtService).signPlatformToken('test-operator');
  const http = () => request(server);

  async function onboard(base: string, tier: Tier): Promise<OnboardedTenant> {
    const slug = uniqueSlug(base);
    const name = `${base} inc`;
    const created = await http().post('/admin/tenants').set('authorization', `Bearer ${adminToken}`).send({ slug, name, tier });
    if (created.status !== 201) throw new Error(`onboarding ${slug} failed: ${created.status} ${JSON.stringify(created.body)}`);
    const email = `owner@${slug}.test`;
    const password = 'correct-horse-battery';
    const user = await http()
      .post(`/admin/tenants/${created.body.id}/users`)
      .set('authorization', `Bearer ${adminToken}`)
      .send({ email, password, role: 'owner' });
    if (user.status !== 201) throw new Error(`adding a user to ${slug} failed: ${user.status} ${JSON.stringify(user.body)}`);
    const login = await http().post('/auth/login').set('X-Tenant', slug).send({ email, password });
    if (login.status !== 200) throw new Error(`login to ${slug} failed: ${login.status} ${JSON.stringify(login.body)}`);
    return { id: created.body.id, slug, name, tier, email, password, userId: user.body.id, token: login.body.access_token };
  }

  return {
    app,
    db,
    config,
    http,
    adminToken,
    onboard,
    async close() {
      await app.close();
      await db.drop();
    },
  };
}
