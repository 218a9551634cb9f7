import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { WebhookEndpoint } from './webhook-endpoint.entity';

/**
 * One query per method, on the open tenant transaction. Every statement names tenant_id from the
 * context explicitly; RLS is the second line, not the only one.
 */
@Injectable()
export class WebhookEndpointsRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  async insert(fields: { url: string; secret: string; events: string[] }): Promise<WebhookEndpoint> {
    const endpoint = this.connections.manager.create(WebhookEndpoint, { ...fields, tenantId: this.context.tenant.id });
    // INSERT … RETURNING fills id and createdAt into `endpoint`.
    await this.connections.manager.insert(WebhookEndpoint, endpoint);
    return endpoint;
  }

  findById(id: string): Promise<WebhookEndpoint | null> {
    return this.connections.manager.findOneBy(WebhookEndpoint, { tenantId: this.context.tenant.id, id });
  }

  exists(id: string): Promise<boolean> {
    return this.connections.manager.existsBy(WebhookEndpoint, { tenantId: this.context.tenant.id, id });
  }

  /** Served by the (tenant_id, created_at DESC, id DESC) index. */
  list(window: KeysetWindow): Promise<WebhookEndpoint[]> {
    const query = this.connections.manager
      .createQueryBuilder(WebhookEndpoint, 'endpoint')
      .where('endpoint.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    return applyKeysetWindow(query, 'endpoint', window).getMany();
  }

  /** Ids of the endpoints subscribed to `eventType` (a tenant has few endpoints: no index needed). */
  async subscribedTo(eventType: string): Promise<string[]> {
    const rows = await this.connections.manager
      .createQueryBuilder(WebhookEndpoint, 'endpoint')
      .select('endpoint.id', 'id')
      .where('endpoint.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere(':eventType = ANY(endpoint.events)', { eventType })
      .getRawMany<{ id: string }>();
    return rows.map((r) => r.id);
  }

  /** False when the tenant has no endpoint with this id. Its deliveries go with it (ON DELETE CASCADE). */
  async delete(id: string): Promise<boolean> {
    const result = await this.connections.manager.delete(WebhookEndpoint, { tenantId: this.context.tenant.id, id });
    return (result.affected ?? 0) > 0;
  }
}
