import { RequireRole } from '#strata/auth';
import { randomBytes } from 'node:crypto';
import { Controller, Param, Post } from '@nestjs/common';
import { JobsModule, QueueDepthPublisher, TenantJobProducer } from '#strata/jobs';
import { MetricsService, QUEUE_PROBE_TIMEOUT_MS } from '#strata/observability';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';

jest.setTimeout(60_000);

// Unique queue names under the run's JOBS_PREFIX (global teardown drops the prefix).
const suffix = randomBytes(4).toString('hex');
const BUSY = `depth-busy-${suffix}`;
const IDLE = `depth-idle-${suffix}`;

/** Enqueues `n` jobs for the calling tenant; no worker runs, so they stay queued. */
@Controller('depth-probe')
@RequireRole('member')
class EnqueueController {
  constructor(private readonly producer: TenantJobProducer) {}

  @Post(':n')
  async enqueue(@Param('n') n: string): Promise<{ added: number }> {
    const jobs = await this.producer.addBulk(BUSY, Array.from({ length: Number(n) }, (_, i) => ({ name: 'noop', payload: { i } })));
    return { added: jobs.length };
  }
}

describe('observability: strata_queue_depth for the queues the app registers', () => {
  let t: TestApp;
  let tenant: OnboardedTenant;
  const http = () => t.http();

  const depth = async (queue: string): Promise<number | undefined> => {
    const text = (await http().get('/metrics').expect(200)).text;
    const line = text.split('\n').find((l) => l.startsWith(`strata_queue_depth{queue="${queue}"} `));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };

  beforeAll(async () => {
    t = await startTestApp({}, { extra: { imports: [JobsModule.registerQueue(BUSY, IDLE)], controllers: [EnqueueController] } });
    tenant = await t.onboard('depth', 'pool');
  });
  afterAll(() => t?.close());

  it('publishes every registered queue, with its real count after enqueueing', async () => {
    expect(t.app.get(QueueDepthPublisher).queues).toEqual(expect.arrayContaining([BUSY, IDLE]));
    expect(await depth(BUSY)).toBe(0);
    await http().post('/depth-probe/3').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).expect(201);
    // Tenant jobs are prioritized (fairness); they count as waiting to be processed.
    expect(await depth(BUSY)).toBe(3);
    await http().post('/depth-probe/2').set('X-Tenant', tenant.slug).set('authorization', `Bearer ${tenant.token}`).expect(201);
    expect(await depth(BUSY)).toBe(5);
    expect(await depth(IDLE)).toBe(0);
  });

  it('answers /metrics without a queue whose probe hangs (Redis away), instead of hanging', async () => {
    const off = t.app.get(MetricsService).registerQueueDepth('hanging', () => new Promise<number>(() => undefined));
    const started = Date.now();
    expect(await depth('hanging')).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(QUEUE_PROBE_TIMEOUT_MS + 2000);
    expect(await depth(BUSY)).toBe(5);
    off();
  });
});
