import { Body, Controller, Get, HttpCode, Inject, Optional, Post, Req } from '@nestjs/common';
import { ApiNoContentResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { DataSource } from 'typeorm';
import { ApiErrors, ApiItemsResponse, CommonErrorCode, notFound } from '#strata/common';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, TenantRegistry, type AuditTrail, type MembershipRole } from '#strata/control-plane';
import { TenantContext } from '#strata/tenancy/platform';
import {
  AcceptInvitationDto,
  ChangePasswordDto,
  LoginDto,
  RefreshTokenDto,
  AcceptedInvitationView,
  MeView,
  SessionTokens,
  UserTenantView,
} from './auth.dto';
import { AuthErrorCode, invalidCredentials, invalidCurrentPassword, tenantSuspended } from './auth.errors';
import { CredentialsVerifier } from './credentials.verifier';
import { InvitationsService } from './invitations.service';
import { JwtService } from './jwt.service';
import { LoginFailures } from './login-failures.aggregator';
import { clientAddress, LOGIN_THROTTLE, loginAccount, type LoginThrottlePort } from './login-throttle.port';
import { hashPassword } from './password.hasher';
import { PublicRoute, RefusedUnderImpersonation, RequireRole, TenantAnonymous } from './route-access.decorators';
import { SessionsService } from './sessions.service';
import { bearerToken } from './tenant-request.guard';

@Controller('auth')
@ApiTags('auth')
export class AuthController {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly jwt: JwtService,
    private readonly context: TenantContext,
    private readonly registry: TenantRegistry,
    private readonly credentials: CredentialsVerifier,
    private readonly sessions: SessionsService,
    private readonly invitations: InvitationsService,
    private readonly loginFailures: LoginFailures,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    // Absent without RateLimitsModule (libs/platform/rate-limits): the anonymous routes are then not limited.
    @Optional() @Inject(LOGIN_THROTTLE) private readonly throttle: LoginThrottlePort | null = null,
  ) {}

  /**
   * Every failure is the same 401, so login reveals neither users nor memberships. Only a caller
   * whose credentials and membership are right learns that the tenant is suspended (403).
   */
  @Post('login')
  @HttpCode(200)
  @TenantAnonymous({ suspended: 'handler' })
  @ApiOkResponse({ type: SessionTokens })
  @ApiErrors({ 401: [AuthErrorCode.InvalidCredentials], 429: [AuthErrorCode.RateLimited] })
  async login(@Body() body: LoginDto, @Req() req: Request): Promise<SessionTokens> {
    const tenant = this.context.tenant;
    const address = clientAddress(req);
    const account = loginAccount(tenant.id, body.email);
    await this.throttle?.beforeAttempt(address, account);
    const user = await this.credentials.verify(body.email, body.password);
    const role = user ? await this.membershipRole(user.id, tenant.id) : null;
    if (!user || !role) {
      this.loginFailures.note(tenant.id, body.email);
      await this.throttle?.failed(address, account);
      throw invalidCredentials();
    }
    await this.throttle?.succeeded(address, account);
    if (tenant.status === 'suspended') throw tenantSuspended();
    return this.sessions.open(user.id, tenant.id, role);
  }

  /** Rotation: the token is used up, the answer holds the next one. A token used twice ends its login. */
  @Post('refresh')
  @HttpCode(200)
  @TenantAnonymous({ suspended: 'handler' })
  @ApiOkResponse({ type: SessionTokens, description: 'the next tokens; the one sent is used up' })
  @ApiErrors({ 401: [AuthErrorCode.InvalidRefreshToken, AuthErrorCode.RefreshTokenReused], 429: [AuthErrorCode.RateLimited] })
  async refresh(@Body() body: RefreshTokenDto, @Req() req: Request): Promise<SessionTokens> {
    await this.throttle?.anonymous(clientAddress(req));
    return this.sessions.rotate(body.refresh_token, this.context.tenant);
  }

  /** Ends the login the refresh token belongs to (its whole family). Always 204: logging out twice is fine. */
  @Post('logout')
  @HttpCode(204)
  @TenantAnonymous({ suspended: 'handler' })
  @ApiNoContentResponse({ description: 'the login is over (also when it already was)' })
  @ApiErrors({ 429: [AuthErrorCode.RateLimited] })
  async logout(@Body() body: RefreshTokenDto, @Req() req: Request): Promise<void> {
    await this.throttle?.anonymous(clientAddress(req));
    await this.sessions.close(body.refresh_token, this.context.tenant.id);
  }

  /** Who the bearer token is, in which tenant, with which role (as it is now), until when. */
  @Get('me')
  @RequireRole('member')
  @ApiOkResponse({ type: MeView })
  async me(@Req() req: Request): Promise<MeView> {
    const scope = this.context.requireTenant('GET /auth/me', 'members');
    const [claims, tenant, users] = await Promise.all([
      // Verified by the guard a moment ago: this is the guard's cache, not a second verification.
      this.jwt.verify(bearerToken(req)!),
      this.registry.findById(scope.tenant.id),
      this.db.query('SELECT id, email FROM control.users WHERE id = $1', [scope.userId]) as Promise<Array<{ id: string; email: string }>>,
    ]);
    // Deleted since the guard's (cached) membership answer: as gone as a missing membership.
    if (users.length === 0) throw notFound(AuthErrorCode.TenantNotFound, 'tenant not found');
    return {
      user: { id: users[0].id, email: users[0].email },
      tenant: { id: scope.tenant.id, slug: scope.tenant.slug, name: tenant?.name ?? scope.tenant.slug },
      role: scope.role as MembershipRole,
      tokenExpiresAt: new Date((claims.exp ?? 0) * 1000).toISOString(),
    };
  }

  /**
   * The tenants a user belongs to, for a login page on the root domain that asks for email and
   * password before it knows the tenant. The same 401 for every failure, as login. POST because
   * the body holds a password (a GET body is ignored by caches and proxies and logged by some).
   */
  @Post('tenants')
  @HttpCode(200)
  @PublicRoute()
  @ApiItemsResponse(UserTenantView, "the tenants the user belongs to (active or suspended), by slug")
  @ApiErrors({ 401: [AuthErrorCode.InvalidCredentials], 429: [AuthErrorCode.RateLimited], 503: [CommonErrorCode.unavailable] })
  async tenants(@Body() body: LoginDto, @Req() req: Request): Promise<{ items: UserTenantView[] }> {
    // A password check like login's, so the same limits: per address, and the lockout per account and address.
    const address = clientAddress(req);
    const account = loginAccount(null, body.email);
    await this.throttle?.beforeAttempt(address, account);
    const user = await this.credentials.verify(body.email, body.password);
    if (!user) {
      this.loginFailures.note(null, body.email);
      await this.throttle?.failed(address, account);
      throw invalidCredentials();
    }
    await this.throttle?.succeeded(address, account);
    const items: UserTenantView[] = await this.db.query(
      `SELECT t.id, t.slug, t.name, m.role, t.status
         FROM control.memberships m JOIN control.tenants t ON t.id = m.tenant_id
        WHERE m.user_id = $1 AND t.status IN ('active', 'suspended')
        ORDER BY t.slug`,
      [user.id],
    );
    return { items };
  }

  /**
   * Changes the caller's password and ends every refresh session of theirs, in every tenant
   * (whoever knew the old password may hold one). The answer is a fresh session for this tenant,
   * so the caller stays logged in. Access tokens already issued live on until they expire.
   */
  @Post('password')
  @HttpCode(200)
  @RequireRole('member')
  @RefusedUnderImpersonation()
  @ApiOkResponse({ type: SessionTokens, description: 'changed; every refresh session of the user ended, and this is a fresh one' })
  @ApiErrors({ 400: [AuthErrorCode.InvalidCurrentPassword] })
  async changePassword(@Body() body: ChangePasswordDto): Promise<SessionTokens> {
    const scope = this.context.requireTenant('POST /auth/password', 'members');
    const userId = scope.userId!;
    if (!(await this.credentials.verifyUser(userId, body.currentPassword))) throw invalidCurrentPassword();
    const passwordHash = await hashPassword(body.newPassword);
    return this.db.transaction(async (em) => {
      await em.query('UPDATE control.users SET password_hash = $2, updated_at = now() WHERE id = $1', [userId, passwordHash]);
      await this.sessions.revokeUser(userId, 'password_change', undefined, em);
      await this.audit.record({ action: 'auth.password_changed', tenantId: scope.tenant.id, actor: { type: 'user', id: userId } }, em);
      return this.sessions.open(userId, scope.tenant.id, scope.role as MembershipRole, em);
    });
  }

  /** Accepts an invitation from its link: creates the account (with `password`) or adds the membership. */
  @Post('invitations/accept')
  @HttpCode(200)
  @PublicRoute()
  @ApiOkResponse({ type: AcceptedInvitationView })
  @ApiErrors({
    400: [AuthErrorCode.PasswordRequired],
    401: [AuthErrorCode.InvalidCredentials],
    404: [AuthErrorCode.InvitationNotFound],
    409: [AuthErrorCode.MembershipExists],
    429: [AuthErrorCode.RateLimited],
    503: [CommonErrorCode.unavailable],
  })
  async acceptInvitation(@Body() body: AcceptInvitationDto, @Req() req: Request): Promise<AcceptedInvitationView> {
    await this.throttle?.anonymous(clientAddress(req));
    return this.invitations.accept(body.token, body.password);
  }

  private async membershipRole(userId: string, tenantId: string): Promise<MembershipRole | null> {
    const rows: Array<{ role: MembershipRole }> = await this.db.query(
      'SELECT role FROM control.memberships WHERE user_id = $1 AND tenant_id = $2',
      [userId, tenantId],
    );
    return rows[0]?.role ?? null;
  }
}
