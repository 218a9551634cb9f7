import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, type AuditTrail, type MembershipRole, type RefreshRevokeReason } from '#strata/control-plane';
import type { TenantPlacement } from '#strata/tenancy/platform';
import type { SessionTokens } from './auth.dto';
import { invalidRefreshToken, refreshTokenReused, tenantSuspended } from './auth.errors';
import { JwtService } from './jwt.service';
import { hashOpaqueToken, newOpaqueToken } from './opaque-token';

// Families dead for longer than this are deleted when their user next logs in; until then a reused
// token of theirs is still recognised as reuse rather than as unknown.
const KEEP_DEAD_FAMILIES = '7 days';

/**
 * Refresh tokens with rotation and reuse detection (OAuth 2.0 Security BCP §4.14). A login opens
 * a family; each refresh marks its token used and issues the next one in the same family. A used
 * token presented again means two parties hold the chain (a thief and the user), and since we
 * cannot tell which one is legitimate, the whole family is revoked: both must log in again.
 * Access tokens stay stateless JWTs; they are short-lived (AUTH_TOKEN_TTL_SECONDS) and are not
 * revoked by any of this.
 */
@Injectable()
export class SessionsService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly jwt: JwtService,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  /** A new login: a new family with its first refresh token, and an access token. */
  async open(userId: string, tenantId: string, role: MembershipRole, em: EntityManager = this.db.manager): Promise<SessionTokens> {
    await em.query(
      `DELETE FROM control.refresh_families WHERE user_id = $1 AND coalesce(revoked_at, expires_at) < now() - interval '${KEEP_DEAD_FAMILIES}'`,
      [userId],
    );
    const next = newOpaqueToken();
    await em.query(
      `WITH f AS (
         INSERT INTO control.refresh_families (user_id, tenant_id, expires_at)
         VALUES ($1, $2, now() + make_interval(secs => $4)) RETURNING id, expires_at)
       INSERT INTO control.refresh_tokens (token_hash, family_id, expires_at) SELECT $3, id, expires_at FROM f`,
      [userId, tenantId, next.hash, this.config.refreshTtlSeconds],
    );
    return this.tokens(userId, tenantId, role, next.token);
  }

  /**
   * Exchanges a refresh token for a new pair. Exactly one of any number of concurrent refreshes
   * with the same token wins: the single UPDATE … WHERE used_at IS NULL takes the row lock, and
   * every other one re-checks the condition after the winner commits, finds the token used, and is
   * treated as reuse (which also ends the winner's family: a client must not refresh in parallel).
   */
  async rotate(refreshToken: string, tenant: TenantPlacement): Promise<SessionTokens> {
    const hash = hashOpaqueToken(refreshToken);
    if (tenant.status === 'suspended') {
      // Correct credentials for a suspended tenant: say so (403), but keep the token unused for
      // when the tenant is active again.
      await this.refuseUnlessLive(hash, tenant.id);
      throw tenantSuspended();
    }
    const outcome = await this.db.transaction(async (em) => {
      const used: Array<{ family_id: string; user_id: string }> = await em.query(
        `WITH used AS (
           UPDATE control.refresh_tokens t SET used_at = now()
             FROM control.refresh_families f
            WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
              AND f.id = t.family_id AND f.revoked_at IS NULL AND f.tenant_id = $2
           RETURNING f.id AS family_id, f.user_id)
         SELECT * FROM used`,
        [hash, tenant.id],
      );
      if (used.length === 0) return null;
      const { family_id: familyId, user_id: userId } = used[0];
      const member: Array<{ role: MembershipRole }> = await em.query(
        'SELECT role FROM control.memberships WHERE user_id = $1 AND tenant_id = $2',
        [userId, tenant.id],
      );
      if (member.length === 0) {
        await this.revokeFamily(em, familyId, 'membership_removed');
        return 'no-membership' as const;
      }
      const next = newOpaqueToken();
      await em.query(
        `WITH f AS (
           UPDATE control.refresh_families SET expires_at = now() + make_interval(secs => $3) WHERE id = $1 RETURNING id, expires_at)
         INSERT INTO control.refresh_tokens (token_hash, family_id, expires_at) SELECT $2, id, expires_at FROM f`,
        [familyId, next.hash, this.config.refreshTtlSeconds],
      );
      // The role as it is now: a role changed since login is in the new access token.
      return { userId, role: member[0].role, token: next.token };
    });
    if (outcome === 'no-membership') throw invalidRefreshToken('for a membership that no longer exists');
    if (!outcome) {
      await this.refuseUnlessLive(hash, tenant.id);
      throw invalidRefreshToken();
    }
    return this.tokens(outcome.userId, tenant.id, outcome.role, outcome.token);
  }

  /** Logout: revokes the token's family (in this tenant). Unknown or already revoked tokens are a no-op. */
  async close(refreshToken: string, tenantId: string): Promise<void> {
    await this.db.query(
      `UPDATE control.refresh_families f SET revoked_at = now(), revoked_reason = 'logout'
         FROM control.refresh_tokens t
        WHERE t.token_hash = $1 AND f.id = t.family_id AND f.tenant_id = $2 AND f.revoked_at IS NULL`,
      [hashOpaqueToken(refreshToken), tenantId],
    );
  }

  /** Revokes every live family of a user (password change), or of a user in one tenant (membership removed). */
  async revokeUser(userId: string, reason: RefreshRevokeReason, tenantId?: string, em: EntityManager = this.db.manager): Promise<void> {
    await em.query(
      `UPDATE control.refresh_families SET revoked_at = now(), revoked_reason = $2
        WHERE user_id = $1 AND revoked_at IS NULL AND ($3::uuid IS NULL OR tenant_id = $3::uuid)`,
      [userId, reason, tenantId ?? null],
    );
  }

  /**
   * Why a token cannot be used. A token of this tenant that was already used is reuse: its family
   * is revoked and 401 refresh_token_reused thrown. Anything else (unknown, expired, revoked,
   * another tenant's) is 401 invalid_refresh_token and changes nothing, so a token sent to the
   * wrong tenant cannot be used to end someone's session. Returns only for a token that is live.
   */
  private async refuseUnlessLive(hash: Buffer, tenantId: string): Promise<void> {
    const rows: Array<{ family_id: string; user_id: string; used: boolean; live: boolean }> = await this.db.query(
      `SELECT f.id AS family_id, f.user_id, t.used_at IS NOT NULL AS used,
              (t.used_at IS NULL AND t.expires_at > now() AND f.revoked_at IS NULL) AS live
         FROM control.refresh_tokens t JOIN control.refresh_families f ON f.id = t.family_id
        WHERE t.token_hash = $1 AND f.tenant_id = $2`,
      [hash, tenantId],
    );
    const found = rows[0];
    if (found?.used) {
      // The presenter is unknown (the user or whoever holds a copy): recorded as anonymous, about the user.
      await this.db.transaction(async (em) => {
        await this.revokeFamily(em, found.family_id, 'reuse');
        await this.audit.record(
          { action: 'auth.refresh_token_reused', tenantId, actor: { type: 'anonymous' }, details: { userId: found.user_id, familyId: found.family_id } },
          em,
        );
      });
      throw refreshTokenReused();
    }
    if (!found?.live) throw invalidRefreshToken();
  }

  private async revokeFamily(em: EntityManager, familyId: string, reason: RefreshRevokeReason): Promise<void> {
    await em.query(
      `UPDATE control.refresh_families SET revoked_at = now(), revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL`,
      [familyId, reason],
    );
  }

  private async tokens(userId: string, tenantId: string, role: MembershipRole, refreshToken: string): Promise<SessionTokens> {
    const { token, expiresIn } = await this.jwt.signTenantToken({ sub: userId, tid: tenantId, role });
    return {
      access_token: token,
      token_type: 'Bearer',
      expires_in: expiresIn,
      refresh_token: refreshToken,
      refresh_expires_in: this.config.refreshTtlSeconds,
    };
  }
}
