import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { UuidPipe, type Page } from '#strata/common';
import {
  CreateWebhookDto,
  ListDeliveriesQuery,
  ListWebhooksQuery,
  type RegisteredWebhookView,
  type WebhookDeliveryView,
  type WebhookEndpointView,
} from './webhooks.dto';
import { WebhooksService } from './webhooks.service';

// No guard decorators: the global tenant guard binds the tenant before any handler runs. Path ids
// come first so a malformed id is reported as invalid_id ahead of any complaint about the query.
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Post()
  register(@Body() body: CreateWebhookDto): Promise<RegisteredWebhookView> {
    return this.webhooks.register(body);
  }

  @Get()
  list(@Query() query: ListWebhooksQuery): Promise<Page<WebhookEndpointView>> {
    return this.webhooks.list(query.limit, query.cursor);
  }

  @Get(':id')
  get(@Param('id', UuidPipe) id: string): Promise<WebhookEndpointView> {
    return this.webhooks.get(id);
  }

  @Delete(':id')
  @HttpCode(204)
  remove(@Param('id', UuidPipe) id: string): Promise<void> {
    return this.webhooks.remove(id);
  }

  @Get(':id/deliveries')
  deliveries(@Param('id', UuidPipe) id: string, @Query() query: ListDeliveriesQuery): Promise<Page<WebhookDeliveryView>> {
    return this.webhooks.listDeliveries(id, query.limit, query.cursor);
  }
}
