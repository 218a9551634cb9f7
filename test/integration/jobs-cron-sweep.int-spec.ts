import type { TestingModule } from '@nestjs/testing';
import type { Job, Queue } from 'bullmq';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { TenantJobData } from '#strata/jobs';
import { InvoiceOverdueSweep } from '../../apps/worker/src/invoice-overdue.sweep';
import { INVOICE_OVERDUE_QUEUE, type InvoiceOverduePayload, type InvoiceOverdueResult } from '../../apps/worker/src/invoice-overdue.constants';
import { createTenancyFixture, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

describe('jobs: cron fan-out (invoice overdue sweep: open invoices past dueAt) on real Redis + Postgres', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let mod: TestingModule;
  let queue: Queue;
  const active: Array<{ t: TestTenant; old: number }> = [];
  let suspended: TestTenant;

  beforeAll(async () => {
    fx = await createTenancyFixture();
    // One active tenant per tier with a different number of overdue invoices each (open, due in the
    // past), plus ones that are not: due later, no due date, paid or void past their due date.
    for (const [tier, old] of [['pool', 1], ['bridge', 2], ['silo', 3], ['pool', 0]] as const) {
      const t = await fx.onboard(tier, `sweep-${tier}`);
      await fx.ownerQuery(
        `INSERT INTO ${t.table('invoices')} (tenant_id, number, amount, currency, status, due_at)
         SELECT $1::uuid, 'old-' || g, 100, 'EUR', 'open', now() - interval '1 day' FROM generate_series(1, $2::int) g
         UNION ALL SELECT $1::uuid, 'later', 100, 'EUR', 'open', now() + interval '10 days'
         UNION ALL SELECT $1::uuid, 'undated', 100, 'EUR', 'open', NULL
         UNION ALL SELECT $1::uuid, 'paid', 100, 'EUR', 'paid', now() - interval '1 day'
         UNION ALL SELECT $1::uuid, 'void', 100, 'EUR', 'void', now() - interval '1 day'`,
        [t.id, old],
        t.database,
      );
      active.push({ t, old });
    }
    suspended = await fx.onboard('bridge', 'sweep-suspended');
    await fx.admin.setStatus(suspended.id, 'suspended');
    worker = await startTestWorker(fx.config, { schedule: true });
    mod = worker.module;
    queue = worker.queue(INVOICE_OVERDUE_QUEUE);
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
  });

  it('registers the sweep as a cron job', () => {
    expect(mod.get(SchedulerRegistry).getCronJob('invoice-overdue-sweep')).toBeDefined();
  });

  it('fans out one job per active tenant, skips the suspended one, and counts in each tenant\'s own context', async () => {
    const report = await mod.get(InvoiceOverdueSweep).run(new Date());
    expect(report.requestId).toMatch(/^sweep-/);
    expect(report.enqueued.sort()).toEqual(active.map((a) => a.t.id).sort());
    expect(report.skipped).toEqual([{ id: suspended.id, status: 'suspended' }]);

    const jobs = await waitFor(
      async () => (await queue.getJobs(['completed'])) as Array<Job<TenantJobData<InvoiceOverduePayload>, InvoiceOverdueResult>>,
      (js) => js.length >= active.length,
      20_000,
    );
    expect(await queue.getJobs(['failed'])).toEqual([]);
    expect(jobs).toHaveLength(active.length);
    for (const { t, old } of active) {
      const job = jobs.find((j) => j.data.envelope.tenantId === t.id);
      expect(job).toBeDefined();
      // Enqueued from inside that tenant's context (not as the system tenant), correlated to the sweep.
      expect(job!.data.envelope).toEqual({ tenantId: t.id, tier: t.tier, requestId: report.requestId });
      // Ran in that tenant's context: the handler read the tenant from context, and the count is its own.
      expect(job!.returnvalue).toMatchObject({ tenantId: t.id, overdue: old });
    }
    expect(jobs.some((j) => j.data.envelope.tenantId === suspended.id)).toBe(false);
  });

  it('runs each scheduled slot once even when every worker instance fires the cron', async () => {
    const sweep = mod.get(InvoiceOverdueSweep);
    const run = jest.spyOn(sweep, 'run').mockResolvedValue({ requestId: 'x', asOf: '', enqueued: [], skipped: [], failed: [] });
    const at = new Date('2031-01-01T03:00:00Z');
    const [first, second] = await Promise.all([sweep.onSchedule(at), sweep.onSchedule(at)]);
    expect([first, second].filter((r) => r !== null)).toHaveLength(1);
    expect(run).toHaveBeenCalledTimes(1);
    run.mockRestore();
  });
});
