import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { BulkJobOptions } from 'bullmq';
import { JobsUnavailableError, TenantJobProducer } from '#strata/jobs';
import { TenantConnectionManager } from '#strata/tenancy';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import type { WebhookDelivery } from './webhook-delivery.entity';
import { WEBHOOK_DELIVERY_QUEUE, WEBHOOKS_OPTIONS, type WebhookDeliveryEventType, type WebhookEventType, type WebhooksOptions } from './webhooks.options';

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
 * re-enqueued by WebhookOutboxRelay once it is older than WEBHOOK_RELAY_AFTER_MS. So while Redis
 * is down the write still succeeds (the enqueue fails fast, JobsUnavailableError) and its
 * deliveries wait in the database, not in a request.
 */
@Injectable()
export class WebhookOutbox {
  private readonly logger = new Logger('WebhookOutbox');

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly producer: TenantJobProducer,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  /**
   * Records the event for every endpoint subscribed to it, with the unit's COMMIT: the deliveries'
   * INSERT … SELECT goes in the COMMIT's round trip (commitWith), so the write that emits the event
   * waits for nothing more; their jobs are enqueued after the commit.
   */
  record(type: WebhookEventType, data: object): Promise<void> {
    // transaction() joins the caller's open unit of work; it opens one only when there is none.
    return this.connections.transaction(async () => {
      const statement = this.deliveries.pendingForSubscribers({ id: randomUUID(), type, data });
      let rows: Array<Pick<WebhookDelivery, 'id' | 'eventType'>> = [];
      this.connections.commitWith(() => [
        { ...statement, committed: (made) => (rows = made.map((r) => ({ id: String(r.id), eventType: String(r.event_type) }))) },
      ]);
      this.enqueueAfterCommit(() => rows);
    });
  }

  /**
   * One delivery to one endpoint, whatever it subscribes to: a ping (a new event) or a redelivery
   * (`event.id` of the original, so receivers deduplicate it like a retry). Same outbox path.
   */
  recordFor(endpointId: string, event: { id?: string; type: WebhookDeliveryEventType | string; data: object }, redeliveryOf: string | null = null): Promise<WebhookDelivery> {
    return this.connections.transaction(async () => {
      const [row] = await this.deliveries.insertPending([endpointId], { id: event.id ?? randomUUID(), type: event.type, data: event.data }, redeliveryOf);
      this.enqueueAfterCommit(() => [row]);
      return row;
    });
  }

  /** `rows()` is read after the commit: the outbox's rows are known only then. */
  private enqueueAfterCommit(rows: () => Array<Pick<WebhookDelivery, 'id' | 'eventType'>>): void {
    this.connections.afterCommit(async () => {
      const jobs = rows().map((d) => deliveryJob(d, this.options));
      if (jobs.length === 0) return;
      try {
        await this.producer.addBulk(WEBHOOK_DELIVERY_QUEUE, jobs);
      } catch (err) {
        // Redis is down (its outage is logged once, by the monitor): the rows are committed and
        // pending, and the relay enqueues them once Redis is back. Anything else stays loud.
        if (!(err instanceof JobsUnavailableError)) throw err;
        this.logger.debug(`${jobs.length} deliver${jobs.length === 1 ? 'y' : 'ies'} left to the relay: ${err.reason}`);
      }
    });
  }
}
