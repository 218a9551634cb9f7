import { Module } from '@nestjs/common';
import { JobsModule } from '#strata/jobs';
import { TenancyModule } from '#strata/tenancy';
import { IdempotencyModule } from '#strata/idempotency';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookDelivery } from './webhook-delivery.entity';
import { WebhookDeliveryService } from './webhook-delivery.service';
import { WebhookEgress } from './webhook-egress.dispatcher';
import { WebhookEndpoint } from './webhook-endpoint.entity';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import { WebhookEventsListener } from './webhook-events.listener';
import { WebhookOutbox } from './webhook.outbox';
import { WebhookOutboxRelay } from './webhook-outbox.relay';
import { WebhookLogRetention } from './webhook-log.retention';
import { WebhooksController } from './webhooks.controller';
import { resolveWebhooksOptions, WEBHOOK_DELIVERY_QUEUE, WEBHOOKS_OPTIONS } from './webhooks.options';
import { WebhooksService } from './webhooks.service';

/**
 * Endpoints API, the outbox listener and the delivery service. Mounted by the API and the worker
 * alike (an invoice created by a job emits webhooks too); only the worker adds
 * WebhookDeliveryProcessor and WebhookRelayProcessor (and registers WEBHOOK_RELAY_QUEUE). Needs
 * EventEmitterModule, HttpClientModule and JobsModule.forRoot().
 */
@Module({
  imports: [TenancyModule.forFeature([WebhookEndpoint, WebhookDelivery]), IdempotencyModule, JobsModule.registerQueue(WEBHOOK_DELIVERY_QUEUE)],
  controllers: [WebhooksController],
  providers: [
    { provide: WEBHOOKS_OPTIONS, useFactory: () => resolveWebhooksOptions(process.env) },
    WebhookEndpointsRepository,
    WebhookDeliveriesRepository,
    WebhooksService,
    WebhookOutbox,
    WebhookEventsListener,
    WebhookEgress,
    WebhookDeliveryService,
    WebhookOutboxRelay,
    WebhookLogRetention,
  ],
  exports: [WebhooksService, WebhookDeliveryService, WebhookOutboxRelay, WebhookLogRetention, WEBHOOKS_OPTIONS],
})
export class WebhooksModule {}
