import { randomBytes, randomUUID } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { getQueueToken } from '@nestjs/bullmq';
import { OnEvent } from '@nestjs/event-emitter';
import { Test, type TestingModule } from '@nestjs/testing';
import type { Queue } from 'bullmq';
import { escapeIdentifier } from 'pg';
import { WebhookVerificationError } from 'standardwebhooks';
import { InvoicesService } from '#strata/invoices';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy/platform';
import {
  verifyWebhook,
  WEBHOOK_DELIVERY_QUEUE,
  WebhooksService,
  type RegisteredWebhookView,
  type WebhookDeliveryView,
  type WebhookEvent,
} from '#strata/webhooks';
import { WorkerModule } from '../../apps/worker/src/worker.module';
import { dropRedisPrefix } from '../support/redis-prefix';
import { createTenancyFixture, rejectionOf, sleep, waitFor, type TenancyFixture, type TestTenant } from '../support/tenancy-fixture';
import { verifyAsReceiver, type ReceivedRequest, overrideEnv, webhookReceivers } from '../support/webhook-receiver';

jest.setTimeout(60_000);

const PREFIX = `strata-test-${randomBytes(4).toString('hex')}`;
// Read by WebhooksModule when the module is built: receivers on 127.0.0.1, retries in milliseconds.
const ENV = { WEBHOOKS_ALLOW_PRIVATE_NETWORKS: 'true', WEBHOOK_BACKOFF_MS: '40', WEBHOOK_MAX_ATTEMPTS: '4', WEBHOOK_TIMEOUT_MS: '2000' };

/** A second listener on the same event that fails on demand: the invoice and its outbox rows must roll back together. */
@Injectable()
class FailingListener {
  @OnEvent('invoice.created', { suppressErrors: false })
  onInvoiceCreated(invoice: { number: string }): void {
    if (invoice.number.startsWith('FAIL-')) throw new Error('listener failed after the outbox insert');
  }
}

describe('webhooks: invoice.created is delivered, signed, to the tenant\'s own endpoints (real Postgres, Redis, worker)', () => {
  let fx: TenancyFixture;
  let mod: TestingModule;
  let ctx: TenantContext;
  let invoices: InvoicesService;
  let webhooks: WebhooksService;
  let queue: Queue;
  let restoreEnv: () => void = () => undefined;
  const tenants: Record<'pool' | 'bridge' | 'silo', TestTenant[]> = { pool: [], bridge: [], silo: [] };
  const receivers = webhookReceivers();

  beforeAll(async () => {
    restoreEnv = overrideEnv(ENV);
    fx = await createTenancyFixture();
    for (const tier of ['pool', 'bridge', 'silo'] as const) {
      for (const n of [1, 2]) tenants[tier].push(await fx.onboard(tier, `wh-${tier}${n}`));
    }
    // The worker process as apps/worker builds it: the producing side (InvoicesService, outbox)
    // and the consuming side (WebhookDeliveryProcessor) on one unique BullMQ prefix.
    mod = await Test.createTestingModule({
      imports: [WorkerModule.forRoot(fx.config, { jobs: { prefix: PREFIX }, schedule: false, extra: { providers: [FailingListener] } })],
    }).compile();
    await mod.init();
    ctx = mod.get(TenantContext);
    invoices = mod.get(InvoicesService);
    webhooks = mod.get(WebhooksService);
    queue = mod.get<Queue>(getQueueToken(WEBHOOK_DELIVERY_QUEUE));
  });

  afterAll(async () => {
    await mod?.close();
    await dropRedisPrefix(fx?.config.redisUrl, PREFIX);
    await fx?.close();
    await receivers.closeAll();
    restoreEnv();
  });

  const receiver = (name: string) => receivers.start(name);
  const as = <T>(t: TestTenant, fn: () => Promise<T>, requestId?: string) => ctx.run({ tenant: t.placement, ...(requestId ? { requestId } : {}) }, fn);
  const register = (t: TestTenant, url: string): Promise<RegisteredWebhookView> => as(t, () => webhooks.register({ url }));
  const createInvoice = (t: TestTenant, number: string, requestId?: string) =>
    as(t, () => invoices.create({ number, amount: 4200, currency: 'EUR' }), requestId);
  const deliveriesOf = (t: TestTenant, endpointId: string): Promise<WebhookDeliveryView[]> =>
    as(t, async () => (await webhooks.listDeliveries(endpointId, 100)).items);
  /** Owner view (no RLS) of a tenant's physical table. */
  const countRows = async (t: TestTenant, table: 'webhook_deliveries' | 'invoices', where = 'true', params: unknown[] = []) => {
    const [row] = await fx.ownerQuery<{ n: string }>(
      `SELECT count(*) AS n FROM ${escapeIdentifier(t.schema)}.${escapeIdentifier(table)} WHERE tenant_id = $1 AND ${where}`,
      [t.id, ...params],
      t.database,
    );
    return Number(row.n);
  };
  /** Standard Webhooks headers only: the event id, this attempt's time (whole seconds), one v1 signature. */
  const expectStandardHeaders = (req: ReceivedRequest, eventId: string) => {
    expect(req.headers['webhook-id']).toBe(eventId);
    expect(req.headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(Math.abs(Number(req.headers['webhook-timestamp']) - Math.floor(req.receivedAt / 1000))).toBeLessThanOrEqual(1);
    expect(req.headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    expect(Object.keys(req.headers).filter((h) => h.startsWith('strata-'))).toEqual([]);
  };
  const jobCount = async () => Object.values(await queue.getJobCounts()).reduce((a, b) => a + b, 0);

  it.each(['pool', 'bridge', 'silo'] as const)(
    "delivers one signed POST per invoice created in a %s tenant, verifiable with that endpoint's secret, to it alone",
    async (tier) => {
      const [a, b] = tenants[tier];
      const [ra, rb] = [await receiver(`${tier}-a`), await receiver(`${tier}-b`)];
      const endpointA = await register(a, ra.url);
      const endpointB = await register(b, rb.url);
      expect(endpointA.secret).not.toBe(endpointB.secret);

      const requestId = `req-${randomUUID()}`;
      const invoice = await createInvoice(a, `INV-${tier}-1`, requestId);
      await waitFor(() => ra.received.length, (n) => n >= 1, 10_000);
      await sleep(200); // nothing else may arrive, at A's receiver or B's
      expect(ra.received).toHaveLength(1);
      expect(rb.received).toHaveLength(0);

      const [req] = ra.received;
      expect(req.method).toBe('POST');
      expect(req.headers['content-type']).toBe('application/json');
      expect(req.headers['x-tenant-id']).toBe(a.id);
      // The request id of the API call that created the invoice, carried through the job envelope.
      expect(req.headers['x-request-id']).toBe(requestId);
      // Verified as a receiver does, with the official library, and with our wrapper.
      const event = verifyAsReceiver(req, endpointA.secret) as WebhookEvent<Record<string, unknown>>;
      expect(event).toEqual(JSON.parse(req.body));
      expect(() => verifyAsReceiver(req, endpointB.secret)).toThrow(WebhookVerificationError);
      expect(verifyWebhook(req.body, req.headers, endpointA.secret)).toBe(true);
      expect(verifyWebhook(req.body, req.headers, endpointB.secret)).toBe(false);
      expectStandardHeaders(req, event.id);
      expect(event).toEqual({
        id: expect.stringMatching(/^[0-9a-f-]{36}$/),
        type: 'invoice.created',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        data: { id: invoice.id, number: `INV-${tier}-1`, amount: 4200, currency: 'EUR', status: 'open', dueAt: null, createdAt: invoice.createdAt.toISOString() },
      });

      const [delivery] = await waitFor(() => deliveriesOf(a, endpointA.id), (d) => d[0]?.status === 'delivered', 5000);
      expect(delivery).toMatchObject({ eventId: event.id, eventType: 'invoice.created', status: 'delivered', attempts: 1, lastStatusCode: 200, lastError: null });
      expect(delivery.deliveredAt).toBeInstanceOf(Date);

      // B's own invoice reaches B's receiver, never A's.
      await createInvoice(b, `INV-${tier}-2`);
      await waitFor(() => rb.received.length, (n) => n >= 1, 10_000);
      await sleep(200);
      expect(rb.received.map((r) => r.headers['x-tenant-id'])).toEqual([b.id]);
      expect(verifyAsReceiver(rb.received[0], endpointB.secret)).toMatchObject({ type: 'invoice.created', data: { number: `INV-${tier}-2` } });
      expect(() => verifyAsReceiver(rb.received[0], endpointA.secret)).toThrow(WebhookVerificationError);
      expect(ra.received).toHaveLength(1);
    },
  );

  it('retries a receiver that answers 500 twice, then 200: three attempts, one event id, delivered', async () => {
    const t = tenants.pool[0];
    const flaky = await receiver('flaky');
    flaky.answer([500, 500], 200);
    const endpoint = await register(t, flaky.url);
    await createInvoice(t, 'INV-retry-1');
    const [delivery] = await waitFor(() => deliveriesOf(t, endpoint.id), (d) => d[0]?.status === 'delivered', 15_000);
    expect(delivery).toMatchObject({ status: 'delivered', attempts: 3, lastStatusCode: 200, lastError: null });
    expect(flaky.received).toHaveLength(3);
    // One webhook-id on every attempt (receivers deduplicate on it), each attempt signed when sent.
    expect(new Set(flaky.received.map((r) => r.headers['webhook-id']))).toEqual(new Set([delivery.eventId]));
    for (const r of flaky.received) {
      expectStandardHeaders(r, delivery.eventId);
      expect(verifyAsReceiver(r, endpoint.secret)).toMatchObject({ id: delivery.eventId, type: 'invoice.created' });
    }
  });

  it('gives up at once on a 4xx the receiver means (410), and after the last attempt on a receiver that keeps failing', async () => {
    const t = tenants.bridge[0];
    const gone = await receiver('gone');
    gone.answer([], 410);
    const down = await receiver('down');
    down.answer([], 503);
    const e410 = await register(t, gone.url);
    const e503 = await register(t, down.url);
    await createInvoice(t, 'INV-fail-1');
    const [d410] = await waitFor(() => deliveriesOf(t, e410.id), (d) => d[0]?.status === 'failed', 15_000);
    const [d503] = await waitFor(() => deliveriesOf(t, e503.id), (d) => d[0]?.status === 'failed', 15_000);
    expect(d410).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: 410, lastError: 'receiver answered HTTP 410' });
    expect(d503).toMatchObject({ status: 'failed', attempts: 4, lastStatusCode: 503 });
    expect(gone.received).toHaveLength(1);
    expect(down.received).toHaveLength(4);
  });

  it('writes no delivery and enqueues nothing when the invoice transaction rolls back', async () => {
    const t = tenants.silo[0];
    const r = await receiver('rollback');
    await register(t, r.url);
    await waitFor(jobCount, () => true);
    const jobsBefore = await jobCount();
    const deliveriesBefore = await countRows(t, 'webhook_deliveries');

    // The caller's unit of work fails after the invoice (and its outbox rows) were written.
    const conn = mod.get(TenantConnectionManager);
    const err = await rejectionOf(
      as(t, () =>
        conn.transaction(async () => {
          await invoices.create({ number: 'INV-rolled-back', amount: 1, currency: 'EUR' });
          throw new Error('caller failed later in the same transaction');
        }),
      ),
    );
    expect(err.message).toBe('caller failed later in the same transaction');
    // A listener failing after the outbox insert rolls the invoice back too (suppressErrors: false).
    const listenerErr = await rejectionOf(createInvoice(t, 'FAIL-listener'));
    expect(listenerErr.message).toBe('listener failed after the outbox insert');

    await sleep(300);
    expect(await countRows(t, 'invoices', `number IN ('INV-rolled-back', 'FAIL-listener')`)).toBe(0);
    expect(await countRows(t, 'webhook_deliveries')).toBe(deliveriesBefore);
    expect(await jobCount()).toBe(jobsBefore);
    expect(r.received).toHaveLength(0);
  });

  it('fails a delivery at once, without sending it, when its endpoint secret is no Standard Webhooks key', async () => {
    const t = tenants.silo[1];
    const r = await receiver('bad-secret');
    const endpoint = await register(t, r.url);
    // A base64url secret (the format before Standard Webhooks): '-' and '_' are not standard base64.
    await fx.ownerQuery(
      `UPDATE ${escapeIdentifier(t.schema)}.webhook_endpoints SET secret = $2 WHERE tenant_id = $1 AND id = $3`,
      [t.id, `whsec_${'-_'.repeat(21)}ab`, endpoint.id],
      t.database,
    );
    await createInvoice(t, 'INV-bad-secret');
    const [delivery] = await waitFor(() => deliveriesOf(t, endpoint.id), (d) => d[0]?.status === 'failed', 10_000);
    expect(delivery).toMatchObject({ status: 'failed', attempts: 1, lastStatusCode: null, lastError: expect.stringMatching(/^webhook secret is not a whsec_ base64 key: .*; register a new endpoint$/) });
    await sleep(200);
    expect(r.received).toHaveLength(0);
  });

  it('ends a delivery whose endpoint was deleted before it ran, without sending it', async () => {
    const t = tenants.pool[1];
    const r = await receiver('deleted');
    const endpoint = await register(t, r.url);
    await queue.pause();
    try {
      await createInvoice(t, 'INV-deleted-endpoint');
      const [job] = await waitFor(() => queue.getJobs(['prioritized', 'waiting']), (j) => j.some((x) => x.data.envelope.tenantId === t.id), 5000);
      await as(t, () => webhooks.remove(endpoint.id));
      await queue.resume();
      const state = await waitFor(() => queue.getJobState(job.id!), (s) => s === 'failed', 10_000);
      expect(state).toBe('failed');
      const failed = (await queue.getJob(job.id!))!;
      expect(failed.attemptsMade).toBe(1);
      expect(failed.failedReason).toMatch(/the delivery or its endpoint was deleted; nothing was sent/);
      expect(r.received).toHaveLength(0);
    } finally {
      await queue.resume();
    }
  });
});
