import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsIn, IsOptional, IsString } from 'class-validator';
import { PageQuery } from '#strata/common';
import type { WebhookDelivery, DeliveryStatus } from './webhook-delivery.entity';
import type { WebhookEndpoint } from './webhook-endpoint.entity';
import { WEBHOOK_EVENT_TYPES } from './webhooks.options';

export class CreateWebhookDto {
  // Only "is a string" here: the URL rules live in parseWebhookUrl(), so that a bad URL answers
  // 400 invalid_webhook_url rather than a generic validation_failed.
  @IsString()
  url: string;

  @IsOptional()
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @ArrayUnique()
  @IsIn(WEBHOOK_EVENT_TYPES, { each: true })
  events?: string[];
}

/** `GET /webhooks` and `GET /webhooks/:id/deliveries`: paging only, for now. */
export class ListWebhooksQuery extends PageQuery {}
export class ListDeliveriesQuery extends PageQuery {}

/** An endpoint as the API shows it: never its secret, never the tenant. */
export interface WebhookEndpointView {
  id: string;
  url: string;
  events: string[];
  createdAt: Date;
}

/** The answer to a registration: the only time the secret is shown. */
export interface RegisteredWebhookView extends WebhookEndpointView {
  secret: string;
}

export interface WebhookDeliveryView {
  id: string;
  eventId: string;
  eventType: string;
  status: DeliveryStatus;
  attempts: number;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

export const toEndpointView = (e: WebhookEndpoint): WebhookEndpointView => ({ id: e.id, url: e.url, events: e.events, createdAt: e.createdAt });

export const toDeliveryView = (d: WebhookDelivery): WebhookDeliveryView => ({
  id: d.id,
  eventId: d.eventId,
  eventType: d.eventType,
  status: d.status,
  attempts: d.attempts,
  lastStatusCode: d.lastStatusCode,
  lastError: d.lastError,
  createdAt: d.createdAt,
  deliveredAt: d.deliveredAt,
});
