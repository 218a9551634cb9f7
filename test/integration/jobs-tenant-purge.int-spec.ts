import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { TenantBacklog, TenantQueuedJobs } from '#strata/jobs';
import { createTenancyFixture, type TenancyFixture } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

// Queues no processor consumes: jobs stay where the test puts them.
const QUEUES = ['jobs-test-purge-a', 'jobs-test-purge-b'];

describe("TenantQueuedJobs.purge removes one tenant's jobs in every state, its schedulers and counters, on every queue", () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  const doomed = randomUUID();
  const kept = randomUUID();
  const data = (tenantId: string) => ({ envelope: { tenantId, tier: 'pool', requestId: 'test' }, payload: {} });

  beforeAll(async () => {
    fx = await createTenancyFixture();
    worker = await startTestWorker(fx.config, { jobsOnly: true, queues: QUEUES });
  });
  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  /** A failed and a completed job of the tenant, moved there by hand (no worker consumes these queues): before any other job, so the next job is this one. */
  async function finished(queue: Queue, tenantId: string): Promise<void> {
    const token = 'test-token';
    for (const outcome of ['failed', 'completed'] as const) {
      const job = await queue.add(outcome, data(tenantId));
      const worker = await import('bullmq').then(({ Worker }) => new Worker(queue.name, null, { connection: queue.opts.connection, prefix: queue.opts.prefix, autorun: false }));
      try {
        const next = await worker.getNextJob(token);
        expect(next?.id).toBe(job.id);
        if (outcome === 'failed') await next!.moveToFailed(new Error('on purpose'), token);
        else await next!.moveToCompleted('done', token);
      } finally {
        await worker.close();
      }
    }
  }

  /** A waiting, a prioritized and a delayed job of the tenant, and a job scheduler. */
  async function queued(queue: Queue, tenantId: string): Promise<void> {
    await queue.add('waiting', data(tenantId));
    await queue.add('prioritized', data(tenantId), { priority: 3 });
    await queue.add('delayed', data(tenantId), { delay: 3600_000 });
    await queue.upsertJobScheduler(`nightly-${tenantId}`, { every: 3600_000 }, { name: 'scheduled', data: data(tenantId) });
  }

  const jobsOf = async (queue: Queue, tenantId: string) =>
    (await queue.getJobs(['waiting', 'prioritized', 'delayed', 'failed', 'completed', 'active'])).filter((j) => j?.data?.envelope?.tenantId === tenantId);
  const schedulersOf = async (queue: Queue, tenantId: string) =>
    (await queue.getJobSchedulers(0, -1)).filter((s) => (s.template?.data as ReturnType<typeof data> | undefined)?.envelope.tenantId === tenantId);

  it('leaves nothing of the tenant and everything of another', async () => {
    const queues = QUEUES.map((q) => worker.queue(q));
    for (const q of queues) for (const t of [doomed, kept]) await finished(q, t);
    for (const q of queues) for (const t of [doomed, kept]) await queued(q, t);
    const backlog = worker.module.get(TenantBacklog);
    for (const q of QUEUES) for (const t of [doomed, kept]) await backlog.reserve(backlog.key(worker.prefix, q, t), 2);
    // The batch lane's counters too (tenant-job.lanes.ts): a key of their own per queue and tenant.
    for (const q of QUEUES) for (const t of [doomed, kept]) await backlog.reserve(backlog.key(worker.prefix, q, t, 'batch'), 3, 'batch');
    const before = await Promise.all(queues.map((q) => jobsOf(q, kept)));

    const purged = await worker.module.get(TenantQueuedJobs).purge(doomed);

    // 5 jobs each (the scheduler's own next job is a delayed job of the tenant too).
    for (const q of QUEUES) expect(purged.jobs[q]).toBeGreaterThanOrEqual(5);
    expect(purged).toMatchObject({ schedulers: 2, counters: 4, active: 0 });
    for (const q of queues) {
      expect(await jobsOf(q, doomed)).toEqual([]);
      expect(await schedulersOf(q, doomed)).toEqual([]);
      expect(await schedulersOf(q, kept)).toHaveLength(1);
      expect(await backlog.count(backlog.key(worker.prefix, q.name, doomed))).toBe(0);
      expect(await backlog.count(backlog.key(worker.prefix, q.name, kept))).toBe(2);
      expect(await backlog.count(backlog.key(worker.prefix, q.name, doomed, 'batch'))).toBe(0);
      expect(await backlog.count(backlog.key(worker.prefix, q.name, kept, 'batch'))).toBe(3);
    }
    expect((await Promise.all(queues.map((q) => jobsOf(q, kept)))).map((js) => js.map((j) => j.id).sort())).toEqual(before.map((js) => js.map((j) => j.id).sort()));
    // Idempotent: nothing left to remove.
    expect(await worker.module.get(TenantQueuedJobs).purge(doomed)).toEqual({ jobs: {}, schedulers: 0, counters: 0, active: 0 });
  });
});
