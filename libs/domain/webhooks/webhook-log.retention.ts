import { Inject, Injectable, Logger } from '@nestjs/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import { WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

export interface WebhookPruneResult {
  /** Deliveries older than WEBHOOK_DELIVERY_RETENTION_MS deleted (at most the relay batch size). */
  deliveries: number;
  /** Endpoints deleted more than the retention ago, removed for good with what was left of their log. */
  endpoints: number;
}

/**
 * The delivery log's retention, for the tenant in context. Runs in each tenant's relay job (the
 * relay cron already visits every active tenant on its own tier), so there is no second fan-out.
 * Bounded per run by WEBHOOK_RELAY_BATCH_SIZE: a large backlog drains over several runs.
 */
@Injectable()
export class WebhookLogRetention {
  private readonly logger = new Logger('WebhookLogRetention');

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
    private readonly endpoints: WebhookEndpointsRepository,
    private readonly deliveries: WebhookDeliveriesRepository,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  async prune(): Promise<WebhookPruneResult> {
    const tenant = this.context.require('pruning the webhook delivery log').tenant;
    const { deliveryRetentionMs, relayBatchSize } = this.options;
    const result = await this.connections.transaction(async () => ({
      deliveries: await this.deliveries.pruneOlderThan(deliveryRetentionMs, relayBatchSize),
      endpoints: await this.endpoints.pruneDeleted(deliveryRetentionMs),
    }));
    if (result.deliveries + result.endpoints > 0) {
      this.logger.log(`tenant ${tenant.slug}: pruned ${result.deliveries} deliveries and ${result.endpoints} deleted endpoints older than ${deliveryRetentionMs} ms`);
    }
    return result;
  }
}
