import { Injectable } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { InvoicesService } from '#strata/invoices';
import { TenantJobProducer, TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { MoveExecutor, MovesService } from '#strata/moves';
import { TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, waitFor, type TenancyFixture } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

const QUEUE = 'jobs-after-move';

/** Writes an invoice through the domain service, wherever the tenant lives when the job runs. */
@Injectable()
@Processor(QUEUE)
class InvoiceWriter extends TenantWorkerHost<{ number: string }, string> {
  constructor(private readonly invoices: InvoicesService) {
    super();
  }

  protected async handle(job: Job<TenantJobData<{ number: string }>>): Promise<string> {
    return (await this.invoices.create({ number: job.data.payload.number, amount: 100, currency: 'EUR' })).id;
  }
}

describe('jobs queued before a move', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  beforeAll(async () => {
    fx = await createTenancyFixture({ movesExecutor: false, moveSourceRetentionMs: 60_000 });
    worker = await startTestWorker(fx.config, { queues: [QUEUE], providers: [InvoiceWriter] });
  });
  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  it('run against the tenant\'s new home after the cutover, and nothing lands in the old one', async () => {
    const t = await fx.onboard('pool', 'job-mover');
    const ctx = worker.module.get(TenantContext);
    // Enqueued while the tenant is on pool, held back (delayed) until the move has finished, then
    // released: a fixed short delay raced the move on a busy machine (the job ran before the
    // cutover, legitimately on pool, and its row stayed in the retained source).
    const job = await ctx.run({ tenant: t.placement }, () => worker.module.get(TenantJobProducer).add(QUEUE, 'write', { number: 'AFTER-MOVE-1' }, { delay: 600_000 }));
    const move = await worker.module.get(MovesService).request(t.id, { toTier: 'silo' }, 'test');
    await worker.module.get(MoveExecutor).drain();
    expect((await worker.module.get(MovesService).get(move.id)).phase).toBe('done');
    expect(await job.getState()).toBe('delayed');
    await job.promote();

    const finished = await waitFor(() => job.getState(), (s) => s === 'completed' || s === 'failed', 10_000, 100);
    expect(finished).toBe('completed');
    const silo = (await fx.registry.findById(t.id))!;
    const inNewHome = await fx.ownerQuery<{ number: string }>(`SELECT number FROM shared.invoices WHERE tenant_id = $1`, [t.id], silo.databaseName!);
    const inOldHome = await fx.ownerQuery<{ n: number }>(`SELECT count(*)::int AS n FROM shared.invoices WHERE tenant_id = $1`, [t.id]);
    expect(inNewHome.map((r) => r.number)).toEqual(['AFTER-MOVE-1']);
    expect(inOldHome[0].n).toBe(0);
  });
});
