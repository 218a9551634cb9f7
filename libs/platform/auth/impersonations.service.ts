import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { notFound } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, type AuditTrail, type MembershipRole } from '#strata/control-plane';
import { MAIL_SENDER, type MailSender } from '#strata/mail';
import { AuthErrorCode, impersonationEnded, impersonationNotFound, impersonationNotNotified, memberNotFound, operatorNotImpersonable } from './auth.errors';
import type { ImpersonationTokenView, ImpersonationView } from './impersonation.dto';
import { JwtService } from './jwt.service';

/** How long an impersonation lasts; it cannot be extended, only started again (and audited again). */
export const IMPERSONATION_TTL_SECONDS = 15 * 60;

interface ImpersonationRow {
  id: string;
  tenant_id: string;
  user_id: string;
  operator_id: string;
  reason: string;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
  revoked_by: string | null;
}

const COLUMNS = 'id, tenant_id, user_id, operator_id, reason, created_at, expires_at, revoked_at, revoked_by';

const view = (r: ImpersonationRow): ImpersonationView => ({
  id: r.id,
  tenantId: r.tenant_id,
  userId: r.user_id,
  operatorId: r.operator_id,
  reason: r.reason,
  createdAt: r.created_at.toISOString(),
  expiresAt: r.expires_at.toISOString(),
  revokedAt: r.revoked_at?.toISOString() ?? null,
  revokedBy: r.revoked_by,
});

/** What the guard knows of a live impersonation once checked. */
export interface LiveImpersonation {
  id: string;
  operatorId: string;
}

/** What one request under impersonation did, for its audit entry. */
export interface ImpersonatedRequest {
  impersonation: LiveImpersonation;
  tenantId: string;
  userId: string;
  requestId: string | null;
  method: string;
  route: string;
  status: number;
  /** The client left before the answer was complete. */
  aborted: boolean;
}

/**
 * Operators acting as a tenant's user, for support: started with a reason, announced to the
 * tenant's owners by mail, at most 15 minutes, revocable at once, and audited from start to every
 * request made under it, each entry with both identities (the operator as actor, the user as
 * `onBehalfOf`).
 */
@Injectable()
export class ImpersonationsService {
  private readonly logger = new Logger(ImpersonationsService.name);

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly jwt: JwtService,
    @Inject(MAIL_SENDER) private readonly mail: MailSender,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  async start(tenantId: string, rawUserId: string, reason: string, operator: string): Promise<ImpersonationTokenView> {
    const userId = rawUserId.toLowerCase();
    const tenants: Array<{ slug: string; name: string }> = await this.db.query(
      `SELECT slug, name FROM control.tenants WHERE id = $1 AND status <> 'deleted'`,
      [tenantId],
    );
    if (tenants.length === 0) throw notFound(AuthErrorCode.TenantNotFound, 'tenant not found');
    // Operators are never impersonated: not the caller itself, nor anyone who ever acted as an
    // operator (operator identities are token subjects from the IdP, known to the control plane
    // through the audit log of what they did).
    if (userId === operator.toLowerCase()) throw operatorNotImpersonable();
    const operatorBefore: unknown[] = await this.db.query(
      `SELECT 1 FROM control.audit_log WHERE actor_type = 'operator' AND actor_id IN ($1, $2) LIMIT 1`,
      [userId, rawUserId],
    );
    if (operatorBefore.length > 0) throw operatorNotImpersonable();
    const members: Array<{ role: MembershipRole }> = await this.db.query(
      'SELECT role FROM control.memberships WHERE tenant_id = $1 AND user_id = $2',
      [tenantId, userId],
    );
    if (members.length === 0) throw memberNotFound();

    const row = await this.db.transaction(async (em) => {
      const [created]: ImpersonationRow[] = await em.query(
        `INSERT INTO control.impersonations (tenant_id, user_id, operator_id, reason, created_at, expires_at)
         VALUES ($1, $2, $3, $4, date_trunc('milliseconds', now()), date_trunc('milliseconds', now()) + make_interval(secs => $5))
         RETURNING ${COLUMNS}`,
        [tenantId, userId, operator, reason, IMPERSONATION_TTL_SECONDS],
      );
      await this.audit.record(
        {
          action: 'impersonation.started',
          tenantId,
          actor: { type: 'operator', id: operator },
          onBehalfOf: userId,
          details: { impersonationId: created.id, reason, expiresAt: created.expires_at.toISOString() },
        },
        em,
      );
      return created;
    });

    try {
      await this.notifyOwners(tenantId, tenants[0].name, row);
    } catch (err) {
      // Owners must know: an impersonation they were not told of does not happen.
      this.logger.warn(`impersonation ${row.id} revoked: its notice to the owners was not sent: ${(err as Error).message}`);
      await this.revoke(row.id, 'system:notice-not-sent');
      throw impersonationNotNotified();
    }
    const { token, expiresIn } = await this.jwt.signImpersonationToken(
      { sub: userId, tid: tenantId, role: members[0].role, act: { sub: operator }, imp: row.id },
      row.expires_at,
    );
    return { access_token: token, token_type: 'Bearer', expires_in: expiresIn, impersonation: view(row) };
  }

  /** Impersonations still running (neither revoked nor expired), newest first. */
  async listActive(tenantId?: string): Promise<ImpersonationView[]> {
    const rows: ImpersonationRow[] = await this.db.query(
      `SELECT ${COLUMNS} FROM control.impersonations
        WHERE revoked_at IS NULL AND expires_at > now() AND ($1::uuid IS NULL OR tenant_id = $1::uuid)
        ORDER BY created_at DESC, id DESC`,
      [tenantId ?? null],
    );
    return rows.map(view);
  }

  /** Ends it now; the next request with its token, on any instance, answers 401 impersonation_ended. Revoking twice is fine. */
  async revoke(id: string, by: string): Promise<void> {
    await this.db.transaction(async (em) => {
      // In a CTE: TypeORM answers a bare UPDATE … RETURNING as [rows, count].
      const rows: ImpersonationRow[] = await em.query(
        `WITH r AS (UPDATE control.impersonations SET revoked_at = now(), revoked_by = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING ${COLUMNS})
         SELECT * FROM r`,
        [id, by],
      );
      if (rows.length === 0) {
        const exists: unknown[] = await em.query('SELECT 1 FROM control.impersonations WHERE id = $1', [id]);
        if (exists.length === 0) throw impersonationNotFound();
        return;
      }
      const r = rows[0];
      await this.audit.record(
        {
          action: 'impersonation.revoked',
          tenantId: r.tenant_id,
          actor: by.startsWith('system:') ? { type: 'system', id: by } : { type: 'operator', id: by },
          onBehalfOf: r.user_id,
          details: { impersonationId: r.id, operatorId: r.operator_id },
        },
        em,
      );
    });
  }

  /**
   * The guard's check of a token carrying `act`: its impersonation exists for exactly this tenant,
   * user and operator, and is neither revoked nor past its end. One primary-key read of the control
   * plane per impersonated request (~0.2 ms here), nothing for any other request; never cached, so
   * a revocation holds from the next request on every instance without a message to miss.
   */
  async requireLive(claims: { imp?: unknown; act?: unknown }, userId: string, tenantId: string): Promise<LiveImpersonation> {
    const operator = (claims.act as { sub?: unknown } | undefined)?.sub;
    const id = claims.imp;
    if (typeof operator !== 'string' || typeof id !== 'string' || !/^[0-9a-f-]{36}$/i.test(id)) throw impersonationEnded();
    const rows: Array<{ tenant_id: string; user_id: string; operator_id: string; live: boolean }> = await this.db.query(
      `SELECT tenant_id, user_id, operator_id, (revoked_at IS NULL AND expires_at > now()) AS live FROM control.impersonations WHERE id = $1`,
      [id],
    );
    const r = rows[0];
    if (!r || !r.live || r.tenant_id !== tenantId || r.user_id !== userId || r.operator_id !== operator) throw impersonationEnded();
    return { id, operatorId: operator };
  }

  /** One entry per request made with an impersonation token, whatever its answer. Never throws (the answer is gone). */
  async recordRequest(req: ImpersonatedRequest): Promise<void> {
    await this.audit
      .record({
        action: 'impersonation.request',
        tenantId: req.tenantId,
        actor: { type: 'operator', id: req.impersonation.operatorId },
        onBehalfOf: req.userId,
        requestId: req.requestId,
        details: { impersonationId: req.impersonation.id, method: req.method, route: req.route, status: req.status, ...(req.aborted ? { aborted: true } : {}) },
      })
      .catch((err: unknown) =>
        this.logger.error(`impersonation ${req.impersonation.id}: ${req.method} ${req.route} (${req.status}) not written to the audit log: ${(err as Error).message}`),
      );
  }

  private async notifyOwners(tenantId: string, tenantName: string, row: ImpersonationRow): Promise<void> {
    const owners: Array<{ email: string }> = await this.db.query(
      `SELECT u.email FROM control.memberships m JOIN control.users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY u.email`,
      [tenantId],
    );
    const users: Array<{ email: string }> = await this.db.query('SELECT email FROM control.users WHERE id = $1', [row.user_id]);
    for (const owner of owners) {
      await this.mail.send({
        to: owner.email,
        subject: `A platform operator is acting as ${users[0]?.email ?? 'a member'} in ${tenantName}`,
        text: [
          `Platform operator ${row.operator_id} started acting as ${users[0]?.email ?? row.user_id} in ${tenantName}.`,
          '',
          `Reason: ${row.reason}`,
          `From ${row.created_at.toISOString()} until ${row.expires_at.toISOString()} at the latest.`,
          '',
          'Everything done under it is in your audit log (GET /audit, action impersonation.*). It cannot change passwords or members.',
        ].join('\n'),
      });
    }
  }
}
