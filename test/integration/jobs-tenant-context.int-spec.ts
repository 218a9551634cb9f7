import { Injectable } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import type { TestingModule } from '@nestjs/testing';
import type { Job, Queue } from 'bullmq';
import { InvoicesService } from '#strata/invoices';
import { SystemTenantRunner, TenantJobProducer, TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { MissingTenantContextError, TenantConnectionManager, TenantContext } from '#strata/tenancy/platform';
import { createTenancyFixture, rejectionOf, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

const QUEUE = 'jobs-test-echo';

interface Seen {
  jobId: string;
  contextTenant: string;
  envelopeTenant: string;
  requestId: string;
  userId?: string;
  system: boolean;
}

/** Records which tenant context it ran in and writes an invoice through the HTTP code path. */
@Injectable()
@Processor(QUEUE, { concurrency: 8 })
class EchoProcessor extends TenantWorkerHost<{ number: string }, string> {
  static seen = new Map<string, Seen>();
  constructor(
    private readonly context: TenantContext,
    private readonly invoices: InvoicesService,
  ) {
    super();
  }

  protected async handle(job: Job<TenantJobData<{ number: string }>>): Promise<string> {
    const scope = this.context.require('test');
    // Yield so jobs of different tenants interleave inside the worker.
    await new Promise((r) => setTimeout(r, Math.random() * 10));
    const invoice = await this.invoices.create({ number: job.data.payload.number, amount: 100, currency: 'EUR' });
    EchoProcessor.seen.set(job.id!, {
      jobId: job.id!,
      contextTenant: this.context.tenant.id,
      envelopeTenant: job.data.envelope.tenantId,
      requestId: scope.requestId,
      userId: scope.userId,
      system: Boolean(scope.system),
    });
    return invoice.id;
  }
}

describe('jobs: tenant context across the worker boundary (real Redis + Postgres)', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let mod: TestingModule;
  let producer: TenantJobProducer;
  let ctx: TenantContext;
  let queue: Queue;
  const tenants: TestTenant[] = [];

  beforeAll(async () => {
    fx = await createTenancyFixture();
    for (const tier of ['pool', 'bridge', 'silo', 'pool', 'bridge', 'silo'] as const) tenants.push(await fx.onboard(tier, `job-${tier}`));
    worker = await startTestWorker(fx.config, { queues: [QUEUE], providers: [EchoProcessor] });
    mod = worker.module;
    producer = mod.get(TenantJobProducer);
    ctx = mod.get(TenantContext);
    queue = worker.queue(QUEUE);
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  const enqueueAs = (t: TestTenant, number: string, userId?: string) =>
    ctx.run({ tenant: t.placement, ...(userId ? { userId } : {}) }, async () => ({
      job: await producer.add(QUEUE, 'echo', { number }),
      requestId: ctx.require().requestId,
    }));

  const waitForJobs = (ids: string[]) => waitFor(() => ids.filter((id) => EchoProcessor.seen.has(id)).length, (n) => n === ids.length, 20_000);

  /** Every job-written invoice, from every physical table the tenants live in (owner view, no RLS). */
  async function allJobInvoices(): Promise<Array<{ place: string; tenant_id: string; number: string }>> {
    const places = new Map<string, TestTenant>();
    for (const t of tenants) places.set(`${t.database}/${t.schema}`, t);
    const rows: Array<{ place: string; tenant_id: string; number: string }> = [];
    for (const [place, t] of places) {
      const found = await fx.ownerQuery<{ tenant_id: string; number: string }>(
        `SELECT tenant_id, number FROM ${t.table('invoices')} WHERE number LIKE 'job-%'`,
        [],
        t.database,
      );
      rows.push(...found.map((r) => ({ place, ...r })));
    }
    return rows;
  }

  it.each(['pool', 'bridge', 'silo'] as const)('runs a job enqueued in a %s tenant\'s context as that tenant, writing only its own table', async (tier) => {
    const a = tenants.find((t) => t.tier === tier)!;
    const userId = '7f1f2f3f-0000-4000-8000-000000000001';
    const { job, requestId } = await enqueueAs(a, `job-single-${tier}`, userId);
    expect(job.data.envelope).toEqual({ tenantId: a.id, tier, requestId, userId });
    await waitForJobs([job.id!]);
    expect(EchoProcessor.seen.get(job.id!)).toEqual({
      jobId: job.id,
      contextTenant: a.id,
      envelopeTenant: a.id,
      requestId,
      userId,
      system: false,
    });
    const rows = (await allJobInvoices()).filter((r) => r.number === `job-single-${tier}`);
    expect(rows).toEqual([{ place: `${a.database}/${a.schema}`, tenant_id: a.id, number: `job-single-${tier}` }]);
  });

  it('refuses to enqueue without a tenant context (fails closed before Redis)', async () => {
    const before = await queue.count();
    const err = await rejectionOf(producer.add(QUEUE, 'echo', { number: 'job-orphan' }));
    expect(err).toBeInstanceOf(MissingTenantContextError);
    expect(err.message).toMatch(/enqueueing echo on queue jobs-test-echo/);
    expect(await queue.count()).toBe(before);
  });

  it('fails a job without a tenant envelope at once, without retries', async () => {
    // Added straight through BullMQ, as a careless producer would; three attempts allowed.
    const job = await queue.add('echo', { number: 'job-no-envelope' }, { attempts: 3, backoff: { type: 'fixed', delay: 10 } });
    const state = await waitFor(() => queue.getJobState(job.id!), (s) => s === 'failed', 10_000);
    expect(state).toBe('failed');
    const failed = (await queue.getJob(job.id!))!;
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/no tenant envelope/);
    expect(failed.failedReason).toMatch(/TenantJobProducer\.add\(\) inside a tenant context/);
    expect(EchoProcessor.seen.has(job.id!)).toBe(false);
    // A forged envelope naming no real tenant is refused the same way.
    const forged = await queue.add('echo', { envelope: { tenantId: '11111111-2222-4333-8444-555555555555', tier: 'pool', requestId: 'req-12345678' }, payload: { number: 'job-forged' } }, { attempts: 3 });
    await waitFor(() => queue.getJobState(forged.id!), (s) => s === 'failed', 10_000);
    const f2 = (await queue.getJob(forged.id!))!;
    expect(f2.attemptsMade).toBe(1);
    expect(f2.failedReason).toMatch(/unknown or deleted/);
    expect((await allJobInvoices()).filter((r) => r.number === 'job-no-envelope' || r.number === 'job-forged')).toEqual([]);
  });

  // Suspended tenants' jobs are parked, not failed: test/integration/jobs-suspension.int-spec.ts.
  it('fails (does not run) a job of a tenant that is still provisioning, without retries', async () => {
    const s = await fx.onboard('pool', 'job-provisioning');
    await fx.ownerQuery(`UPDATE control.tenants SET status = 'provisioning' WHERE id = $1`, [s.id]);
    const { job } = await enqueueAs(s, 'job-of-provisioning');
    await waitFor(() => queue.getJobState(job.id!), (st) => st === 'failed', 10_000);
    const failed = (await queue.getJob(job.id!))!;
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/is provisioning; the job was not run/);
    expect(EchoProcessor.seen.has(job.id!)).toBe(false);
  });

  it('keeps interleaved concurrent jobs of six tenants on all tiers each in their own tenant', async () => {
    const PER_TENANT = 8;
    // Round-robin enqueue from concurrent contexts, so jobs of all tenants are interleaved in the queue.
    const enqueued = await Promise.all(
      Array.from({ length: PER_TENANT }, (_, k) =>
        Promise.all(tenants.map((t, i) => enqueueAs(t, `job-mix-${i}-${k}`).then(({ job }) => ({ job, owner: t })))),
      ),
    ).then((rounds) => rounds.flat());
    await waitForJobs(enqueued.map((e) => e.job.id!));
    for (const { job, owner } of enqueued) {
      const seen = EchoProcessor.seen.get(job.id!)!;
      expect({ ctx: seen.contextTenant, env: seen.envelopeTenant }).toEqual({ ctx: owner.id, env: owner.id });
    }
    const rows = (await allJobInvoices()).filter((r) => r.number.startsWith('job-mix-'));
    expect(rows).toHaveLength(tenants.length * PER_TENANT);
    for (const r of rows) {
      const owner = tenants[Number(r.number.split('-')[2])];
      expect({ number: r.number, tenant: r.tenant_id, place: r.place }).toEqual({
        number: r.number,
        tenant: owner.id,
        place: `${owner.database}/${owner.schema}`,
      });
    }
  });

  it('runs cross-tenant work as the system tenant, which cannot open a tenant transaction', async () => {
    const system = mod.get(SystemTenantRunner);
    const conn = mod.get(TenantConnectionManager);
    await system.runAsSystem(async () => {
      const scope = ctx.require();
      expect(scope).toMatchObject({ system: true, tenant: { id: '00000000-0000-0000-0000-000000000000', slug: 'system' } });
      const err = await rejectionOf(conn.transaction(async () => 'must not run'));
      expect(err.message).toMatch(/system tenant has no tenant data/);
      expect(() => conn.manager).toThrow(/no open tenant transaction/);
      // A system job is refused by a tenant-only processor.
      const job = await producer.add(QUEUE, 'echo', { number: 'job-system' });
      expect(job.data.envelope).toMatchObject({ tenantId: '00000000-0000-0000-0000-000000000000', tier: 'system', system: true });
      await waitFor(() => queue.getJobState(job.id!), (s) => s === 'failed', 10_000);
      expect((await queue.getJob(job.id!))!.failedReason).toMatch(/only runs tenant jobs/);
    });
    expect(ctx.current()).toBeUndefined();
  });
});
