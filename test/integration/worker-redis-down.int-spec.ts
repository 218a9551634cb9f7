import type { Job } from 'bullmq';
import { RedisMonitor } from '#strata/cache';
import type { TenantJobData } from '#strata/jobs';
import { setObservabilityDefaults } from '#strata/observability';
import { InvoiceOverdueSweep } from '../../apps/worker/src/invoice-overdue.sweep';
import { INVOICE_OVERDUE_QUEUE, type InvoiceOverduePayload } from '../../apps/worker/src/invoice-overdue.constants';
import { startExtraRedis, type ExtraRedis } from '../support/extra-redis';
import { createTenancyFixture, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(90_000);

type Line = Record<string, any>;

/** Long enough for several reconnect attempts of every connection (ioredis' and BullMQ's). */
const OUTAGE_MS = 3000;

describe('worker with Redis down: every connection (queues, workers, its own) reports one outage, and jobs run again once Redis is back', () => {
  const lines: Line[] = [];
  let fx: TenancyFixture;
  let redis: ExtraRedis;
  let redisRunning = false;
  let worker: TestWorker;
  const tenants: TestTenant[] = [];
  const console_: jest.SpyInstance[] = [];

  const events = (event: string) => lines.filter((l) => l.event === event);
  const perConnection = (ls: Line[]) => ls.reduce<Record<string, number>>((acc, l) => ({ ...acc, [l.connection]: (acc[l.connection] ?? 0) + 1 }), {});

  /** One overdue sweep; resolves once every tenant's job of it has completed. */
  const sweepCompletes = async () => {
    const report = await worker.module.get(InvoiceOverdueSweep).run(new Date());
    const queue = worker.queue(INVOICE_OVERDUE_QUEUE);
    await waitFor(
      async () => ((await queue.getJobs(['completed'])) as Array<Job<TenantJobData<InvoiceOverduePayload>>>).filter((j) => j.data.envelope.requestId === report.requestId),
      (jobs) => jobs.length === tenants.length,
      20_000,
    );
  };

  beforeAll(async () => {
    setObservabilityDefaults({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    redis = await startExtraRedis();
    redisRunning = true;
    fx = await createTenancyFixture({ redisUrl: redis.url });
    for (const tier of ['pool', 'bridge'] as const) tenants.push(await fx.onboard(tier, `wredis-${tier}`));
    worker = await startTestWorker(fx.config);
    console_.push(jest.spyOn(console, 'error'), jest.spyOn(console, 'warn'));
  });

  afterAll(async () => {
    for (const spy of console_) spy.mockRestore();
    if (redis && !redisRunning) await redis.start().catch(() => undefined);
    await worker?.close();
    await fx?.close();
    await redis?.stop();
    setObservabilityDefaults({});
  });

  it('runs jobs while Redis is up (the baseline)', async () => {
    await sweepCompletes();
  });

  it('logs one warning per connection for an outage of several reconnect attempts, and nothing else', async () => {
    lines.length = 0;
    await redis.kill();
    redisRunning = false;
    const killedAt = Date.now();
    await waitFor(
      () => Object.keys(perConnection(events('redis.down'))),
      (names) => names.includes(`bullmq-worker:${INVOICE_OVERDUE_QUEUE}`) && names.includes(`bullmq:${INVOICE_OVERDUE_QUEUE}`) && names.some((n) => n.endsWith(':jobs')),
      5000,
    );
    await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - killedAt))));
    const down = perConnection(events('redis.down'));
    expect(Object.values(down).every((n) => n === 1)).toBe(true);
    // Every worker of the app and the registry subscriber are among them.
    expect(Object.keys(down)).toEqual(expect.arrayContaining([`bullmq-worker:webhook-delivery`, `bullmq-worker:webhook-relay`, 'strata-registry-sub']));
    expect(lines.filter((l) => l.level >= 40 && l.event !== 'redis.down').map((l) => l.msg)).toEqual([]);
    for (const spy of console_) expect(spy).not.toHaveBeenCalled();
  });

  it('comes back by itself: one line per connection, and a sweep runs to completion', async () => {
    const wasDown = Object.keys(perConnection(events('redis.down')));
    await redis.start();
    redisRunning = true;
    await waitFor(
      () => Object.keys(perConnection(events('redis.up'))),
      (names) => wasDown.every((n) => names.includes(n)),
      15_000,
    );
    expect(Object.values(perConnection(events('redis.up'))).every((n) => n === 1)).toBe(true);
    expect(worker.module.get(RedisMonitor).states().filter((s) => s.status === 'down')).toEqual([]);
    await sweepCompletes();
    for (const spy of console_) expect(spy).not.toHaveBeenCalled();
  });
});
