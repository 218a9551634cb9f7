import { Injectable } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import type { TestingModule } from '@nestjs/testing';
import type { Job } from 'bullmq';
import { TenantBacklog, TenantJobProducer, TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

const QUEUE = 'jobs-test-fair';
/** The big tenant's backlog: the 10,000 queued jobs (enqueued in one addBulk, ~1 s). */
const BIG_BACKLOG = 10_000;
const CONCURRENCY = 2;

/** Fast jobs that record, per tenant, how many have completed. */
@Injectable()
@Processor(QUEUE, { concurrency: CONCURRENCY })
class CountingProcessor extends TenantWorkerHost<{ n: number }, void> {
  static done = new Map<string, number>();
  /** A's completed count at the moment each of B's jobs completed. */
  static bigDoneWhenSmallFinished: number[] = [];
  static big = '';
  static small = '';

  constructor(private readonly context: TenantContext) {
    super();
  }

  protected async handle(_job: Job<TenantJobData<{ n: number }>>): Promise<void> {
    await new Promise((r) => setTimeout(r, 1));
    const id = this.context.tenant.id;
    CountingProcessor.done.set(id, (CountingProcessor.done.get(id) ?? 0) + 1);
    if (id === CountingProcessor.small) CountingProcessor.bigDoneWhenSmallFinished.push(CountingProcessor.done.get(CountingProcessor.big) ?? 0);
  }
}

describe('jobs: per-tenant fairness (priority = position in the tenant\'s backlog)', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let mod: TestingModule;
  let a: TestTenant;
  let b: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    a = await fx.onboard('pool', 'fair-big');
    b = await fx.onboard('bridge', 'fair-small');
    CountingProcessor.big = a.id;
    CountingProcessor.small = b.id;
    worker = await startTestWorker(fx.config, { queues: [QUEUE], providers: [CountingProcessor] });
    mod = worker.module;
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  it(`finishes a small tenant's 2 jobs while a ${BIG_BACKLOG}-job backlog of another tenant is still draining`, async () => {
    const producer = mod.get(TenantJobProducer);
    const ctx = mod.get(TenantContext);
    const backlog = mod.get(TenantBacklog);
    const queue = worker.queue(QUEUE);
    const bigKey = backlog.key(worker.prefix, QUEUE, a.id);

    const bigJobs = await ctx.run({ tenant: a.placement }, () =>
      producer.addBulk(QUEUE, Array.from({ length: BIG_BACKLOG }, (_, n) => ({ name: 'work', payload: { n } }))),
    );
    // The backlog's priorities are its positions: 1 … BIG_BACKLOG.
    expect(bigJobs[0].opts.priority).toBe(1);
    expect(bigJobs[BIG_BACKLOG - 1].opts.priority).toBe(BIG_BACKLOG);
    // The worker is already draining A when B arrives.
    await waitFor(() => CountingProcessor.done.get(a.id) ?? 0, (n) => n >= 20, 10_000, 5);

    const smallJobs = await ctx.run({ tenant: b.placement }, async () => [
      await producer.add(QUEUE, 'work', { n: 0 }),
      await producer.add(QUEUE, 'work', { n: 1 }),
    ]);
    // B's first jobs outrank everything of A's still queued.
    expect(smallJobs.map((j) => j.opts.priority)).toEqual([1, 2]);

    await waitFor(() => CountingProcessor.bigDoneWhenSmallFinished.length, (n) => n === 2, 20_000, 5);
    const bigDoneAtSmallFinish = Math.max(...CountingProcessor.bigDoneWhenSmallFinished);
    const bigStillQueued = await backlog.count(bigKey);
    const bigWaiting = await queue.getPrioritizedCount();
    // Observed, for the report.
    console.log(`fairness: A had ${bigDoneAtSmallFinish}/${BIG_BACKLOG} done when B's 2 jobs finished; A's backlog counter ${bigStillQueued}, prioritized ${bigWaiting}`);
    expect(bigDoneAtSmallFinish).toBeLessThan(BIG_BACKLOG);
    // Not merely "before the end": B waited only for A's jobs already active when it arrived, not
    // for A's backlog (FIFO would have made B wait for all BIG_BACKLOG).
    expect(bigDoneAtSmallFinish).toBeLessThan(BIG_BACKLOG / 4);
    expect(bigStillQueued).toBeGreaterThan(0);
    expect(bigWaiting).toBeGreaterThan(0);
    expect(await backlog.count(backlog.key(worker.prefix, QUEUE, b.id))).toBe(0);
  });
});
