import { Logger } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SchedulerRegistry } from '@nestjs/schedule';
import type { Job, Queue } from 'bullmq';
import { escapeIdentifier } from 'pg';
import { InvoicesService } from '#strata/invoices';
import { TenantJobProducer, TenantQueuedJobs, type TenantJobData } from '#strata/jobs';
import { TenantContext } from '#strata/tenancy/platform';
import {
  WEBHOOK_DELIVERY_QUEUE,
  WEBHOOK_RELAY_QUEUE,
  WebhooksService,
  type RegisteredWebhookView,
  type WebhookRelayResult,
} from '#strata/webhooks';
import { WEBHOOK_RELAY_CRON_NAME, WebhookRelaySweep } from '../../apps/worker/src/webhook-relay.sweep';
import { createTenancyFixture, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { verifyAsReceiver, overrideEnv, webhookReceivers } from '../support/webhook-receiver';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(90_000);

// Read by WebhooksModule when the worker is built. WEBHOOK_RELAY_AFTER_MS keeps its default (60 s):
// rows are made "old" by moving their created_at back, so the default threshold is what is tested.
const ENV = {
  WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_BACKOFF_MS: '40',
  WEBHOOK_MAX_ATTEMPTS: '3',
  WEBHOOK_TIMEOUT_MS: '2000',
  WEBHOOK_RELAY_BATCH_SIZE: '3',
};

interface DeliveryRow {
  id: string;
  event_id: string;
  status: string;
  attempts: number;
  number: string;
}

describe('webhooks: the outbox relay re-sends pending deliveries whose enqueue was lost (real Postgres, Redis, worker)', () => {
  let fx: TenancyFixture;
  let worker: TestWorker;
  let mod: TestingModule;
  let ctx: TenantContext;
  let deliveryQueue: Queue;
  let relayQueue: Queue;
  let restoreEnv: () => void = () => undefined;
  const tiers: Record<'pool' | 'bridge' | 'silo', TestTenant> = {} as never;
  let removedJob: TestTenant;
  let suspended: TestTenant;
  let delivered: TestTenant;
  let batch: TestTenant;
  const receivers = webhookReceivers();

  beforeAll(async () => {
    restoreEnv = overrideEnv(ENV);
    fx = await createTenancyFixture();
    for (const tier of ['pool', 'bridge', 'silo'] as const) tiers[tier] = await fx.onboard(tier, `relay-${tier}`);
    removedJob = await fx.onboard('pool', 'relay-removed');
    suspended = await fx.onboard('bridge', 'relay-suspended');
    delivered = await fx.onboard('pool', 'relay-delivered');
    batch = await fx.onboard('bridge', 'relay-batch');
    worker = await startTestWorker(fx.config);
    mod = worker.module;
    ctx = mod.get(TenantContext);
    deliveryQueue = worker.queue(WEBHOOK_DELIVERY_QUEUE);
    relayQueue = worker.queue(WEBHOOK_RELAY_QUEUE);
  });

  afterAll(async () => {
    await worker?.close();
    await fx?.close();
    await receivers.closeAll();
    restoreEnv();
  });

  const receiver = (name: string) => receivers.start(name);
  const as = <T>(t: TestTenant, fn: () => Promise<T>) => ctx.run({ tenant: t.placement }, fn);
  const register = (t: TestTenant, url: string): Promise<RegisteredWebhookView> => as(t, () => mod.get(WebhooksService).register({ url }));
  const createInvoice = (t: TestTenant, number: string) => as(t, () => mod.get(InvoicesService).create({ number, amount: 4200, currency: 'EUR' }));
  const deliveriesTable = (t: TestTenant) => `${escapeIdentifier(t.schema)}.webhook_deliveries`;
  /** Owner view (no RLS) of a tenant's delivery rows, oldest first. */
  const rowsOf = (t: TestTenant, endpointId?: string) =>
    fx.ownerQuery<DeliveryRow>(
      `SELECT id, event_id, status, attempts, payload->>'number' AS number FROM ${deliveriesTable(t)}
        WHERE tenant_id = $1 AND ($2::uuid IS NULL OR endpoint_id = $2) ORDER BY created_at, id`,
      [t.id, endpointId ?? null],
      t.database,
    );
  /** Moves rows' created_at back: older than WEBHOOK_RELAY_AFTER_MS (60 s) by `minutes` minutes. */
  const age = (t: TestTenant, ids: string[], minutes = 10) =>
    fx.ownerQuery(`UPDATE ${deliveriesTable(t)} SET created_at = created_at - make_interval(mins => $3) WHERE tenant_id = $1 AND id = ANY($2::uuid[])`, [t.id, ids, minutes], t.database);

  /** Creates an invoice while every enqueue to the delivery queue fails (Redis unreachable at commit). */
  const createInvoiceLosingEnqueue = async (t: TestTenant, number: string) => {
    const producer = mod.get(TenantJobProducer);
    const addBulk = producer.addBulk.bind(producer);
    const lost: string[] = [];
    const spy = jest.spyOn(producer, 'addBulk').mockImplementation(((queue: string, jobs: Parameters<TenantJobProducer['addBulk']>[1]) => {
      if (queue !== WEBHOOK_DELIVERY_QUEUE) return addBulk(queue, jobs);
      lost.push(...jobs.map((j) => String(j.opts?.jobId)));
      return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379 (simulated)'));
    }) as TenantJobProducer['addBulk']);
    // The outbox's after-commit enqueue fails; TenantConnectionManager logs it and the invoice stays committed.
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    try {
      await createInvoice(t, number);
      expect(logged).toHaveBeenCalledWith(expect.stringMatching(/^after-commit callback failed \(the transaction is committed\): Error: connect ECONNREFUSED/));
    } finally {
      spy.mockRestore();
      logged.mockRestore();
    }
    return lost;
  };

  /** One relay run as the cron does it; waits for every tenant's relay job and returns their results. */
  const relay = async () => {
    const report = await mod.get(WebhookRelaySweep).run();
    const jobs = await waitFor(
      async () =>
        ((await relayQueue.getJobs(['completed', 'failed'])) as Array<Job<TenantJobData<unknown>, WebhookRelayResult>>).filter(
          (j) => j.data.envelope.requestId === report.requestId,
        ),
      (js) => js.length >= report.enqueued.length,
      15_000,
    );
    expect(jobs.filter((j) => j.failedReason).map((j) => j.failedReason)).toEqual([]);
    expect(jobs).toHaveLength(report.enqueued.length);
    const results = new Map(jobs.map((j) => [j.data.envelope.tenantId, j.returnvalue]));
    return { report, of: (t: TestTenant) => results.get(t.id) };
  };

  it('registers the relay as a cron job, every 5 minutes by default', async () => {
    // A worker of its own with schedules on, closed at once: the main one runs without, so a tick
    // can never fire in the middle of a test.
    const scheduled = await startTestWorker(fx.config, { schedule: true });
    try {
      const job = scheduled.module.get(SchedulerRegistry).getCronJob(WEBHOOK_RELAY_CRON_NAME);
      expect(job.cronTime.source).toBe('*/5 * * * *');
    } finally {
      await scheduled.close();
    }
  });

  it.each(['pool', 'bridge', 'silo'] as const)(
    'delivers a %s tenant\'s pending delivery whose after-commit enqueue failed, exactly once, after the relay runs — and not while it is younger than the threshold',
    async (tier) => {
      const t = tiers[tier];
      const r = await receiver(`lost-${tier}`);
      const endpoint = await register(t, r.url);
      const lost = await createInvoiceLosingEnqueue(t, `INV-lost-${tier}`);
      const [row] = await rowsOf(t, endpoint.id);
      expect(lost).toEqual([row.id]);
      expect(row).toMatchObject({ status: 'pending', attempts: 0 });
      expect(await deliveryQueue.getJobState(row.id)).toBe('unknown');

      // Younger than WEBHOOK_RELAY_AFTER_MS: its after-commit enqueue could still be in flight.
      const early = await relay();
      expect(early.report.enqueued).toContain(t.id);
      expect(early.of(t)).toEqual({ tenantId: t.id, stale: 0, enqueued: 0, inFlight: 0, more: false });
      expect(await deliveryQueue.getJobState(row.id)).toBe('unknown');
      await sleep(200);
      expect(r.received).toHaveLength(0);

      await age(t, [row.id]);
      const run = await relay();
      expect(run.of(t)).toEqual({ tenantId: t.id, stale: 1, enqueued: 1, inFlight: 0, more: false });
      const [sent] = await waitFor(() => rowsOf(t, endpoint.id), (d) => d[0]?.status === 'delivered', 10_000);
      expect(sent).toMatchObject({ id: row.id, status: 'delivered', attempts: 1 });
      // The same job the outbox would have enqueued: jobId = delivery id, the tenant's envelope.
      const job = (await deliveryQueue.getJob(row.id)) as Job<TenantJobData<{ deliveryId: string }>>;
      expect(job.data).toMatchObject({ envelope: { tenantId: t.id, tier, requestId: run.report.requestId }, payload: { deliveryId: row.id } });
      expect(job.opts).toMatchObject({ attempts: 3 });

      expect(r.received).toHaveLength(1);
      const [req] = r.received;
      expect(req.headers['webhook-id']).toBe(row.event_id);
      expect(req.headers['x-tenant-id']).toBe(t.id);
      // Verified as a receiver does, with the official Standard Webhooks library.
      expect(verifyAsReceiver(req, endpoint.secret)).toMatchObject({ id: row.event_id, type: 'invoice.created', data: { number: `INV-lost-${tier}` } });

      // Exactly once: later runs find nothing to relay.
      const later = await relay();
      expect(later.of(t)).toEqual({ tenantId: t.id, stale: 0, enqueued: 0, inFlight: 0, more: false });
      await sleep(300);
      expect(r.received).toHaveLength(1);
    },
  );

  it('re-sends a pending delivery whose job was removed from Redis, and does not duplicate one whose job is still queued', async () => {
    const t = removedJob;
    const r = await receiver('removed');
    const endpoint = await register(t, r.url);
    await deliveryQueue.pause();
    try {
      await createInvoice(t, 'INV-job-removed');
      await createInvoice(t, 'INV-job-queued');
      const rows = await rowsOf(t, endpoint.id);
      const removed = rows.find((x) => x.number === 'INV-job-removed')!;
      const queued = rows.find((x) => x.number === 'INV-job-queued')!;
      expect(await deliveryQueue.getJobState(queued.id)).toBe('prioritized');
      // The job vanished (a crash, a flushed Redis, an operator's clean-up) while its row is pending.
      expect(await deliveryQueue.remove(removed.id)).toBe(1);
      expect(await deliveryQueue.getJobState(removed.id)).toBe('unknown');
      await age(t, [removed.id, queued.id]);

      const run = await relay();
      expect(run.of(t)).toEqual({ tenantId: t.id, stale: 2, enqueued: 1, inFlight: 1, more: false });
      const jobs = (await deliveryQueue.getJobs(['prioritized', 'waiting'])) as Array<Job<TenantJobData<{ deliveryId: string }>>>;
      const mine = jobs.filter((j) => j.data.envelope.tenantId === t.id);
      expect(mine.map((j) => j.id).sort()).toEqual([removed.id, queued.id].sort());
    } finally {
      await deliveryQueue.resume();
    }
    await waitFor(() => rowsOf(t, endpoint.id), (d) => d.every((x) => x.status === 'delivered'), 10_000);
    await sleep(300);
    expect(r.received).toHaveLength(2);
    expect(new Set(r.received.map((x) => x.headers['webhook-id'])).size).toBe(2);
  });

  it('skips a suspended tenant, whose delivery job waits (parked) during the suspension and is delivered once it is active again', async () => {
    const t = suspended;
    const r = await receiver('suspended');
    const endpoint = await register(t, r.url);
    await deliveryQueue.pause();
    let row: DeliveryRow;
    try {
      await createInvoice(t, 'INV-suspended');
      [row] = await rowsOf(t, endpoint.id);
      await fx.admin.setStatus(t.id, 'suspended');
      await sleep(400); // the worker's registry cache (REGISTRY_CACHE_TTL_MS is 200 in tests)
    } finally {
      await deliveryQueue.resume();
    }
    // The runner parks a suspended tenant's job without running it (libs/platform/jobs); the row stays pending.
    await waitFor(() => deliveryQueue.getJobState(row.id), (s) => s === 'delayed', 10_000);
    expect((await deliveryQueue.getJob(row.id))!.attemptsMade).toBe(0);
    await age(t, [row.id]);

    const whileSuspended = await relay();
    expect(whileSuspended.report.skipped).toContainEqual({ id: t.id, status: 'suspended' });
    expect(whileSuspended.report.enqueued).not.toContain(t.id);
    expect(whileSuspended.of(t)).toBeUndefined();
    expect(await deliveryQueue.getJobState(row.id)).toBe('delayed');
    expect(await rowsOf(t, endpoint.id)).toEqual([expect.objectContaining({ status: 'pending', attempts: 0 })]);
    expect(r.received).toHaveLength(0);

    await fx.admin.setStatus(t.id, 'active');
    await sleep(400);
    // What the admin API does on reactivation (the fixture's admin service has no jobs module): the parked job runs now.
    expect(await mod.get(TenantQueuedJobs).promoteParked(t.id)).toBe(1);
    await waitFor(() => rowsOf(t, endpoint.id), (d) => d[0]?.status === 'delivered', 10_000);
    await sleep(300);
    expect(r.received).toHaveLength(1);
    expect(r.received[0].headers['webhook-id']).toBe(row.event_id);
  });

  it('never re-sends a delivered row: not when its job is gone, not when a stale job for it runs', async () => {
    const t = delivered;
    const r = await receiver('delivered');
    const endpoint = await register(t, r.url);
    await createInvoice(t, 'INV-delivered');
    const [row] = await waitFor(() => rowsOf(t, endpoint.id), (d) => d[0]?.status === 'delivered', 10_000);
    await waitFor(() => deliveryQueue.getJobState(row.id), (s) => s === 'completed');
    expect(await deliveryQueue.remove(row.id)).toBe(1);
    await age(t, [row.id]);

    const run = await relay();
    expect(run.of(t)).toEqual({ tenantId: t.id, stale: 0, enqueued: 0, inFlight: 0, more: false });
    expect(await deliveryQueue.getJobState(row.id)).toBe('unknown');

    // A relay that read the row just before it was delivered enqueues it anyway: the job sends nothing.
    await as(t, () => mod.get(TenantJobProducer).add(WEBHOOK_DELIVERY_QUEUE, 'invoice.created', { deliveryId: row.id }, { jobId: row.id }));
    await waitFor(() => deliveryQueue.getJobState(row.id), (s) => s === 'completed', 10_000);
    expect((await deliveryQueue.getJob(row.id))!.returnvalue).toEqual({ deliveryId: row.id, status: 'delivered', statusCode: 200 });
    await sleep(300);
    expect(r.received).toHaveLength(1);
    expect(await rowsOf(t, endpoint.id)).toEqual([expect.objectContaining({ status: 'delivered', attempts: 1 })]);
  });

  it('takes at most WEBHOOK_RELAY_BATCH_SIZE rows per tenant and run, oldest first, and the rest on the next run', async () => {
    const t = batch;
    const rs = await Promise.all([1, 2, 3, 4].map((n) => receiver(`batch-${n}`)));
    for (const r of rs) await register(t, r.url);
    await createInvoiceLosingEnqueue(t, 'INV-batch');
    const rows = await rowsOf(t);
    expect(rows).toHaveLength(4);
    // One event, one created_at: give them distinct ages, rows[0] oldest.
    for (const [i, row] of rows.entries()) await age(t, [row.id], 40 - i);

    const first = await relay();
    expect(first.of(t)).toEqual({ tenantId: t.id, stale: 3, enqueued: 3, inFlight: 0, more: true });
    expect(await Promise.all(rows.map((x) => deliveryQueue.getJobState(x.id)))).toEqual([
      expect.not.stringMatching(/^unknown$/),
      expect.not.stringMatching(/^unknown$/),
      expect.not.stringMatching(/^unknown$/),
      'unknown',
    ]);
    await waitFor(() => rowsOf(t), (d) => d.filter((x) => x.status === 'delivered').length === 3, 10_000);

    const second = await relay();
    expect(second.of(t)).toEqual({ tenantId: t.id, stale: 1, enqueued: 1, inFlight: 0, more: false });
    await waitFor(() => rowsOf(t), (d) => d.every((x) => x.status === 'delivered'), 10_000);
    await sleep(300);
    expect(rs.map((r) => r.received.length)).toEqual([1, 1, 1, 1]);
  });

  it('runs each scheduled slot once even when every worker instance fires the cron', async () => {
    const sweep = mod.get(WebhookRelaySweep);
    const run = jest.spyOn(sweep, 'run').mockResolvedValue({ requestId: 'x', enqueued: [], skipped: [], failed: [] });
    try {
      const at = new Date('2031-01-01T03:05:00Z');
      const results = await Promise.all([sweep.onSchedule(at), sweep.onSchedule(at), sweep.onSchedule(at)]);
      expect(results.filter((x) => x !== null)).toHaveLength(1);
      expect(run).toHaveBeenCalledTimes(1);
    } finally {
      run.mockRestore();
    }
  });
});
