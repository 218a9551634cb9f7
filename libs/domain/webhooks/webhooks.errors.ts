/** Every error code libs/domain/webhooks answers, in one place (OpenAPI and tests list them from here). */
export const WebhooksErrorCode = {
  /** 404: no endpoint with that id in this tenant. */
  webhookNotFound: 'webhook_not_found',
  /** 400: the URL is not an absolute http(s) URL, carries credentials, is too long, or names a non-public address. */
  invalidWebhookUrl: 'invalid_webhook_url',
  /** 404: no delivery with that id for this endpoint. */
  deliveryNotFound: 'webhook_delivery_not_found',
  /** 409: the endpoint is disabled: no ping, no redelivery until it is enabled again. */
  webhookDisabled: 'webhook_disabled',
} as const;
export type WebhooksErrorCode = (typeof WebhooksErrorCode)[keyof typeof WebhooksErrorCode];
