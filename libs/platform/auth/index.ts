export { AuthModule } from './auth.module';
export { JwtService, type TenantTokenClaims, type PlatformTokenClaims } from './jwt.service';
export { TenantAnonymous, PlatformAdmin, PlatformOperator, PublicRoute, type RouteAccess } from './route-access.decorators';
export { hashPassword, verifyPassword } from './password.hasher';
