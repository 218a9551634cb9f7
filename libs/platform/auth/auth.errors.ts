import { ApiException, badRequest, CommonErrorCode, conflict, forbidden, notFound, unauthorized, type ApiErrorMap } from '#strata/common';
import type { MembershipRole } from '#strata/control-plane';
import { TenancyErrorCode } from '#strata/tenancy/platform';

/**
 * The stable `error` codes of the auth, session and member routes (libs/platform/auth), in one
 * place. They travel in #strata/common's one wire shape `{statusCode, error, message}`. The guard's
 * own codes (unauthenticated, invalid_token, token_expired, tenant_not_found, tenant_suspended) are
 * listed too, because every route here can answer them.
 */
export const AuthErrorCode = {
  /** 400: the body or a field failed validation (the shared validation pipe's code). */
  ValidationFailed: 'validation_failed',
  /** 400: a path id is not a UUID. */
  InvalidId: 'invalid_id',

  // the request edge (TenantRequestGuard)
  /** 401: no bearer token. */
  Unauthenticated: 'unauthenticated',
  /** 401: the bearer token is not valid (signature, algorithm, claims). */
  InvalidToken: 'invalid_token',
  /** 401: the bearer token has expired: refresh it. */
  TokenExpired: 'token_expired',
  /** 404: unknown tenant, a token for another tenant, or no membership: all the same answer. */
  TenantNotFound: 'tenant_not_found',
  /** 403: the caller proved to be a member (or gave correct credentials), but the tenant is suspended. */
  TenantSuspended: 'tenant_suspended',
  /**
   * 503: an operator put the tenant in maintenance (POST /admin/tenants/:id/maintenance); retry after
   * `Retry-After` seconds. Answered to proven members on token routes, and on the anonymous ones (login).
   */
  TenantMaintenance: 'tenant_maintenance',
  /**
   * 409 (login, refresh, logout): the tenant is still being onboarded; Retry-After says when to try
   * again. Only for a tenant that exists: a signup already tells that its slug is taken.
   */
  TenantProvisioning: 'tenant_provisioning',
  /** 403: an operators' route called without a `platform:admin` token. */
  PlatformAdminRequired: 'platform_admin_required',

  // sessions (POST /auth/login, /auth/tenants, /auth/refresh, /auth/logout, /auth/password)
  /** 401: email or password is wrong, or the user is not a member: one answer for all, so nothing is enumerable. */
  InvalidCredentials: 'invalid_credentials',
  /** 401: the refresh token is unknown, expired, revoked (logout, password change) or for another tenant: log in again. */
  InvalidRefreshToken: 'invalid_refresh_token',
  /** 401: the refresh token was already used once: someone else may hold a copy, so its whole family is now revoked. */
  RefreshTokenReused: 'refresh_token_reused',
  /**
   * 429: too many attempts from this client address, too many failed logins to this account from it
   * (a lockout for LOGIN_LOCKOUT_SECONDS), or too many password checks at once; `Retry-After` says when.
   */
  RateLimited: 'rate_limited',
  /** 400: POST /auth/password: `currentPassword` is not the caller's password. */
  InvalidCurrentPassword: 'invalid_current_password',

  // members (GET/PATCH/DELETE /members, POST /members/invitations)
  /** 403: the route needs a higher role in the tenant; the message names it. */
  ForbiddenRole: 'forbidden_role',
  /** 404: no member with that user id in this tenant. */
  MemberNotFound: 'member_not_found',
  /** 409: the change would leave the tenant without an owner. */
  LastOwner: 'last_owner',
  /** 409: the user already belongs to the tenant. */
  MembershipExists: 'membership_exists',
  /** 503: the invitation email could not be handed to the mail server; nothing was kept, retry. */
  MailNotSent: 'mail_not_sent',

  // invitations (POST /auth/invitations/accept)
  /** 404: the invitation token is unknown, already accepted, expired or replaced by a newer invitation. */
  InvitationNotFound: 'invitation_not_found',
  /** 400: the invitee has no account yet: `password` (8+ characters) creates it. */
  PasswordRequired: 'password_required',

  // impersonation (POST /admin/tenants/:id/impersonate, GET/DELETE /admin/impersonations, and every request made with its token)
  /** 401: the impersonation this token belongs to was revoked (or has ended): the operator must start a new one. */
  ImpersonationEnded: 'impersonation_ended',
  /** 403: the route is refused to an impersonation token (password change, member management): only the user may do it. */
  ImpersonationForbidden: 'impersonation_forbidden',
  /** 403: the user is a platform operator (or the caller itself): operators are never impersonated. */
  OperatorNotImpersonable: 'operator_not_impersonable',
  /** 404: no impersonation with that id. */
  ImpersonationNotFound: 'impersonation_not_found',
  /** 503: the tenant's owners could not be told of the impersonation, so it was not started; retry. */
  ImpersonationNotNotified: 'impersonation_not_notified',
} as const;

export type AuthErrorCode = (typeof AuthErrorCode)[keyof typeof AuthErrorCode];

export const invalidCredentials = () => unauthorized(AuthErrorCode.InvalidCredentials, 'email or password is wrong');
export const invalidRefreshToken = (why = 'unknown, expired or revoked') =>
  unauthorized(AuthErrorCode.InvalidRefreshToken, `refresh token is ${why}; log in again`);
export const refreshTokenReused = () =>
  unauthorized(AuthErrorCode.RefreshTokenReused, 'this refresh token was already used; every session of its login is now revoked, log in again');
export const tenantSuspended = () => forbidden(AuthErrorCode.TenantSuspended, 'this tenant is suspended');
/** How long a client is told to wait during maintenance: short, since nothing says when it ends. */
export const MAINTENANCE_RETRY_AFTER_SECONDS = 60;
export const tenantMaintenance = () =>
  new ApiException(503, AuthErrorCode.TenantMaintenance, 'this tenant is in maintenance; retry later', { 'Retry-After': String(MAINTENANCE_RETRY_AFTER_SECONDS) });
export const tenantProvisioning = () =>
  new ApiException(409, AuthErrorCode.TenantProvisioning, 'this tenant is still being set up; retry shortly', { 'Retry-After': '1' });
export const forbiddenRole = (needed: MembershipRole, what: string) =>
  forbidden(AuthErrorCode.ForbiddenRole, `${what} needs the ${needed} role${needed === 'owner' ? '' : ' or higher'}`);
export const memberNotFound = () => notFound(AuthErrorCode.MemberNotFound, 'no member with this user id in this tenant');
export const lastOwner = () => conflict(AuthErrorCode.LastOwner, 'the tenant must keep at least one owner: make someone else owner first');
export const membershipExists = () => conflict(AuthErrorCode.MembershipExists, 'this user already belongs to the tenant');
export const mailNotSent = () =>
  new ApiException(503, AuthErrorCode.MailNotSent, 'the invitation email could not be sent; nothing was kept, retry shortly', { 'Retry-After': '5' });
export const invitationNotFound = () =>
  notFound(AuthErrorCode.InvitationNotFound, 'this invitation is unknown, already accepted, expired or replaced by a newer one');
export const passwordRequired = () =>
  badRequest(AuthErrorCode.PasswordRequired, 'no account exists for this email yet: send a password (8 or more characters) to create it');
export const impersonationEnded = () => unauthorized(AuthErrorCode.ImpersonationEnded, 'this impersonation was revoked or has ended; start a new one');
export const impersonationForbidden = () =>
  forbidden(AuthErrorCode.ImpersonationForbidden, 'not while impersonating: this action is reserved to the user themselves');
export const operatorNotImpersonable = () => forbidden(AuthErrorCode.OperatorNotImpersonable, 'platform operators cannot be impersonated');
export const impersonationNotFound = () => notFound(AuthErrorCode.ImpersonationNotFound, 'impersonation not found');
export const impersonationNotNotified = () =>
  new ApiException(503, AuthErrorCode.ImpersonationNotNotified, "the tenant's owners could not be notified, so no impersonation was started; retry shortly", {
    'Retry-After': '5',
  });
export const invalidCurrentPassword = () => badRequest(AuthErrorCode.InvalidCurrentPassword, 'currentPassword is not your current password');

const TOKEN_ERRORS = [AuthErrorCode.Unauthenticated, AuthErrorCode.InvalidToken, AuthErrorCode.TokenExpired];
// The wire's claim (resolveWireTenant): none or several disagreeing, or no such (active) tenant.
const WIRE_ERRORS = { 400: [TenancyErrorCode.tenantRequired, TenancyErrorCode.tenantAmbiguous], 404: [TenancyErrorCode.tenantNotFound] } as const;

/**
 * What the edge itself may answer on each kind of route, before the handler runs or around its unit
 * of work; the access decorators document them (OpenAPI), so a new route inherits them with its
 * declaration.
 */
export const EDGE_ERRORS = {
  tenant: {
    ...WIRE_ERRORS,
    401: [...TOKEN_ERRORS, AuthErrorCode.ImpersonationEnded],
    403: [AuthErrorCode.TenantSuspended, AuthErrorCode.ForbiddenRole],
    // The tenant's and the user's rate limits (libs/platform/rate-limits, with Retry-After and RateLimit-*
    // headers), then the tenant's concurrency budget on this instance (libs/platform/capacity).
    429: [AuthErrorCode.RateLimited, TenancyErrorCode.concurrencyLimited],
    // Every tenant route runs units of work on the tenant's home (libs/platform/tenancy), plus the control plane.
    503: [
      TenancyErrorCode.tenantUnavailable,
      TenancyErrorCode.tenantBusy,
      TenancyErrorCode.statementTimeout,
      TenancyErrorCode.lockTimeout,
      TenancyErrorCode.idleInTransactionTimeout,
      TenancyErrorCode.tenantMoving,
      TenancyErrorCode.tenantCapacity,
      TenancyErrorCode.tenantMigrating,
      AuthErrorCode.TenantMaintenance,
      CommonErrorCode.unavailable,
    ],
  },
  'tenant-anonymous': { ...WIRE_ERRORS, 503: [AuthErrorCode.TenantMaintenance, CommonErrorCode.unavailable] },
  'platform-admin': { 401: TOKEN_ERRORS, 403: [AuthErrorCode.PlatformAdminRequired], 503: [CommonErrorCode.unavailable] },
  public: {},
} as const satisfies Record<string, ApiErrorMap>;
