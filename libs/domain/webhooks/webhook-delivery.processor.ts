import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { WebhookDeliveryService, type WebhookDeliveryResult } from './webhook-delivery.service';
import type { WebhookDeliveryPayload } from './webhook.outbox';
import { WEBHOOK_DELIVERY_CONCURRENCY, WEBHOOK_DELIVERY_QUEUE } from './webhooks.options';

/**
 * Worker side of the outbox: one job per delivery row, run in the tenant context TenantWorkerHost
 * re-entered. Retries and backoff are the job's own options (set when it was enqueued); a thrown
 * Error retries, an UnrecoverableError ends it. Registered by apps/worker, not by WebhooksModule,
 * so the API never consumes the queue.
 */
@Processor(WEBHOOK_DELIVERY_QUEUE, { concurrency: WEBHOOK_DELIVERY_CONCURRENCY })
export class WebhookDeliveryProcessor extends TenantWorkerHost<WebhookDeliveryPayload, WebhookDeliveryResult> {
  constructor(private readonly deliveries: WebhookDeliveryService) {
    super();
  }

  protected handle(job: Job<TenantJobData<WebhookDeliveryPayload>>): Promise<WebhookDeliveryResult> {
    // attemptsMade counts the attempts before this one (BullMQ increments it when one ends).
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    return this.deliveries.deliver(job.data.payload.deliveryId, lastAttempt);
  }
}
