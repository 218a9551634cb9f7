import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import type { BulkJobOptions } from 'bullmq';
import { TenantJobProducer } from '#strata/jobs';
import { TenantConnectionManager } from '#strata/tenancy';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import type { WebhookDelivery } from './webhook-delivery.entity';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import { WEBHOOK_DELIVERY_QUEUE, WEBHOOKS_OPTIONS, type WebhookEventType, type WebhooksOptions } from './webhooks.options';

/** What a delivery job carries besides its tenant envelope: only the row to send. */
export interface WebhookDeliveryPayload {
  deliveryId: string;
}

/**
 * The job that sends one delivery row: named after its event type, jobId = delivery id. The outbox
 * and the relay enqueue exactly this, so a relayed delivery retries like a first one.
 */
export function deliveryJob(
  delivery: Pick<WebhookDelivery, 'id' | 'eventType'>,
  options: Pick<WebhooksOptions, 'maxAttempts' | 'backoffMs'>,
): { name: string; payload: WebhookDeliveryPayload; opts: Omit<BulkJobOptions, 'priority' | 'lifo'> } {
  return {
    name: delivery.eventType,
    payload: { deliveryId: delivery.id },
    opts: {
      // BullMQ ignores an add whose jobId exists: enqueueing a delivery twice sends it once.
      jobId: delivery.id,
      attempts: options.maxAttempts,
      // 2^(n-1) × base, each wait drawn from its upper half so that retries of many deliveries
      // failing together (a receiver outage) spread out instead of returning in lockstep.
      backoff: { type: 'exponential', delay: options.backoffMs, jitter: 0.5 },
      // The delivery row is the record; Redis keeps finished jobs only for inspection.
      removeOnComplete: { age: 24 * 3600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3600 },
    },
  };
}

/**
 * The transactional outbox. record() writes one pending delivery per subscribed endpoint in the
 * unit of work that is already open (the invoice's), so the event and its cause commit or roll
 * back together; the jobs are enqueued only after that commit. No commit, no job; no job lost
 * either: a pending row whose enqueue failed (Redis down, a crash right after COMMIT) is
 * re-enqueued by WebhookOutboxRelay once it is older than WEBHOOK_RELAY_AFTER_MS.
 */
@Injectable()
export class WebhookOutbox {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly endpoints: WebhookEndpointsRepository,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly producer: TenantJobProducer,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  /** Returns how many deliveries it recorded (0 when no endpoint of the tenant subscribes). */
  record(type: WebhookEventType, data: object): Promise<number> {
    // transaction() joins the caller's open unit of work; it opens one only when there is none.
    return this.connections.transaction(async () => {
      const endpointIds = await this.endpoints.subscribedTo(type);
      if (endpointIds.length === 0) return 0;
      const rows = await this.deliveries.insertPending(endpointIds, { id: randomUUID(), type, data });
      const jobs = rows.map((d) => deliveryJob(d, this.options));
      this.connections.afterCommit(async () => {
        await this.producer.addBulk(WEBHOOK_DELIVERY_QUEUE, jobs);
      });
      return rows.length;
    });
  }
}
