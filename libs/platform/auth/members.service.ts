import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { keysetWindow, toPage, type Page } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, type AuditTrail, type MembershipRole } from '#strata/control-plane';
import { TenantContext } from '#strata/tenancy/platform';
import type { MemberView } from './auth.dto';
import { forbiddenRole, lastOwner, memberNotFound } from './auth.errors';
import { MembershipChanges } from './membership.changes';
import { SessionsService } from './sessions.service';
import { roleSatisfies } from './route-access.decorators';
import { currentMember } from './tenant-role.check';

interface MemberRow {
  user_id: string;
  email: string;
  role: MembershipRole;
  created_at: Date;
}

const view = (r: MemberRow): MemberView => ({ userId: r.user_id, email: r.email, role: r.role, createdAt: r.created_at.toISOString() });

// Keyset order of the list: created_at to the millisecond (what a cursor carries), then user id.
const MEMBER_COLUMNS = `m.user_id, u.email, m.role, date_trunc('milliseconds', m.created_at) AS created_at`;

/**
 * The tenant's members, managed from inside the tenant by its owners and admins. Memberships live
 * in the control plane, so these are control-plane transactions scoped by the bound tenant's id,
 * never by an id from the request.
 */
@Injectable()
export class MembersService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly context: TenantContext,
    private readonly sessions: SessionsService,
    private readonly changes: MembershipChanges,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  async list(limit: number, cursor: string | undefined): Promise<Page<MemberView>> {
    const { tenant } = currentMember(this.context, 'admin', 'listing members');
    const window = keysetWindow({ limit, cursor });
    const rows: MemberRow[] = await this.db.query(
      `SELECT ${MEMBER_COLUMNS}
         FROM control.memberships m JOIN control.users u ON u.id = m.user_id
        WHERE m.tenant_id = $1
          AND ($2::timestamptz IS NULL OR (date_trunc('milliseconds', m.created_at), m.user_id) < ($2::timestamptz, $3::uuid))
        ORDER BY date_trunc('milliseconds', m.created_at) DESC, m.user_id DESC
        LIMIT $4`,
      [tenant.id, window.after?.createdAt ?? null, window.after?.id ?? null, window.take],
    );
    return toPage(
      rows.map((r) => ({ ...r, createdAt: r.created_at, id: r.user_id })),
      limit,
      view,
    );
  }

  /** Admins change members and admins; only owners make, unmake or touch owners; the last owner stays. */
  async changeRole(userId: string, role: MembershipRole): Promise<MemberView> {
    const caller = currentMember(this.context, 'admin', "changing a member's role");
    if (role === 'owner' && caller.role !== 'owner') throw forbiddenRole('owner', 'making someone owner');
    const changed = await this.db.transaction(async (em) => {
      const callerRole = await this.lockMembers(em, caller.tenant.id, caller.userId, "changing a member's role");
      if (role === 'owner' && callerRole !== 'owner') throw forbiddenRole('owner', 'making someone owner');
      const target = await this.member(em, caller.tenant.id, userId);
      if (target.role === 'owner' && callerRole !== 'owner') throw forbiddenRole('owner', "changing an owner's role");
      if (target.role === role) return target;
      if (target.role === 'owner') await this.keepAnOwner(em, caller.tenant.id);
      await em.query('UPDATE control.memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2', [caller.tenant.id, userId, role]);
      await this.audit.record(
        { action: 'member.role_changed', tenantId: caller.tenant.id, actor: { type: 'user', id: caller.userId }, details: { userId, from: target.role, to: role } },
        em,
      );
      return { ...target, role };
    });
    await this.changes.changed(userId, caller.tenant.id);
    return view(changed);
  }

  /** Removes the membership (the user and their other tenants stay) and ends its refresh sessions. */
  async remove(userId: string): Promise<void> {
    const caller = currentMember(this.context, 'admin', 'removing a member');
    await this.db.transaction(async (em) => {
      const callerRole = await this.lockMembers(em, caller.tenant.id, caller.userId, 'removing a member');
      const target = await this.member(em, caller.tenant.id, userId);
      if (target.role === 'owner' && callerRole !== 'owner') throw forbiddenRole('owner', 'removing an owner');
      if (target.role === 'owner') await this.keepAnOwner(em, caller.tenant.id);
      await em.query('DELETE FROM control.memberships WHERE tenant_id = $1 AND user_id = $2', [caller.tenant.id, userId]);
      await this.sessions.revokeUser(userId, 'membership_removed', caller.tenant.id, em);
      await this.audit.record(
        { action: 'member.removed', tenantId: caller.tenant.id, actor: { type: 'user', id: caller.userId }, details: { userId, role: target.role } },
        em,
      );
    });
    await this.changes.changed(userId, caller.tenant.id);
  }

  /**
   * Every membership change of a tenant takes the tenant's members lock first, so "is there
   * another owner?" stays true until COMMIT: two owners demoting each other at once run one after
   * the other, and the second finds the last owner. Under the lock the caller's own role is read
   * again: one demoted a moment ago (after the guard read it) acts with the role it has now.
   */
  private async lockMembers(em: EntityManager, tenantId: string, callerId: string, what: string): Promise<MembershipRole> {
    await em.query(`SELECT pg_advisory_xact_lock(hashtextextended('strata:members:' || $1::text, 0))`, [tenantId]);
    const rows: Array<{ role: MembershipRole }> = await em.query('SELECT role FROM control.memberships WHERE tenant_id = $1 AND user_id = $2', [
      tenantId,
      callerId,
    ]);
    const role = rows[0]?.role;
    if (!role || !roleSatisfies(role, 'admin')) throw forbiddenRole('admin', what);
    return role;
  }

  private async member(em: EntityManager, tenantId: string, userId: string): Promise<MemberRow> {
    const rows: MemberRow[] = await em.query(
      `SELECT ${MEMBER_COLUMNS} FROM control.memberships m JOIN control.users u ON u.id = m.user_id
        WHERE m.tenant_id = $1 AND m.user_id = $2`,
      [tenantId, userId],
    );
    if (rows.length === 0) throw memberNotFound();
    return rows[0];
  }

  /** Called before an owner stops being one: refuses when they are the only one. */
  private async keepAnOwner(em: EntityManager, tenantId: string): Promise<void> {
    const [{ owners }]: Array<{ owners: number }> = await em.query(
      `SELECT count(*)::int AS owners FROM control.memberships WHERE tenant_id = $1 AND role = 'owner'`,
      [tenantId],
    );
    if (owners <= 1) throw lastOwner();
  }
}
