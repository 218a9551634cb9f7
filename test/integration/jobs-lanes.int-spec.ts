import { Injectable } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { BATCH_PRIORITY_BASE, TenantBacklog, TenantJobProducer, TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(90_000);

const QUEUE = 'jobs-test-lanes';
/** The big tenant's import: the 10,000 batch jobs (one addBulk). */
const BIG_BATCH = 10_000;
const CONCURRENCY = 6;
/** The seeded `free` plan's job_concurrency (control 0015); the instance default stays higher. */
const FREE_JOB_CAP = 2;
const DEFAULT_JOB_CAP = 4;
/** Interactive jobs must finish with at most this many of the big tenant's batch jobs done meanwhile. */
const BOUND = 2 * CONCURRENCY;

/** Records, per tenant, jobs done and running, and for interactive jobs the big tenant's batch count when they finished. */
@Injectable()
@Processor(QUEUE, { concurrency: CONCURRENCY })
class LaneProcessor extends TenantWorkerHost<{ kind: 'batch' | 'interactive' }, void> {
  static batchDone = new Map<string, number>();
  static running = new Map<string, number>();
  static maxRunning = new Map<string, number>();
  /** Tenant id → the big tenant's batch jobs done when this tenant's interactive job finished. */
  static interactiveFinishedAt = new Map<string, number>();
  static big = '';

  constructor(private readonly context: TenantContext) {
    super();
  }

  protected async handle(job: Job<TenantJobData<{ kind: 'batch' | 'interactive' }>>): Promise<void> {
    const id = this.context.tenant.id;
    const now = (LaneProcessor.running.get(id) ?? 0) + 1;
    LaneProcessor.running.set(id, now);
    LaneProcessor.maxRunning.set(id, Math.max(now, LaneProcessor.maxRunning.get(id) ?? 0));
    try {
      await sleep(3);
    } finally {
      LaneProcessor.running.set(id, (LaneProcessor.running.get(id) ?? 1) - 1);
    }
    if (job.data.payload.kind === 'batch') LaneProcessor.batchDone.set(id, (LaneProcessor.batchDone.get(id) ?? 0) + 1);
    else LaneProcessor.interactiveFinishedAt.set(id, LaneProcessor.batchDone.get(LaneProcessor.big) ?? 0);
  }
}

const SLOW_QUEUE = 'jobs-test-cap-slow';
/** Jobs far longer than the cap's in-worker wait (250 ms): the others must go back to delayed. */
const SLOW_JOB_MS = 700;

@Injectable()
@Processor(SLOW_QUEUE, { concurrency: 3 })
class SlowProcessor extends TenantWorkerHost<{ n: number }, void> {
  static running = 0;
  static maxRunning = 0;
  static done = 0;

  protected async handle(): Promise<void> {
    SlowProcessor.maxRunning = Math.max(++SlowProcessor.running, SlowProcessor.maxRunning);
    try {
      await sleep(SLOW_JOB_MS);
    } finally {
      SlowProcessor.running--;
    }
    SlowProcessor.done++;
  }
}

describe('jobs: interactive and batch lanes, and per-tenant caps by plan', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let big: TestTenant;
  let small: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture({ jobsTenantConcurrency: DEFAULT_JOB_CAP });
    big = await fx.onboard('pool', 'lanes-big');
    small = await fx.onboard('bridge', 'lanes-small');
    // The big tenant is on `free`: its cap comes from the plan, not the instance default.
    await fx.ownerQuery(`UPDATE control.tenants SET plan = 'free' WHERE id = $1`, [big.id]);
    LaneProcessor.big = big.id;
    worker = await startTestWorker(fx.config, { queues: [QUEUE, SLOW_QUEUE], providers: [LaneProcessor, SlowProcessor] });
    // The worker's registry caches for REGISTRY_CACHE_TTL_MS (200 ms in tests): past it, it reads the plan above.
    await sleep(fx.config.registryCacheTtlMs + 100);
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  it(`finishes both tenants' webhook-like jobs within ${BOUND} of a ${BIG_BATCH}-job import, and runs at most the plan's ${FREE_JOB_CAP} of the importer's jobs at once`, async () => {
    const producer = worker.module.get(TenantJobProducer);
    const ctx = worker.module.get(TenantContext);
    const backlog = worker.module.get(TenantBacklog);

    const imported = await ctx.run({ tenant: big.placement }, () =>
      producer.addBulk(QUEUE, Array.from({ length: BIG_BATCH }, () => ({ name: 'import-row', payload: { kind: 'batch' as const } })), 'batch'),
    );
    // Batch priorities sit above every interactive one: BATCH_PRIORITY_BASE + position.
    expect(imported[0].opts.priority).toBe(BATCH_PRIORITY_BASE + 1);
    expect(imported[BIG_BATCH - 1].opts.priority).toBe(BATCH_PRIORITY_BASE + BIG_BATCH);
    await waitFor(() => LaneProcessor.batchDone.get(big.id) ?? 0, (n) => n >= 30, 20_000, 5);

    // A webhook of the importer itself, and one of another tenant, arrive while the import drains.
    const doneAtEnqueue = LaneProcessor.batchDone.get(big.id) ?? 0;
    const [own] = await ctx.run({ tenant: big.placement }, async () => [await producer.add(QUEUE, 'deliver', { kind: 'interactive' as const })]);
    const [other] = await ctx.run({ tenant: small.placement }, async () => [await producer.add(QUEUE, 'deliver', { kind: 'interactive' as const })]);
    expect([own.opts.priority, other.opts.priority]).toEqual([1, 1]);

    await waitFor(() => LaneProcessor.interactiveFinishedAt.size, (n) => n === 2, 20_000, 5);
    const ownWaited = LaneProcessor.interactiveFinishedAt.get(big.id)! - doneAtEnqueue;
    const otherWaited = LaneProcessor.interactiveFinishedAt.get(small.id)! - doneAtEnqueue;
    console.log(
      `lanes: with ${doneAtEnqueue}/${BIG_BATCH} of the import done, the importer's own interactive job finished after ${ownWaited} more batch jobs, ` +
        `another tenant's after ${otherWaited}; importer's most jobs at once ${LaneProcessor.maxRunning.get(big.id)} (cap ${FREE_JOB_CAP}, worker concurrency ${CONCURRENCY})`,
    );
    // Count-based, like jobs-fairness: without lanes the importer's own webhook would queue behind its whole backlog.
    expect(ownWaited).toBeLessThanOrEqual(BOUND);
    expect(otherWaited).toBeLessThanOrEqual(BOUND);
    expect(await backlog.count(backlog.key(worker.prefix, QUEUE, big.id, 'batch'))).toBeGreaterThan(BIG_BATCH / 2);
    // The free plan's cap held with 6 worker slots, none of them ever running a 3rd job of the importer.
    expect(LaneProcessor.maxRunning.get(big.id)).toBe(FREE_JOB_CAP);
  });

  it('lets a tenant on the default plan run up to the instance default at once', async () => {
    const producer = worker.module.get(TenantJobProducer);
    const ctx = worker.module.get(TenantContext);
    const before = LaneProcessor.batchDone.get(small.id) ?? 0;
    await ctx.run({ tenant: small.placement }, () =>
      producer.addBulk(QUEUE, Array.from({ length: 40 }, () => ({ name: 'export-row', payload: { kind: 'batch' as const } })), 'batch'),
    );
    await waitFor(() => (LaneProcessor.batchDone.get(small.id) ?? 0) - before, (n) => n === 40, 30_000, 5);
    expect(LaneProcessor.maxRunning.get(small.id)).toBeLessThanOrEqual(DEFAULT_JOB_CAP);
    expect(LaneProcessor.maxRunning.get(small.id)).toBeGreaterThan(FREE_JOB_CAP);
  });

  it('sends a job whose tenant stays at its cap back to delayed, attempts untouched, and runs it once a slot is free', async () => {
    const producer = worker.module.get(TenantJobProducer);
    const ctx = worker.module.get(TenantContext);
    const queue = worker.queue(SLOW_QUEUE);
    const delayed: string[] = [];
    const events = await import('bullmq').then(({ QueueEvents }) => new QueueEvents(SLOW_QUEUE, { connection: queue.opts.connection, prefix: worker.prefix }));
    events.on('delayed', ({ jobId }) => delayed.push(jobId));
    await events.waitUntilReady();
    try {
      // Three slots, the free plan's cap of 2: the third job waits 250 ms, then is delayed.
      const jobs = await ctx.run({ tenant: big.placement }, () =>
        producer.addBulk(SLOW_QUEUE, [0, 1, 2].map((n) => ({ name: 'slow', payload: { n }, opts: { attempts: 1 } }))),
      );
      await waitFor(() => SlowProcessor.done, (n) => n === 3, 15_000, 20);
      expect(SlowProcessor.maxRunning).toBe(FREE_JOB_CAP);
      expect(delayed.length).toBeGreaterThan(0);
      for (const job of jobs) {
        const after = await queue.getJob(job.id!);
        // Completed on its one attempt: the delays did not spend it.
        expect([await after?.getState(), after?.attemptsMade]).toEqual(['completed', 1]);
      }
    } finally {
      await events.close();
    }
  });
});
