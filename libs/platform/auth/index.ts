export { AuthModule } from './auth.module';
export { JwtService, type TenantTokenClaims, type PlatformTokenClaims, type ImpersonationTokenClaims } from './jwt.service';
export {
  TenantAnonymous,
  PlatformAdmin,
  PlatformOperator,
  PublicRoute,
  RequireRole,
  RefusedUnderImpersonation,
  REFUSED_UNDER_IMPERSONATION,
  TENANT_ROLES,
  TENANT_BEARER,
  PLATFORM_ADMIN_BEARER,
  ROUTE_ACCESS,
  ROUTE_ROLE,
  roleSatisfies,
  type RouteAccess,
  type TenantRole,
} from './route-access.decorators';
export { hashPassword, verifyPassword } from './password.hasher';
export { PASSWORD_HASHING, HashingGate } from './hashing.gate';
export { LOGIN_THROTTLE, type LoginThrottlePort } from './login-throttle.port';
export { AuthErrorCode, EDGE_ERRORS } from './auth.errors';
export { LoginFailures, LOGIN_FAILURE_WINDOW_MS, LOGIN_FAILURE_MAX_KEYS } from './login-failures.aggregator';
export { ImpersonationsService, IMPERSONATION_TTL_SECONDS } from './impersonations.service';
export { ImpersonationView, ImpersonationTokenView, StartImpersonationDto } from './impersonation.dto';
