import { Injectable } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { TenantRegistry } from '#strata/control-plane';
import { TenantBacklog, TenantJobProducer, TenantQueuedJobs, TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

const QUEUE = 'jobs-test-pause';

/** Counts each run of each job: a job run twice, or never, shows. */
@Injectable()
@Processor(QUEUE, { concurrency: 4 })
class CountingProcessor extends TenantWorkerHost<{ n: number }> {
  static runs = new Map<string, number>();
  protected async handle(job: Job<TenantJobData<{ n: number }>>): Promise<void> {
    CountingProcessor.runs.set(job.id!, (CountingProcessor.runs.get(job.id!) ?? 0) + 1);
  }
}

describe('jobs of a suspended tenant (or one in maintenance) wait, and run once each after reactivation', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let queue: Queue;
  let paused: TestTenant;
  let active: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    paused = await fx.onboard('pool', 'job-paused');
    active = await fx.onboard('bridge', 'job-active');
    worker = await startTestWorker(fx.config, { jobsOnly: true, queues: [QUEUE], providers: [CountingProcessor] });
    queue = worker.queue(QUEUE);
  });
  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  const enqueue = (t: TestTenant, count: number): Promise<string[]> =>
    worker.module.get(TenantContext).run({ tenant: t.placement }, async () => {
      const jobs = await worker.module.get(TenantJobProducer).addBulk(QUEUE, Array.from({ length: count }, (_, n) => ({ name: 'count', payload: { n } })));
      return jobs.map((j) => j.id!);
    });
  /** What Redis pub/sub does between the API and the worker in the apps: the worker's registry forgets the tenant now. */
  const workerHears = () => worker.module.get(TenantRegistry).invalidateAll();
  const states = async (ids: string[]) => Promise.all(ids.map((id) => queue.getJobState(id)));
  const ran = (ids: string[]) => ids.map((id) => CountingProcessor.runs.get(id) ?? 0);

  async function expectParkedThenResumed(pause: () => Promise<unknown>, resume: () => Promise<unknown>): Promise<void> {
    await pause();
    workerHears();
    const parked = await enqueue(paused, 12);
    const other = await enqueue(active, 4);
    // The other tenant's jobs run meanwhile.
    await waitFor(() => ran(other).every((n) => n === 1), (ok) => ok, 20_000);
    const waiting = await waitFor(() => states(parked), (s) => s.every((st) => st === 'delayed'), 20_000);
    expect(waiting).toEqual(parked.map(() => 'delayed'));
    await sleep(300);
    expect(ran(parked)).toEqual(parked.map(() => 0));
    for (const id of parked) expect((await queue.getJob(id))!.attemptsMade).toBe(0);

    await resume();
    workerHears();
    // The admin API promotes them when the tenant is reactivated (TenantAdminService); the fixture's has no jobs module.
    expect(await worker.module.get(TenantQueuedJobs).promoteParked(paused.id)).toBe(parked.length);
    // The handler counts a run a moment before BullMQ marks the job completed, so wait on the state, then check the counts.
    const done = await waitFor(() => states(parked), (s) => s.every((st) => st === 'completed'), 20_000);
    expect(done).toEqual(parked.map(() => 'completed'));
    expect(ran(parked)).toEqual(parked.map(() => 1));
    expect(await queue.getFailedCount()).toBe(0);
    const backlog = worker.module.get(TenantBacklog);
    expect(await backlog.count(backlog.key(worker.prefix, QUEUE, paused.id))).toBe(0);
  }

  it('parks a suspended tenant\'s jobs without running or failing them, and runs each once after reactivation', async () => {
    await expectParkedThenResumed(
      () => fx.admin.setStatus(paused.id, 'suspended'),
      () => fx.admin.setStatus(paused.id, 'active'),
    );
  });

  it('parks the jobs of a tenant in maintenance the same way, until maintenance ends', async () => {
    await expectParkedThenResumed(
      () => fx.admin.setMaintenance(paused.id, true, 'reindexing'),
      () => fx.admin.setMaintenance(paused.id, false),
    );
  });
});
