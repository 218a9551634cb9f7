import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsBoolean, IsIn, IsOptional, IsString } from 'class-validator';
import { PageQuery } from '#strata/common';
import { DELIVERY_STATUSES, type WebhookDelivery, type DeliveryStatus } from './webhook-delivery.entity';
import { MAX_WEBHOOK_URL_LENGTH } from './webhook-destination.policy';
import type { WebhookEndpoint } from './webhook-endpoint.entity';
import { WEBHOOK_DELIVERY_EVENT_TYPES, WEBHOOK_EVENT_TYPES } from './webhooks.options';

export class CreateWebhookDto {
  // Only "is a string" here: the URL rules live in parseWebhookUrl(), so that a bad URL answers
  // 400 invalid_webhook_url rather than a generic validation_failed.
  @ApiProperty({
    format: 'uri',
    maxLength: MAX_WEBHOOK_URL_LENGTH,
    description: 'absolute http(s) URL without credentials, on a public address (400 invalid_webhook_url otherwise)',
  })
  @IsString()
  url: string;

  @ApiPropertyOptional({ type: [String], enum: WEBHOOK_EVENT_TYPES, minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true, description: 'default: every event' })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true })
  events?: string[];
}

/** `PATCH /webhooks/:id`: any of the three; an empty body changes nothing. */
export class UpdateWebhookDto {
  @ApiPropertyOptional({ format: 'uri', maxLength: MAX_WEBHOOK_URL_LENGTH, description: 'same rules as at registration (400 invalid_webhook_url)' })
  @IsOptional()
  @IsString()
  url?: string;

  @ApiPropertyOptional({ type: [String], enum: WEBHOOK_EVENT_TYPES, minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true })
  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true })
  events?: string[];

  @ApiPropertyOptional({ description: 'false: the endpoint gets no new deliveries (queued ones still go); true again resumes' })
  @IsOptional()
  @IsBoolean()
  enabled?: boolean;
}

/** `GET /webhooks` and `GET /webhooks/:id/deliveries`: paging only, for now. */
export class ListWebhooksQuery extends PageQuery {}
export class ListDeliveriesQuery extends PageQuery {}

/** GET /webhooks/deliveries: every endpoint's deliveries (deleted endpoints' too, within the retention). */
export class ListTenantDeliveriesQuery extends PageQuery {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES, description: 'only deliveries in this state (e.g. `failed`, to find what to redeliver)' })
  @IsOptional() @IsIn(DELIVERY_STATUSES)
  status?: DeliveryStatus;
}

/** An endpoint as the API shows it: never its secret, never the tenant. */
@ApiSchema({ name: 'WebhookEndpoint' })
export class WebhookEndpointView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty() url: string;
  @ApiProperty({ type: [String], enum: WEBHOOK_EVENT_TYPES }) events: string[];
  @ApiProperty({ description: 'false: no new deliveries' }) enabled: boolean;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
}

/** The answer to a registration: the only time the secret is shown. */
@ApiSchema({ name: 'RegisteredWebhookEndpoint' })
export class RegisteredWebhookView extends WebhookEndpointView {
  @ApiProperty({ description: 'the Standard Webhooks signing secret (`whsec_…`); shown only in this answer (and its idempotent replays)' })
  secret: string;
}

/** The answer to a rotation: the new secret, once, and until when the old one still signs. */
@ApiSchema({ name: 'RotatedWebhookSecret' })
export class RotatedSecretView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ description: 'the new `whsec_…` secret; shown only in this answer' }) secret: string;
  @ApiProperty({ type: String, format: 'date-time', description: 'until then deliveries carry a second signature made with the previous secret' })
  previousSecretExpiresAt: Date;
}

@ApiSchema({ name: 'WebhookDelivery' })
export class WebhookDeliveryView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid', description: 'the endpoint it goes to (redeliver through /webhooks/{endpointId}/deliveries/{id}/redeliver)' }) endpointId: string;
  @ApiProperty({ format: 'uuid' }) eventId: string;
  @ApiProperty({ enum: WEBHOOK_DELIVERY_EVENT_TYPES }) eventType: string;
  @ApiProperty({ enum: DELIVERY_STATUSES }) status: DeliveryStatus;
  @ApiProperty({ type: 'integer', minimum: 0 }) attempts: number;
  @ApiProperty({ type: 'integer', nullable: true }) lastStatusCode: number | null;
  @ApiProperty({ type: String, nullable: true }) lastError: string | null;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) deliveredAt: Date | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'the delivery this one sends again (redeliver)' }) redeliveryOf: string | null;
}

export const toEndpointView = (e: WebhookEndpoint): WebhookEndpointView => ({ id: e.id, url: e.url, events: e.events, enabled: e.enabled, createdAt: e.createdAt });

export const toDeliveryView = (d: WebhookDelivery): WebhookDeliveryView => ({
  id: d.id,
  endpointId: d.endpointId,
  eventId: d.eventId,
  eventType: d.eventType,
  status: d.status,
  attempts: d.attempts,
  lastStatusCode: d.lastStatusCode,
  lastError: d.lastError,
  createdAt: d.createdAt,
  deliveredAt: d.deliveredAt,
  redeliveryOf: d.redeliveryOf,
});
