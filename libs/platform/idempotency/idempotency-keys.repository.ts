import { Injectable } from '@nestjs/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';

/** A key's row as another request finds it: always with its answer (it is written before the claim commits). */
export interface StoredIdempotencyKey {
  route: string;
  requestHash: string;
  responseStatus: number;
  /** JSON text, or null when the first request answered without a body. */
  responseBody: string | null;
}

export interface IdempotencyKeyClaim {
  id: string;
  key: string;
  route: string;
  requestHash: string;
}

/**
 * One statement per method, on the open tenant transaction (`idempotency_keys`, migration 0006).
 * Raw SQL rather than an entity: the table belongs to the platform, and no domain module should see
 * it in its DataSource's metadata. Every statement names tenant_id from the context; RLS is the
 * second line.
 */
@Injectable()
export class IdempotencyKeysRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  /**
   * Takes the key for this transaction: true when this request owns it (a new key, or one older than
   * the retention, which is taken over in place), false when a live row exists. A row inserted by a
   * transaction still in flight makes this statement wait until that one commits (then false) or
   * rolls back (then true): the unique index serializes duplicates, no lock of our own.
   */
  async claim(claim: IdempotencyKeyClaim, retentionSeconds: number): Promise<boolean> {
    const rows: unknown[] = await this.connections.manager.query(
      `INSERT INTO idempotency_keys (tenant_id, id, idempotency_key, request_route, request_hash)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tenant_id, id) DO UPDATE
          SET idempotency_key = EXCLUDED.idempotency_key, request_route = EXCLUDED.request_route,
              request_hash = EXCLUDED.request_hash, response_status = NULL, response_body = NULL,
              created_at = date_trunc('milliseconds', now())
        WHERE idempotency_keys.created_at < now() - make_interval(secs => $6)
       RETURNING id`,
      [this.context.tenant.id, claim.id, claim.key, claim.route, claim.requestHash, retentionSeconds],
    );
    return rows.length === 1;
  }

  async find(id: string): Promise<StoredIdempotencyKey | null> {
    const rows: Array<{ route: string; request_hash: string; response_status: number | null; response_body: string | null }> =
      await this.connections.manager.query(
        `SELECT request_route AS route, request_hash, response_status, response_body
           FROM idempotency_keys WHERE tenant_id = $1 AND id = $2`,
        [this.context.tenant.id, id],
      );
    const row = rows[0];
    if (!row) return null;
    if (row.response_status === null) {
      // Only the claiming transaction itself could see this, and it never looks.
      throw new Error(`idempotency key row ${id} has no answer: it was committed without one`);
    }
    return { route: row.route, requestHash: row.request_hash, responseStatus: row.response_status, responseBody: row.response_body };
  }

  /** Records the answer in the claiming transaction, so the key commits with it or not at all. */
  async complete(id: string, status: number, body: string | null): Promise<void> {
    await this.connections.manager.query(
      `UPDATE idempotency_keys SET response_status = $3, response_body = $4 WHERE tenant_id = $1 AND id = $2`,
      [this.context.tenant.id, id, status, body],
    );
  }

  /**
   * Deletes up to `limit` of the tenant's keys older than the retention (database clock), oldest
   * first, through the (tenant_id, created_at DESC, id DESC) index; returns how many.
   */
  async deleteExpired(retentionSeconds: number, limit: number): Promise<number> {
    const rows: Array<{ n: number }> = await this.connections.manager.query(
      `WITH doomed AS (
         SELECT id FROM idempotency_keys
          WHERE tenant_id = $1 AND created_at < now() - make_interval(secs => $2)
          ORDER BY created_at, id LIMIT $3
       ), gone AS (
         DELETE FROM idempotency_keys k USING doomed WHERE k.tenant_id = $1 AND k.id = doomed.id RETURNING 1
       )
       SELECT count(*)::int AS n FROM gone`,
      [this.context.tenant.id, retentionSeconds, limit],
    );
    return rows[0]?.n ?? 0;
  }
}
