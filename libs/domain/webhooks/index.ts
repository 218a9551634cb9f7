// Public API of libs/domain/webhooks. The API and the worker mount WebhooksModule; the worker also
// registers WebhookDeliveryProcessor, WebhookRelayProcessor and the relay queue (its cron fans
// relay jobs out per tenant). Deliveries are signed per Standard Webhooks (package standardwebhooks);
// receivers' code (and tests) verify with verifyWebhook or the spec's official library directly.
export { WebhooksModule } from './webhooks.module';
export { WebhooksService } from './webhooks.service';
export { WebhookDeliveryProcessor } from './webhook-delivery.processor';
export { WebhookRelayProcessor } from './webhook-relay.processor';
export { WebhookOutboxRelay, type WebhookRelayResult, type WebhookRelayPayload } from './webhook-outbox.relay';
export { WebhookLogRetention, type WebhookPruneResult } from './webhook-log.retention';
export { WebhookDeliveryService, type WebhookEvent, type WebhookDeliveryResult } from './webhook-delivery.service';
export {
  signWebhook,
  verifyWebhook,
  InvalidWebhookSecretError,
  WEBHOOK_ID_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_TOLERANCE_SECONDS,
  type WebhookSignatureHeaders,
  type ReceivedWebhookHeaders,
} from './webhook.signature';
export { WEBHOOK_DELIVERY_QUEUE, WEBHOOK_RELAY_QUEUE, WEBHOOK_RELAY_JOB, WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT, type WebhookEventType, type WebhooksOptions } from './webhooks.options';
export type { WebhookDeliveryPayload } from './webhook.outbox';
export type { RegisteredWebhookView, WebhookEndpointView, WebhookDeliveryView } from './webhooks.dto';
export type { DeliveryStatus } from './webhook-delivery.entity';
export { WebhooksErrorCode } from './webhooks.errors';
