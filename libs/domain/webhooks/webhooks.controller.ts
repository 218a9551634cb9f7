import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, UuidPipe, type Page } from '#strata/common';
import { Idempotent } from '#strata/idempotency';
import {
  CreateWebhookDto,
  ListDeliveriesQuery,
  ListTenantDeliveriesQuery,
  ListWebhooksQuery,
  RegisteredWebhookView,
  RotatedSecretView,
  UpdateWebhookDto,
  WebhookDeliveryView,
  WebhookEndpointView,
} from './webhooks.dto';
import { WebhooksErrorCode } from './webhooks.errors';
import { WebhooksService } from './webhooks.service';
import { RequireRole } from '#strata/auth';
import { PlansErrorCode } from '#strata/plans';

// The global tenant guard binds the tenant before any handler runs; @RequireRole says who may call. Path ids
// come first so a malformed id is reported as invalid_id ahead of any complaint about the query.
@Controller('webhooks')
@ApiTags('webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  // A replay answers the signing secret again (stored with the answer, in the tenant's home like
  // the endpoint row itself): the client that lost the first answer has no other way to learn it.
  @Post()
  @RequireRole('admin')
  @Idempotent()
  @ApiCreatedResponse({ type: RegisteredWebhookView, description: 'registered; the only answer that shows the signing secret' })
  @ApiErrors({ 400: [WebhooksErrorCode.invalidWebhookUrl], 402: [PlansErrorCode.planLimitReached] })
  register(@Body() body: CreateWebhookDto): Promise<RegisteredWebhookView> {
    return this.webhooks.register(body);
  }

  @Get()
  @RequireRole('admin')
  @ApiPageResponse(WebhookEndpointView)
  list(@Query() query: ListWebhooksQuery): Promise<Page<WebhookEndpointView>> {
    return this.webhooks.list(query.limit, query.cursor);
  }

  // Before ':id', which would otherwise take `deliveries` for a (malformed) endpoint id.
  @Get('deliveries')
  @RequireRole('admin')
  @ApiPageResponse(WebhookDeliveryView, "one page of the tenant's deliveries across its endpoints (deleted ones' within the retention), newest first")
  tenantDeliveries(@Query() query: ListTenantDeliveriesQuery): Promise<Page<WebhookDeliveryView>> {
    return this.webhooks.listTenantDeliveries(query.limit, query.cursor, query.status);
  }

  @Get(':id')
  @RequireRole('admin')
  @ApiOkResponse({ type: WebhookEndpointView })
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<WebhookEndpointView> {
    return this.webhooks.get(id);
  }

  @Patch(':id')
  @RequireRole('admin')
  @ApiOkResponse({ type: WebhookEndpointView, description: 'updated; `enabled: false` stops new deliveries' })
  @ApiErrors({ 400: [WebhooksErrorCode.invalidWebhookUrl], 404: [WebhooksErrorCode.webhookNotFound] })
  update(@Param('id', UuidPipe) id: string, @Body() body: UpdateWebhookDto): Promise<WebhookEndpointView> {
    return this.webhooks.update(id, body);
  }

  // Not @Idempotent: a replay would show the secret again from the idempotency store, and a second
  // rotation is harmless (the client keeps the last answer; the one before still signs in grace).
  @Post(':id/rotate-secret')
  @RequireRole('admin')
  @HttpCode(200)
  @ApiOkResponse({ type: RotatedSecretView, description: 'the new secret, shown only here; the old one signs too until previousSecretExpiresAt' })
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound] })
  rotateSecret(@Param('id', UuidPipe) id: string): Promise<RotatedSecretView> {
    return this.webhooks.rotateSecret(id);
  }

  @Post(':id/ping')
  @RequireRole('admin')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: WebhookDeliveryView, description: 'a `webhook.ping` delivery to this endpoint was enqueued' })
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound], 409: [WebhooksErrorCode.webhookDisabled] })
  ping(@Param('id', UuidPipe) id: string): Promise<WebhookDeliveryView> {
    return this.webhooks.ping(id);
  }

  @Post(':id/deliveries/:deliveryId/redeliver')
  @RequireRole('admin')
  @HttpCode(202)
  @ApiAcceptedResponse({ type: WebhookDeliveryView, description: 'a new delivery of the same event (same webhook-id) was enqueued' })
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound, WebhooksErrorCode.deliveryNotFound], 409: [WebhooksErrorCode.webhookDisabled] })
  redeliver(@Param('id', UuidPipe) id: string, @Param('deliveryId', UuidPipe) deliveryId: string): Promise<WebhookDeliveryView> {
    return this.webhooks.redeliver(id, deliveryId);
  }

  @Delete(':id')
  @RequireRole('admin')
  @HttpCode(204)
  @ApiNoContentResponse({ description: 'deleted; its delivery log stays readable for WEBHOOK_DELIVERY_RETENTION_MS' })
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound] })
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.webhooks.remove(id);
  }

  @Get(':id/deliveries')
  @RequireRole('admin')
  @ApiPageResponse(WebhookDeliveryView)
  @ApiErrors({ 404: [WebhooksErrorCode.webhookNotFound] })
  deliveries(@Param('id', UuidPipe) id: string, @Query() query: ListDeliveriesQuery): Promise<Page<WebhookDeliveryView>> {
    return this.webhooks.listDeliveries(id, query.limit, query.cursor);
  }
}
