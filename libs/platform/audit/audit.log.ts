import { Inject, Injectable } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import type { DataSource, EntityManager } from 'typeorm';
import { filterScope, keysetWindow, toPage, type Page } from '#strata/common';
import { CONTROL_DATA_SOURCE, type AuditAppended, type AuditEntryInput, type AuditTrail } from '#strata/control-plane';
import type { TenantScope } from '#strata/tenancy/platform';
import type { AuditEntryView, AuditFilter } from './audit.dto';
import { auditError, AuditErrorCode } from './audit.errors';

interface AuditRow {
  seq: string;
  id: string;
  created_at: Date;
  actor_type: AuditEntryView['actor']['type'];
  actor_id: string | null;
  on_behalf_of: string | null;
  tenant_id: string | null;
  action: string;
  request_id: string | null;
  details: Record<string, unknown>;
  hash: string;
}

const view = (r: AuditRow): AuditEntryView => ({
  seq: Number(r.seq),
  id: r.id,
  createdAt: r.created_at.toISOString(),
  action: r.action,
  actor: { type: r.actor_type, id: r.actor_id },
  onBehalfOf: r.on_behalf_of,
  tenantId: r.tenant_id,
  requestId: r.request_id,
  details: r.details,
  hash: r.hash,
});

/**
 * The audit log: appends through `control.audit_append` (migrations/control/0006), which serializes
 * appends on one advisory lock and computes the hash in SQL, so the chain has a single definition
 * that `npm run audit -- verify` recomputes. An append joined to a caller's transaction holds that
 * lock until the caller commits: audited admin actions commit one after another (they are rare;
 * per-request entries are written on their own, after the answer).
 */
@Injectable()
export class AuditLog implements AuditTrail {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly cls: ClsService,
  ) {}

  async record(entry: AuditEntryInput, em?: EntityManager): Promise<AuditAppended> {
    const scope = this.cls.isActive() ? (this.cls.get('scope') as TenantScope | undefined) : undefined;
    let { actor, onBehalfOf } = entry;
    // A user's action under impersonation is the operator's, on the user's behalf: both are kept.
    if (scope?.impersonatedBy && actor.type === 'user' && actor.id === scope.userId) {
      onBehalfOf ??= actor.id;
      actor = { type: 'operator', id: scope.impersonatedBy };
    }
    const requestId = entry.requestId !== undefined ? entry.requestId : this.cls.isActive() ? (this.cls.getId() ?? scope?.requestId ?? null) : null;
    const rows: Array<{ seq: string; id: string; created_at: Date }> = await (em ?? this.db.manager).query(
      'SELECT seq, id, created_at FROM control.audit_append($1, $2, $3, $4, $5, $6, $7)',
      [actor.type, actor.id ?? null, onBehalfOf ?? null, entry.tenantId ?? null, entry.action, requestId, entry.details ?? {}],
    );
    return { seq: Number(rows[0].seq), id: rows[0].id, createdAt: rows[0].created_at };
  }

  /** Newest first, keyset-paginated; a cursor is bound to the filters it was issued with. */
  async list(filter: AuditFilter, limit: number, cursor?: string): Promise<Page<AuditEntryView>> {
    if (filter.from && filter.to && filter.from >= filter.to) {
      throw auditError(AuditErrorCode.invalidTimeRange, '`from` must be before `to` (`from` is inclusive, `to` exclusive)');
    }
    const scope = filterScope({ tenantId: filter.tenantId, action: filter.action, from: filter.from, to: filter.to });
    const window = keysetWindow({ limit, cursor }, scope);
    // `_` is a LIKE wildcard: escaped, so `member_x.*` matches only itself.
    const prefix = filter.action?.endsWith('.*') ? `${filter.action.slice(0, -2).replaceAll('_', '\\_')}.%` : null;
    const rows: AuditRow[] = await this.db.query(
      `SELECT seq, id, created_at, actor_type, actor_id, on_behalf_of, tenant_id, action, request_id, details, encode(hash, 'hex') AS hash
         FROM control.audit_log
        WHERE ($1::uuid IS NULL OR tenant_id = $1::uuid)
          AND ($2::text IS NULL OR action = $2::text)
          AND ($3::text IS NULL OR action LIKE $3::text)
          AND ($4::timestamptz IS NULL OR created_at >= $4::timestamptz)
          AND ($5::timestamptz IS NULL OR created_at < $5::timestamptz)
          AND ($6::timestamptz IS NULL OR (created_at, id) < ($6::timestamptz, $7::uuid))
        ORDER BY created_at DESC, id DESC
        LIMIT $8`,
      [
        filter.tenantId ?? null,
        prefix ? null : (filter.action ?? null),
        prefix,
        filter.from ?? null,
        filter.to ?? null,
        window.after?.createdAt ?? null,
        window.after?.id ?? null,
        window.take,
      ],
    );
    return toPage(
      rows.map((r) => ({ ...r, createdAt: r.created_at })),
      limit,
      view,
      scope,
    );
  }
}
