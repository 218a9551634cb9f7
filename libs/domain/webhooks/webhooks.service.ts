import { Inject, Injectable } from '@nestjs/common';
import { conflict, DEFAULT_PAGE_LIMIT, filterScope, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { PlanLimits } from '#strata/plans';
import { parseWebhookUrl } from './webhook-destination.policy';
import { generateWebhookSecret } from './webhook.signature';
import { WebhookDeliveriesRepository } from './webhook-deliveries.repository';
import { WebhookEndpointsRepository } from './webhook-endpoints.repository';
import { WebhookOutbox } from './webhook.outbox';
import type { DeliveryStatus } from './webhook-delivery.entity';
import {
  toDeliveryView,
  toEndpointView,
  type CreateWebhookDto,
  type RegisteredWebhookView,
  type RotatedSecretView,
  type UpdateWebhookDto,
  type WebhookDeliveryView,
  type WebhookEndpointView,
} from './webhooks.dto';
import { WebhooksErrorCode } from './webhooks.errors';
import { WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT, WEBHOOKS_OPTIONS, type WebhooksOptions } from './webhooks.options';

const webhookNotFound = () => notFound(WebhooksErrorCode.webhookNotFound, 'webhook endpoint not found');
const deliveryNotFound = () => notFound(WebhooksErrorCode.deliveryNotFound, 'webhook delivery not found');
const webhookDisabled = () => conflict(WebhooksErrorCode.webhookDisabled, 'webhook endpoint is disabled; enable it first (PATCH {"enabled": true})');

/** Webhook endpoints of the current tenant; each use case is one tenant transaction. */
@Injectable()
export class WebhooksService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly endpoints: WebhookEndpointsRepository,
    private readonly deliveries: WebhookDeliveriesRepository,
    private readonly outbox: WebhookOutbox,
    @Inject(WEBHOOKS_OPTIONS) private readonly options: WebhooksOptions,
    private readonly limits: PlanLimits,
  ) {}

  /** The URL is checked before any connection is taken; the secret is in this answer and nowhere else. */
  async register(input: CreateWebhookDto): Promise<RegisteredWebhookView> {
    const url = parseWebhookUrl(input.url, this.options.allowPrivateNetworks);
    const events = input.events ?? [...WEBHOOK_EVENT_TYPES];
    const secret = generateWebhookSecret();
    const endpoint = await this.connections.transaction(async () => {
      // Live endpoints count against the plan (a deleted one gives its place back): 402 at the limit.
      await this.limits.reserve('webhookEndpoints');
      return this.endpoints.insert({ url, secret, events });
    });
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

  /** URL rules as at registration, checked before any connection is taken. */
  async update(id: string, input: UpdateWebhookDto): Promise<WebhookEndpointView> {
    const changes: { url?: string; events?: string[]; enabled?: boolean } = {};
    if (input.url !== undefined) changes.url = parseWebhookUrl(input.url, this.options.allowPrivateNetworks);
    if (input.events !== undefined) changes.events = input.events;
    if (input.enabled !== undefined) changes.enabled = input.enabled;
    const endpoint = await this.connections.transaction(() => this.endpoints.update(id, changes));
    if (!endpoint) throw webhookNotFound();
    return toEndpointView(endpoint);
  }

  /**
   * A new secret, shown in this answer only. The old one keeps signing (a second signature) for
   * WEBHOOK_SECRET_GRACE_MS, so receivers switch without dropping a delivery. Rotating again
   * within the grace ends the older secret's grace at once: only the last two secrets ever sign.
   */
  async rotateSecret(id: string): Promise<RotatedSecretView> {
    const secret = generateWebhookSecret();
    const endpoint = await this.connections.transaction(async () =>
      (await this.endpoints.rotateSecret(id, secret, this.options.secretGraceMs)) ? this.endpoints.findById(id) : null,
    );
    if (!endpoint) throw webhookNotFound();
    return { id: endpoint.id, secret, previousSecretExpiresAt: endpoint.previousSecretExpiresAt! };
  }

  /** A `webhook.ping` delivery to this endpoint alone (whatever it subscribes to), through the outbox. */
  async ping(id: string): Promise<WebhookDeliveryView> {
    const delivery = await this.connections.transaction(async () => {
      const endpoint = await this.endpoints.findById(id);
      if (!endpoint) throw webhookNotFound();
      if (!endpoint.enabled) throw webhookDisabled();
      return this.outbox.recordFor(id, { type: WEBHOOK_PING_EVENT, data: { endpointId: id } });
    });
    return toDeliveryView(delivery);
  }

  /**
   * The delivery's event sent again as a new delivery (same event id and payload, so receivers
   * deduplicate it like a retry), whatever the original's status. The original row is left as it was.
   */
  async redeliver(id: string, deliveryId: string): Promise<WebhookDeliveryView> {
    const delivery = await this.connections.transaction(async () => {
      const endpoint = await this.endpoints.findById(id);
      if (!endpoint) throw webhookNotFound();
      const original = await this.deliveries.findById(deliveryId);
      if (!original || original.endpointId !== id) throw deliveryNotFound();
      if (!endpoint.enabled) throw webhookDisabled();
      return this.outbox.recordFor(id, { id: original.eventId, type: original.eventType, data: original.payload }, original.id);
    });
    return toDeliveryView(delivery);
  }

  /** Soft delete: deliveries still queued for it end without a request; its log stays for the retention. */
  async remove(id: string): Promise<void> {
    const deleted = await this.connections.transaction(async () => {
      const gone = await this.endpoints.delete(id);
      if (gone) await this.limits.release('webhookEndpoints');
      return gone;
    });
    if (!deleted) throw webhookNotFound();
  }

  /** Every endpoint's deliveries, newest first; a cursor issued for another status filter is refused. */
  async listTenantDeliveries(limit = DEFAULT_PAGE_LIMIT, cursor?: string, status?: DeliveryStatus): Promise<Page<WebhookDeliveryView>> {
    const scope = filterScope({ status });
    const window = keysetWindow({ limit, cursor }, scope);
    const rows = await this.connections.read(() => this.deliveries.listForTenant(window, status));
    return toPage(rows, limit, toDeliveryView, scope);
  }

  async listDeliveries(id: string, limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<WebhookDeliveryView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(async () =>
      // A deleted endpoint's log still answers until the retention prunes it.
      (await this.endpoints.exists(id, true)) ? this.deliveries.listForEndpoint(id, window) : null,
    );
    if (!rows) throw webhookNotFound();
    return toPage(rows, limit, toDeliveryView);
  }
}
