import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { WebhookLogRetention } from './webhook-log.retention';
import { WebhookOutboxRelay, type WebhookRelayPayload, type WebhookRelayResult } from './webhook-outbox.relay';
import { WEBHOOK_RELAY_CONCURRENCY, WEBHOOK_RELAY_QUEUE } from './webhooks.options';

/**
 * One tenant's outbox relay run, in that tenant's context (TenantWorkerHost re-entered it, and
 * failed the job unrun if the tenant is no longer active). apps/worker's cron enqueues one job per
 * active tenant; the result (counts) is the job's return value. Registered by apps/worker only.
 */
@Processor(WEBHOOK_RELAY_QUEUE, { concurrency: WEBHOOK_RELAY_CONCURRENCY })
export class WebhookRelayProcessor extends TenantWorkerHost<WebhookRelayPayload, WebhookRelayResult> {
  constructor(
    private readonly relay: WebhookOutboxRelay,
    private readonly retention: WebhookLogRetention,
  ) {
    super();
  }

  protected async handle(_job: Job<TenantJobData<WebhookRelayPayload>>): Promise<WebhookRelayResult> {
    // The same per-tenant visit also applies the delivery log's retention.
    await this.retention.prune();
    return this.relay.relay();
  }
}
