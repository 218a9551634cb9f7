import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';

/**
 * Every route is a tenant route (wire tenant + verified token + membership) unless it says
 * otherwise: failing closed means a forgotten decorator denies, it never opens.
 */
export type RouteAccess = 'tenant' | 'tenant-anonymous' | 'platform-admin' | 'public';
export const ROUTE_ACCESS = 'strata:route-access';

/** The tenant is resolved from the wire but no token is needed (login). */
export const TenantAnonymous = () => SetMetadata(ROUTE_ACCESS, 'tenant-anonymous' satisfies RouteAccess);
/** A platform operator's route: bearer token with scope `platform:admin`, no tenant. */
export const PlatformAdmin = () => SetMetadata(ROUTE_ACCESS, 'platform-admin' satisfies RouteAccess);
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
