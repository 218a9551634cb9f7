import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { keysetWindow, STRATA_CONFIG, toPage, type Page, type StrataConfig } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, TenantRegistry, type AuditTrail, type MembershipRole } from '#strata/control-plane';
import { MAIL_SENDER, type MailSender } from '#strata/mail';
import { TenantContext } from '#strata/tenancy/platform';
import type { AcceptedInvitationView, InvitationView } from './auth.dto';
import { forbiddenRole, invalidCredentials, invitationNotFound, mailNotSent, membershipExists, passwordRequired } from './auth.errors';
import { MembershipChanges } from './membership.changes';
import { hashOpaqueToken, newOpaqueToken } from './opaque-token';
import { hashPassword, verifyPassword } from './password.hasher';
import { currentMember } from './tenant-role.check';

/** How long an invitation link works. Inviting the same address again issues a fresh one. */
export const INVITATION_TTL_SECONDS = 7 * 86_400;

/**
 * Invitations into a tenant. An owner or admin invites an email address; the link with the token
 * goes out through the mail port (MAIL_DRIVER) and never appears in an API answer, so holding the
 * invitee's mailbox is what proves the invitee. Accepting creates the account (with the password
 * given) or, for an existing account, adds the membership.
 */
@Injectable()
export class InvitationsService {
  private readonly logger = new Logger(InvitationsService.name);

  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly context: TenantContext,
    private readonly registry: TenantRegistry,
    private readonly changes: MembershipChanges,
    @Inject(MAIL_SENDER) private readonly mail: MailSender,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  async invite(rawEmail: string, role: MembershipRole): Promise<InvitationView> {
    const caller = currentMember(this.context, 'admin', 'inviting members');
    if (role === 'owner' && caller.role !== 'owner') throw forbiddenRole('owner', 'inviting an owner');
    const email = rawEmail.toLowerCase();
    const tenantId = caller.tenant.id;
    const member: unknown[] = await this.db.query(
      'SELECT 1 FROM control.memberships m JOIN control.users u ON u.id = m.user_id WHERE u.email = $1 AND m.tenant_id = $2',
      [email, tenantId],
    );
    if (member.length > 0) throw membershipExists();

    const { token, hash } = newOpaqueToken();
    // One open invitation per address: inviting again replaces its token, role and expiry.
    const [invitation]: Array<{ id: string; expires_at: Date }> = await this.db.query(
      `INSERT INTO control.invitations (tenant_id, email, role, token_hash, invited_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
       ON CONFLICT (tenant_id, email) WHERE accepted_at IS NULL DO UPDATE
         SET role = EXCLUDED.role, token_hash = EXCLUDED.token_hash, invited_by = EXCLUDED.invited_by,
             created_at = now(), expires_at = EXCLUDED.expires_at
       RETURNING id, expires_at`,
      [tenantId, email, role, hash, caller.userId, INVITATION_TTL_SECONDS],
    );

    const tenant = await this.registry.findById(tenantId);
    const inviter: Array<{ email: string }> = await this.db.query('SELECT email FROM control.users WHERE id = $1', [caller.userId]);
    const tenantName = tenant?.name ?? caller.tenant.slug;
    const link = this.config.invitationUrl.replaceAll('{token}', token).replaceAll('{tenant}', caller.tenant.slug);
    try {
      await this.mail.send({
        to: email,
        subject: `You are invited to ${tenantName}`,
        text: [
          `${inviter[0]?.email ?? 'Someone'} invited you to join ${tenantName} as ${role}.`,
          '',
          `Accept the invitation: ${link}`,
          '',
          `The link works until ${invitation.expires_at.toISOString()}. If you did not expect this invitation, ignore this email.`,
        ].join('\n'),
      });
    } catch (err) {
      // An invitation nobody received is of no use and must not linger as a valid token.
      await this.db.query('DELETE FROM control.invitations WHERE id = $1 AND token_hash = $2', [invitation.id, hash]);
      this.logger.warn(`invitation ${invitation.id} not sent: ${(err as Error).message}`);
      throw mailNotSent();
    }
    await this.audit.record({
      action: 'invitation.sent',
      tenantId,
      actor: { type: 'user', id: caller.userId },
      details: { invitationId: invitation.id, email, role },
    });
    return { id: invitation.id, email, role, expiresAt: invitation.expires_at.toISOString() };
  }

  /** The tenant's open invitations (neither accepted nor expired), newest first, a page at a time. */
  async listOpen(limit: number, cursor: string | undefined): Promise<Page<InvitationView>> {
    const { tenant } = currentMember(this.context, 'admin', 'listing invitations');
    const window = keysetWindow({ limit, cursor });
    const rows: Array<{ id: string; email: string; role: MembershipRole; expires_at: Date; created_at: Date }> = await this.db.query(
      `SELECT id, email, role, expires_at, date_trunc('milliseconds', created_at) AS created_at
         FROM control.invitations
        WHERE tenant_id = $1 AND accepted_at IS NULL AND expires_at > now()
          AND ($2::timestamptz IS NULL OR (date_trunc('milliseconds', created_at), id) < ($2::timestamptz, $3::uuid))
        ORDER BY date_trunc('milliseconds', created_at) DESC, id DESC
        LIMIT $4`,
      [tenant.id, window.after?.createdAt ?? null, window.after?.id ?? null, window.take],
    );
    return toPage(
      rows.map((r) => ({ ...r, createdAt: r.created_at })),
      limit,
      (r) => ({ id: r.id, email: r.email, role: r.role, expiresAt: r.expires_at.toISOString() }),
    );
  }

  /**
   * Withdraws an open invitation: its link stops working at once. Owners' invitations are withdrawn
   * by owners only (as only owners invite owners). Unknown, foreign, accepted and expired ids look
   * alike (404), so an id from another tenant says nothing.
   */
  async revoke(id: string): Promise<void> {
    const caller = currentMember(this.context, 'admin', 'withdrawing an invitation');
    // In a CTE: TypeORM answers a bare DELETE … RETURNING with [rows, count].
    const deleted: Array<{ role: MembershipRole }> = await this.db.query(
      `WITH d AS (
         DELETE FROM control.invitations
          WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL AND expires_at > now() AND (role <> 'owner' OR $3)
         RETURNING role)
       SELECT role FROM d`,
      [id, caller.tenant.id, caller.role === 'owner'],
    );
    if (deleted.length > 0) {
      await this.audit.record({ action: 'invitation.withdrawn', tenantId: caller.tenant.id, actor: { type: 'user', id: caller.userId }, details: { invitationId: id, role: deleted[0].role } });
      return;
    }
    const owners: unknown[] = await this.db.query(
      `SELECT 1 FROM control.invitations WHERE id = $1 AND tenant_id = $2 AND accepted_at IS NULL AND expires_at > now() AND role = 'owner'`,
      [id, caller.tenant.id],
    );
    if (owners.length > 0) throw forbiddenRole('owner', "withdrawing an owner's invitation");
    throw invitationNotFound();
  }

  /**
   * One transaction: the invitation is marked accepted only together with the membership, so a
   * refused accept (no password for a new account, a wrong one for an existing account) leaves it
   * open for the next try, and a token accepts at most once.
   */
  async accept(token: string, password: string | undefined): Promise<AcceptedInvitationView> {
    const accepted = await this.db.transaction(async (em) => {
      const found: Array<{ id: string; tenant_id: string; email: string; role: MembershipRole; slug: string; name: string }> = await em.query(
        `WITH a AS (
           UPDATE control.invitations i SET accepted_at = now()
             FROM control.tenants t
            WHERE i.token_hash = $1 AND i.accepted_at IS NULL AND i.expires_at > now()
              AND t.id = i.tenant_id AND t.status IN ('active', 'suspended')
           RETURNING i.id, i.tenant_id, i.email, i.role, t.slug, t.name)
         SELECT * FROM a`,
        [hashOpaqueToken(token)],
      );
      if (found.length === 0) throw invitationNotFound();
      const inv = found[0];

      const userOf = async (): Promise<{ id: string; password_hash: string } | undefined> =>
        (await em.query('SELECT id, password_hash FROM control.users WHERE email = $1', [inv.email]))[0];
      let user = await userOf();
      let userCreated = false;
      if (!user) {
        if (password === undefined) throw passwordRequired();
        const inserted: Array<{ id: string }> = await em.query(
          'INSERT INTO control.users (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING RETURNING id',
          [inv.email, await hashPassword(password)],
        );
        userCreated = inserted.length > 0;
        // Lost a race with another sign-up of the same address: that account is the one to join.
        user = userCreated ? { id: inserted[0].id, password_hash: '' } : await userOf();
      }
      // An existing account's password is checked, never replaced: whoever holds the link must
      // not take over an account that already exists.
      if (!userCreated && password !== undefined && !(await verifyPassword(password, user!.password_hash))) throw invalidCredentials();

      const added: unknown[] = await em.query(
        `INSERT INTO control.memberships (user_id, tenant_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (user_id, tenant_id) DO NOTHING RETURNING user_id`,
        [user!.id, inv.tenant_id, inv.role],
      );
      if (added.length === 0) throw membershipExists();
      await em.query('UPDATE control.invitations SET accepted_by = $2 WHERE id = $1', [inv.id, user!.id]);
      await this.audit.record(
        { action: 'invitation.accepted', tenantId: inv.tenant_id, actor: { type: 'user', id: user!.id }, details: { invitationId: inv.id, role: inv.role, userCreated } },
        em,
      );
      return {
        userId: user!.id,
        email: inv.email,
        role: inv.role,
        tenant: { id: inv.tenant_id, slug: inv.slug, name: inv.name },
        userCreated,
      } satisfies AcceptedInvitationView;
    });
    await this.changes.changed(accepted.userId, accepted.tenant.id);
    return accepted;
  }
}
