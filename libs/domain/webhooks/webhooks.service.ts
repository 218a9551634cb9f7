import { Inject, Injectable } from '@nestjs/common';
import { DEFAULT_PAGE_LIMIT, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { parseWebhookUrl } from './webhook-destination.policy';
import { generateWebhookSecret } from './webhook.signature';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import {
  toDeliveryView,
  toEndpointView,
  type CreateWebhookDto,
  type RegisteredWebhookView,
  type WebhookDeliveryView,
  type WebhookEndpointView,
} from './webhooks.dto';
import { WEBHOOK_EVENT_TYPES, WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

const webhookNotFound = () => notFound('webhook_not_found', 'webhook endpoint not found');

/** Webhook endpoints of the current tenant; each use case is one tenant transaction. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly endpoints: WebhookEndpointsRepository,
    private readonly deliveries: WebhookDeliveriesRepository,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
  ) {}

  /** The URL is checked before any connection is taken; the secret is in this answer and nowhere else. */
  async register(input: CreateWebhookDto): Promise<RegisteredWebhookView> {
    const url = parseWebhookUrl(input.url, this.options.allowPrivateNetworks);
    const events = input.events ?? [...WEBHOOK_EVENT_TYPES];
    const secret = generateWebhookSecret();
    const endpoint = await this.connections.transaction(() => this.endpoints.insert({ url, secret, events }));
    return { ...toEndpointView(endpoint), secret };
  }

  /** Newest first. A malformed cursor is refused before any connection is taken. */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<WebhookEndpointView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(() => this.endpoints.list(window));
    return toPage(rows, limit, toEndpointView);
  }

  async get(id: string): Promise<WebhookEndpointView> {
    const endpoint = await this.connections.read(() => this.endpoints.findById(id));
    if (!endpoint) throw webhookNotFound();
    return toEndpointView(endpoint);
  }

  /** Deliveries still queued for it find no row and end without a request. */
  async remove(id: string): Promise<void> {
    const deleted = await this.connections.transaction(() => this.endpoints.delete(id));
    if (!deleted) throw webhookNotFound();
  }

  async listDeliveries(id: string, limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<WebhookDeliveryView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(async () =>
      (await this.endpoints.exists(id)) ? this.deliveries.listForEndpoint(id, window) : null,
    );
    if (!rows) throw webhookNotFound();
    return toPage(rows, limit, toDeliveryView);
  }
}
