import { randomBytes } from 'node:crypto';
import { Controller, Param, Post } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import request from 'supertest';
import { JwtService } from '#strata/auth';
import { JobsModule, QueueDepthPublisher, TenantJobProducer } from '#strata/jobs';
import { MetricsService, QUEUE_PROBE_TIMEOUT_MS } from '#strata/observability';
import { createApp } from '../../apps/api/src/app.factory';
import { dropRedisPrefix } from '../support/redis-prefix';
import { testConfig } from '../support/test-config';
import { createTestDatabase, uniqueSlug, type TestDatabase } from '../support/test-database';

jest.setTimeout(60_000);

// The API's JobsModule uses the default `strata` prefix: unique queue names, deleted afterwards.
const suffix = randomBytes(4).toString('hex');
const BUSY = `depth-busy-${suffix}`;
const IDLE = `depth-idle-${suffix}`;

/** Enqueues `n` jobs for the calling tenant; no worker runs, so they stay queued. */
@Controller('depth-probe')
class EnqueueController {
  constructor(private readonly producer: TenantJobProducer) {}

  @Post(':n')
  async enqueue(@Param('n') n: string): Promise<{ added: number }> {
    const jobs = await this.producer.addBulk(BUSY, Array.from({ length: Number(n) }, (_, i) => ({ name: 'noop', payload: { i } })));
    return { added: jobs.length };
  }
}

describe('observability: strata_queue_depth for the queues the app registers', () => {
  let app: NestExpressApplication;
  let db: TestDatabase;
  let http: () => ReturnType<typeof request>;
  let tenant: { slug: string; token: string };

  const depth = async (queue: string): Promise<number | undefined> => {
    const text = (await http().get('/metrics').expect(200)).text;
    const line = text.split('\n').find((l) => l.startsWith(`strata_queue_depth{queue="${queue}"} `));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    // startTestApp() with the test's queues and probe mounted (it takes no extra imports yet).
    app = await createApp(testConfig(db), { logger: ['error', 'fatal'], extra: { imports: [JobsModule.registerQueue(BUSY, IDLE)], controllers: [EnqueueController] } });
    await app.init();
    http = () => request(app.getHttpServer());
    const admin = { authorization: `Bearer ${await app.get(JwtService).signPlatformToken('test-operator')}` };
    const slug = uniqueSlug('depth');
    const created = await http().post('/admin/tenants').set(admin).send({ slug, name: 'depth inc', tier: 'pool' }).expect(201);
    const email = `owner@${slug}.test`;
    const password = 'correct-horse-battery';
    await http().post(`/admin/tenants/${created.body.id}/users`).set(admin).send({ email, password, role: 'owner' }).expect(201);
    const login = await http().post('/auth/login').set('X-Tenant', slug).send({ email, password }).expect(200);
    tenant = { slug, token: login.body.access_token };
  });

  afterAll(async () => {
    await app?.close();
    for (const q of [BUSY, IDLE]) await dropRedisPrefix(testConfig(db).redisUrl, `strata:${q}`);
    await db?.drop();
  });

  it('publishes every registered queue, with its real count after enqueueing', async () => {
    expect(app.get(QueueDepthPublisher).queues).toEqual(expect.arrayContaining([BUSY, IDLE]));
    expect(await depth(BUSY)).toBe(0);
    await http().post('/depth-probe/3').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).expect(201);
    // Tenant jobs are prioritized (fairness); they count as waiting to be processed.
    expect(await depth(BUSY)).toBe(3);
    await http().post('/depth-probe/2').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).expect(201);
    expect(await depth(BUSY)).toBe(5);
    expect(await depth(IDLE)).toBe(0);
  });

  it('answers /metrics without a queue whose probe hangs (Redis away), instead of hanging', async () => {
    const off = app.get(MetricsService).registerQueueDepth('hanging', () => new Promise<number>(() => undefined));
    const started = Date.now();
    expect(await depth('hanging')).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(QUEUE_PROBE_TIMEOUT_MS + 2000);
    expect(await depth(BUSY)).toBe(5);
    off();
  });
});
