import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { WebhookDelivery, type DeliveryStatus } from './webhook-delivery.entity';

export interface AttemptRecord {
  status: DeliveryStatus;
  statusCode: number | null;
  error: string | null;
}

/** Same rules as WebhookEndpointsRepository: one query per method, tenant_id named in each. */
@Injectable()
export class WebhookDeliveriesRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  /** One pending delivery of the event per endpoint, in one INSERT; returns them with their ids. */
  async insertPending(endpointIds: string[], event: { id: string; type: string; data: object }, redeliveryOf: string | null = null): Promise<WebhookDelivery[]> {
    const tenantId = this.context.tenant.id;
    const rows = endpointIds.map((endpointId) =>
      this.connections.manager.create(WebhookDelivery, {
        tenantId,
        endpointId,
        eventId: event.id,
        eventType: event.type,
        payload: event.data,
        status: 'pending',
        attempts: 0,
        lastStatusCode: null,
        lastError: null,
        deliveredAt: null,
        redeliveryOf,
      }),
    );
    await this.connections.manager.insert(WebhookDelivery, rows);
    return rows;
  }

  /**
   * One pending delivery of the event per endpoint subscribed to it, as one INSERT … SELECT to send
   * with the unit's COMMIT (TenantConnectionManager.commitWith): the outbox needs no answer before
   * the commit, so a write that emits an event pays no round trip for it. Disabled and deleted
   * endpoints get none. Returns `id, event_type` of the rows it made.
   */
  pendingForSubscribers(event: { id: string; type: string; data: object }): { sql: string; params: unknown[] } {
    return {
      sql: `INSERT INTO webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, payload)
            SELECT e.tenant_id, e.id, $2::uuid, $3, $4::jsonb FROM webhook_endpoints e
             WHERE e.tenant_id = $1::uuid AND $3 = ANY(e.events) AND e.enabled AND e.deleted_at IS NULL
            RETURNING id, event_type`,
      params: [this.context.tenant.id, event.id, event.type, JSON.stringify(event.data)],
    };
  }

  findById(id: string): Promise<WebhookDelivery | null> {
    return this.connections.manager.findOneBy(WebhookDelivery, { tenantId: this.context.tenant.id, id });
  }

  /** Served by the (tenant_id, endpoint_id, created_at DESC, id DESC) index. */
  listForEndpoint(endpointId: string, window: KeysetWindow): Promise<WebhookDelivery[]> {
    const query = this.connections.manager
      .createQueryBuilder(WebhookDelivery, 'delivery')
      .where('delivery.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere('delivery.endpointId = :endpointId', { endpointId });
    return applyKeysetWindow(query, 'delivery', window).getMany();
  }

  /**
   * Every delivery of the tenant, newest first, optionally in one state. Served by the
   * (tenant_id, created_at) index of 0007 read backwards; ties on the timestamp are ordered by id.
   */
  listForTenant(window: KeysetWindow, status?: DeliveryStatus): Promise<WebhookDelivery[]> {
    const query = this.connections.manager
      .createQueryBuilder(WebhookDelivery, 'delivery')
      .where('delivery.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    if (status) query.andWhere('delivery.status = :status', { status });
    return applyKeysetWindow(query, 'delivery', window).getMany();
  }

  /**
   * The outbox relay's read: `pending` rows created more than `olderThanMs` ago, oldest first, at
   * most `limit`, without their payloads. Age is measured on the database clock (created_at is the
   * database's now() of the inserting transaction), so an app server's clock skew cannot make a
   * fresh row look old. Served by the partial index webhook_deliveries_pending_created_idx (0004).
   */
  findPendingOlderThan(olderThanMs: number, limit: number): Promise<Array<Pick<WebhookDelivery, 'id' | 'eventType' | 'createdAt'>>> {
    return this.connections.manager
      .createQueryBuilder(WebhookDelivery, 'delivery')
      .select(['delivery.id', 'delivery.eventType', 'delivery.createdAt'])
      .where('delivery.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      // A literal, not a parameter: the partial index's predicate must match the query's.
      .andWhere(`delivery.status = 'pending'`)
      .andWhere(`delivery.createdAt < now() - CAST(:olderThanMs AS integer) * interval '1 millisecond'`, { olderThanMs })
      .orderBy('delivery.createdAt', 'ASC')
      .addOrderBy('delivery.id', 'ASC')
      .limit(limit)
      .getMany();
  }

  /**
   * Deletes the tenant's deliveries created more than `olderThanMs` ago (database clock), at most
   * `limit` of them, oldest first; returns how many. Served by webhook_deliveries_tenant_created_idx.
   */
  async pruneOlderThan(olderThanMs: number, limit: number): Promise<number> {
    const tenantId = this.context.tenant.id;
    const rows: unknown = await this.connections.manager.query(
      `DELETE FROM webhook_deliveries WHERE tenant_id = $1 AND id IN (
         SELECT id FROM webhook_deliveries
          WHERE tenant_id = $1 AND created_at < now() - CAST($2 AS double precision) * interval '1 millisecond'
          ORDER BY created_at LIMIT $3)`,
      [tenantId, olderThanMs, limit],
    );
    // node-postgres through TypeORM answers [rows, affected] for a DELETE.
    return Array.isArray(rows) && typeof rows[1] === 'number' ? rows[1] : 0;
  }

  /** Counts one attempt and records its outcome; a delivered row is never changed again. */
  async recordAttempt(id: string, outcome: AttemptRecord): Promise<void> {
    await this.connections.manager
      .createQueryBuilder()
      .update(WebhookDelivery)
      .set({
        status: outcome.status,
        attempts: () => 'attempts + 1',
        lastStatusCode: outcome.statusCode,
        lastError: outcome.error,
        ...(outcome.status === 'delivered' ? { deliveredAt: () => 'now()' } : {}),
      })
      .where({ tenantId: this.context.tenant.id, id })
      .andWhere("status <> 'delivered'")
      .execute();
  }

  /** Ends a delivery that can no longer be sent, without counting an attempt. */
  async markFailed(id: string, error: string): Promise<void> {
    await this.connections.manager.update(WebhookDelivery, { tenantId: this.context.tenant.id, id, status: 'pending' }, { status: 'failed', lastError: error });
  }
}
