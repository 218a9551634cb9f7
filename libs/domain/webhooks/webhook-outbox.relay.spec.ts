import { Logger } from '@nestjs/common';
import type { JobState, Queue } from 'bullmq';
import type { TenantJobProducer } from '#strata/jobs';
import type { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import type { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookOutboxRelay } from './webhook-outbox.relay';
import { resolveWebhooksOptions, WEBHOOK_DELIVERY_QUEUE, type WebhooksOptions } from './webhooks.options';

const TENANT = { id: '11111111-1111-4111-8111-111111111111', slug: 'acme' };

/** The relay against in-memory stand-ins: rows the query returns, job states Redis reports. */
function relayWith(rows: string[], states: Record<string, JobState | 'unknown'>, opts: Partial<WebhooksOptions> = {}, locked: string[] = []) {
  const options: WebhooksOptions = { ...resolveWebhooksOptions({}), ...opts };
  const query = jest.fn(async (_olderThanMs: number, _limit: number) => rows.map((id) => ({ id, eventType: 'invoice.created', createdAt: new Date(0) })));
  const removed: string[] = [];
  const queue = {
    getJobState: jest.fn(async (id: string) => states[id] ?? 'unknown'),
    remove: jest.fn(async (id: string) => {
      if (locked.includes(id)) return 0;
      removed.push(id);
      return 1;
    }),
  };
  const added: Array<{ queue: string; jobs: Array<{ name: string; payload: unknown; opts?: Record<string, unknown> }> }> = [];
  const producer = { addBulk: jest.fn(async (q: string, jobs: (typeof added)[number]['jobs']) => void added.push({ queue: q, jobs })) };
  const relay = new WebhookOutboxRelay(
    { read: (fn: () => unknown) => fn() } as unknown as TenantConnectionManager,
    { require: () => ({ tenant: TENANT }) } as unknown as TenantContext,
    { findPendingOlderThan: query } as unknown as WebhookDeliveriesRepository,
    producer as unknown as TenantJobProducer,
    queue as unknown as Queue,
    options,
  );
  return { relay, query, queue, producer, added, removed, options };
}

describe('WebhookOutboxRelay (unit: what it does with each job state)', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('asks for pending rows older than WEBHOOK_RELAY_AFTER_MS, at most WEBHOOK_RELAY_BATCH_SIZE, and touches Redis not at all when there are none', async () => {
    const { relay, query, queue, producer } = relayWith([], {}, { relayAfterMs: 90_000, relayBatchSize: 7 });
    expect(await relay.relay()).toEqual({ tenantId: TENANT.id, stale: 0, enqueued: 0, inFlight: 0, more: false });
    expect(query).toHaveBeenCalledWith(90_000, 7);
    expect(queue.getJobState).not.toHaveBeenCalled();
    expect(producer.addBulk).not.toHaveBeenCalled();
  });

  it('re-enqueues a row without a job, in one addBulk, with the outbox job (jobId = delivery id, same attempts and backoff)', async () => {
    const { relay, added, options } = relayWith(['d1', 'd2'], {});
    expect(await relay.relay()).toEqual({ tenantId: TENANT.id, stale: 2, enqueued: 2, inFlight: 0, more: false });
    expect(added).toHaveLength(1);
    expect(added[0].queue).toBe(WEBHOOK_DELIVERY_QUEUE);
    expect(added[0].jobs).toEqual(
      ['d1', 'd2'].map((id) => ({
        name: 'invoice.created',
        payload: { deliveryId: id },
        opts: expect.objectContaining({ jobId: id, attempts: options.maxAttempts, backoff: { type: 'exponential', delay: options.backoffMs, jitter: 0.5 } }),
      })),
    );
  });

  it.each(['waiting', 'prioritized', 'delayed', 'active', 'waiting-children'] as const)('leaves a row whose job is %s alone', async (state) => {
    const { relay, producer, queue } = relayWith(['d1'], { d1: state });
    expect(await relay.relay()).toMatchObject({ stale: 1, enqueued: 0, inFlight: 1 });
    expect(queue.remove).not.toHaveBeenCalled();
    expect(producer.addBulk).not.toHaveBeenCalled();
  });

  it.each(['completed', 'failed'] as const)('removes a %s job whose row is still pending before adding it again (BullMQ would ignore the add)', async (state) => {
    const { relay, removed, added } = relayWith(['d1'], { d1: state });
    expect(await relay.relay()).toMatchObject({ stale: 1, enqueued: 1, inFlight: 0 });
    expect(removed).toEqual(['d1']);
    expect(added[0].jobs.map((j) => j.opts?.jobId)).toEqual(['d1']);
  });

  it('counts a finished job that could not be removed (locked: active again) as in flight, and adds nothing for it', async () => {
    const { relay, producer } = relayWith(['d1'], { d1: 'failed' }, {}, ['d1']);
    expect(await relay.relay()).toMatchObject({ stale: 1, enqueued: 0, inFlight: 1 });
    expect(producer.addBulk).not.toHaveBeenCalled();
  });

  it('says `more` when the batch came back full', async () => {
    const { relay } = relayWith(['d1', 'd2'], { d2: 'delayed' }, { relayBatchSize: 2 });
    expect(await relay.relay()).toEqual({ tenantId: TENANT.id, stale: 2, enqueued: 1, inFlight: 1, more: true });
  });
});

describe('webhooks options: relay settings', () => {
  it('defaults to 60 s and 500 rows, and refuses a threshold under a second or a zero batch', () => {
    expect(resolveWebhooksOptions({})).toMatchObject({ relayAfterMs: 60_000, relayBatchSize: 500 });
    expect(resolveWebhooksOptions({ WEBHOOK_RELAY_AFTER_MS: '120000', WEBHOOK_RELAY_BATCH_SIZE: '50' })).toMatchObject({ relayAfterMs: 120_000, relayBatchSize: 50 });
    expect(() => resolveWebhooksOptions({ WEBHOOK_RELAY_AFTER_MS: '10' })).toThrow(/WEBHOOK_RELAY_AFTER_MS must be an integer in 1000\.\./);
    expect(() => resolveWebhooksOptions({ WEBHOOK_RELAY_BATCH_SIZE: '0' })).toThrow(/WEBHOOK_RELAY_BATCH_SIZE/);
  });
});
