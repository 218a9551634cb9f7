import { applyDecorators, createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';
import { ApiHeader, ApiSecurity } from '@nestjs/swagger';
import { ApiErrors } from '#strata/common';
import { SLUG_RULE } from '#strata/tenancy/platform';
import { AuthErrorCode, EDGE_ERRORS } from './auth.errors';

/**
 * Every route is a tenant route (wire tenant + verified token + membership) unless it says
 * otherwise: failing closed means a forgotten decorator denies, it never opens.
 */
export type RouteAccess = 'tenant' | 'tenant-anonymous' | 'platform-admin' | 'public';
export const ROUTE_ACCESS = 'strata:route-access';

/** A member's role in a tenant, least to most privileged: each one may do what the ones before it may. */
export const TENANT_ROLES = ['member', 'admin', 'owner'] as const;
export type TenantRole = (typeof TENANT_ROLES)[number];
export const ROUTE_ROLE = 'strata:route-role';

/** Whether a member with `role` may use a route that needs `required`. */
export function roleSatisfies(role: string, required: TenantRole): boolean {
  const rank = TENANT_ROLES.indexOf(role as TenantRole);
  return rank >= 0 && rank >= TENANT_ROLES.indexOf(required);
}

/** OpenAPI security scheme names (libs/platform/api-docs declares them): a member's token, an operator's token. */
export const TENANT_BEARER = 'tenantBearer';
export const PLATFORM_ADMIN_BEARER = 'platformAdminBearer';

// Each access decorator also documents what it implies (security, the tenant header, the edge's
// error answers), so a route documents its access where it declares it and a new route inherits it.
const TenantHeader = () =>
  ApiHeader({
    name: 'X-Tenant',
    required: false,
    description: 'the tenant slug; or use the `/t/{slug}` path prefix or a `{slug}.BASE_DOMAIN` host instead (all that are sent must agree)',
    schema: { type: 'string', pattern: SLUG_RULE.source },
  });

/**
 * A tenant route (wire tenant + verified token + membership) for members with at least `role`:
 * members read, create and update domain resources; admins also delete, manage webhooks, files and
 * members; owners also manage owners and tenant settings. A tenant route without it is refused
 * (deny by default), and test/e2e/route-access.e2e-spec.ts fails CI for it.
 */
export const RequireRole = (role: TenantRole) =>
  applyDecorators(
    SetMetadata(ROUTE_ACCESS, 'tenant' satisfies RouteAccess),
    SetMetadata(ROUTE_ROLE, role),
    // OpenAPI 3.1 lets a non-OAuth requirement list role names: the least role this route needs.
    ApiSecurity(TENANT_BEARER, [role]),
    TenantHeader(),
    ApiErrors(EDGE_ERRORS.tenant),
  );

export const REFUSED_UNDER_IMPERSONATION = 'strata:refused-under-impersonation';

/**
 * On a tenant route (or controller): an impersonation token is refused with 403
 * impersonation_forbidden, whatever the impersonated user's role. For what only the user may do:
 * change their password, manage the tenant's members.
 */
export const RefusedUnderImpersonation = () =>
  applyDecorators(SetMetadata(REFUSED_UNDER_IMPERSONATION, true), ApiErrors({ 403: [AuthErrorCode.ImpersonationForbidden] }));

export const SUSPENDED_TENANT_HANDLED = 'strata:suspended-tenant-handled';

/**
 * The tenant is resolved from the wire but no token is needed (login). A suspended tenant answers
 * 404 like an unknown one, unless `suspended: 'handler'`: then the route is entered with the
 * suspended tenant bound, and must itself answer 403 tenant_suspended once the caller has proven
 * to be a member (login, refresh) — never serve it. A tenant still being onboarded answers 409
 * tenant_provisioning with Retry-After on those routes.
 */
export const TenantAnonymous = (options: { suspended?: 'not-found' | 'handler' } = {}) =>
  options.suspended === 'handler'
    ? applyDecorators(
        SetMetadata(ROUTE_ACCESS, 'tenant-anonymous' satisfies RouteAccess),
        SetMetadata(SUSPENDED_TENANT_HANDLED, true),
        TenantHeader(),
        ApiErrors(EDGE_ERRORS['tenant-anonymous']),
        ApiErrors({ 403: [AuthErrorCode.TenantSuspended], 409: [AuthErrorCode.TenantProvisioning] }),
      )
    : applyDecorators(SetMetadata(ROUTE_ACCESS, 'tenant-anonymous' satisfies RouteAccess), TenantHeader(), ApiErrors(EDGE_ERRORS['tenant-anonymous']));

/** A platform operator's route: bearer token with scope `platform:admin`, no tenant. */
export const PlatformAdmin = () =>
  applyDecorators(
    SetMetadata(ROUTE_ACCESS, 'platform-admin' satisfies RouteAccess),
    ApiSecurity(PLATFORM_ADMIN_BEARER, ['platform:admin']),
    ApiErrors(EDGE_ERRORS['platform-admin']),
  );
/** No tenant, no token (health probes). */
export const PublicRoute = () => SetMetadata(ROUTE_ACCESS, 'public' satisfies RouteAccess);

/** Where the tenant guard leaves the verified platform operator's id (`sub`) on the request. */
export const PLATFORM_OPERATOR = Symbol('strata:platform-operator');

/** On a `@PlatformAdmin()` route: the operator's id from the verified token (for audit: who asked). */
export const PlatformOperator = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  const req = ctx.switchToHttp().getRequest<Record<symbol, unknown>>();
  const operator = req[PLATFORM_OPERATOR];
  if (typeof operator !== 'string') throw new Error('@PlatformOperator() is only available on @PlatformAdmin() routes');
  return operator;
});
