import { Injectable } from '@nestjs/common';
import { IsNull } from 'typeorm';
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
    const endpoint = this.connections.manager.create(WebhookEndpoint, {
      ...fields,
      tenantId: this.context.tenant.id,
      enabled: true,
      previousSecret: null,
      previousSecretExpiresAt: null,
      deletedAt: null,
    });
    // INSERT … RETURNING fills id and createdAt into `endpoint`.
    await this.connections.manager.insert(WebhookEndpoint, endpoint);
    return endpoint;
  }

  /** A live (not deleted) endpoint. */
  findById(id: string): Promise<WebhookEndpoint | null> {
    return this.connections.manager.findOneBy(WebhookEndpoint, { tenantId: this.context.tenant.id, id, deletedAt: IsNull() });
  }

  /** `includeDeleted`: a deleted endpoint counts too (its delivery log is kept for the retention). */
  exists(id: string, includeDeleted = false): Promise<boolean> {
    return this.connections.manager.existsBy(WebhookEndpoint, {
      tenantId: this.context.tenant.id,
      id,
      ...(includeDeleted ? {} : { deletedAt: IsNull() }),
    });
  }

  /** The changed live endpoint, or null when there is none with this id. */
  async update(id: string, changes: Partial<Pick<WebhookEndpoint, 'url' | 'events' | 'enabled'>>): Promise<WebhookEndpoint | null> {
    if (Object.keys(changes).length > 0) {
      await this.connections.manager.update(WebhookEndpoint, { tenantId: this.context.tenant.id, id, deletedAt: IsNull() }, changes);
    }
    return this.findById(id);
  }

  /** The current secret becomes the previous one until `graceMs` from now (database clock). */
  async rotateSecret(id: string, secret: string, graceMs: number): Promise<boolean> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .update(WebhookEndpoint)
      .set({
        previousSecret: () => 'secret',
        previousSecretExpiresAt: () => `now() + CAST(:graceMs AS double precision) * interval '1 millisecond'`,
        secret,
      })
      .setParameter('graceMs', graceMs)
      .where({ tenantId: this.context.tenant.id, id, deletedAt: IsNull() })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /** Served by the (tenant_id, created_at DESC, id DESC) index. */
  list(window: KeysetWindow): Promise<WebhookEndpoint[]> {
    const query = this.connections.manager
      .createQueryBuilder(WebhookEndpoint, 'endpoint')
      .where('endpoint.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere('endpoint.deletedAt IS NULL');
    return applyKeysetWindow(query, 'endpoint', window).getMany();
  }

  /**
   * Soft delete: false when the tenant has no live endpoint with this id. The row stays (secret
   * cleared of its grace) so its delivery log outlives it; pruneDeleted() removes it later.
   */
  async delete(id: string): Promise<boolean> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .update(WebhookEndpoint)
      .set({ deletedAt: () => 'now()', enabled: false, previousSecret: null, previousSecretExpiresAt: null })
      .where({ tenantId: this.context.tenant.id, id, deletedAt: IsNull() })
      .execute();
    return (result.affected ?? 0) > 0;
  }

  /**
   * Hard-deletes endpoints deleted before `olderThanMs` ago (database clock); their remaining
   * deliveries go with them (ON DELETE CASCADE). Returns how many.
   */
  async pruneDeleted(olderThanMs: number): Promise<number> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .delete()
      .from(WebhookEndpoint)
      .where('tenant_id = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere(`deleted_at < now() - CAST(:olderThanMs AS double precision) * interval '1 millisecond'`, { olderThanMs })
      .execute();
    return result.affected ?? 0;
  }
}
