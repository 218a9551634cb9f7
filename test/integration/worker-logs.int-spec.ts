import type { Job } from 'bullmq';
import { setObservabilityDefaults } from '#strata/observability';
import type { TenantJobData } from '#strata/jobs';
import { InvoiceOverdueSweep } from '../../apps/worker/src/invoice-overdue.sweep';
import { INVOICE_OVERDUE_QUEUE, type InvoiceOverduePayload } from '../../apps/worker/src/invoice-overdue.constants';
import { createTenancyFixture, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(60_000);

type Line = Record<string, unknown>;

describe('worker logs: every job and cron line carries the tenant of its context', () => {
  const lines: Line[] = [];
  let fx: TenancyFixture;
  let worker: TestWorker;
  const tenants: TestTenant[] = [];

  beforeAll(async () => {
    // Before the worker is built: its ObservabilityModule takes these process-wide defaults.
    setObservabilityDefaults({ level: 'info', destination: { write: (s: string) => void lines.push(JSON.parse(s)) } });
    fx = await createTenancyFixture();
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants.push(await fx.onboard(tier, `wlog-${tier}`));
    worker = await startTestWorker(fx.config);
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
    setObservabilityDefaults({});
  });

  it('labels the cron fan-out as the system tenant and each tenant job with its own tenant and the sweep request id', async () => {
    const report = await worker.module.get(InvoiceOverdueSweep).run(new Date());
    const queue = worker.queue(INVOICE_OVERDUE_QUEUE);
    await waitFor(
      async () => (await queue.getJobs(['completed'])) as Array<Job<TenantJobData<InvoiceOverduePayload>>>,
      (jobs) => tenants.every((t) => jobs.some((j) => j.data.envelope.tenantId === t.id)),
      20_000,
    );

    const sweep = lines.find((l) => String(l.msg).includes('enqueued') && l.requestId === report.requestId);
    expect(sweep).toMatchObject({ tenantSlug: 'system', tenantTier: 'system', requestId: report.requestId });

    for (const t of tenants) {
      const line = lines.find((l) => l.tenantId === t.id && String(l.msg).includes('invoice(s) past their due date'));
      expect(line).toMatchObject({ tenantId: t.id, tenantSlug: t.slug, tenantTier: t.tier, requestId: report.requestId });
      expect(String(line!.msg)).toContain(t.slug);
    }
    // No job line claims a tenant other than the one whose job wrote it.
    const jobLines = lines.filter((l) => String(l.msg).includes('invoice(s) past their due date'));
    for (const l of jobLines) expect(String(l.msg)).toContain(String(l.tenantSlug));
  });
});
