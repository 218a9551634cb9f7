import type { MembershipRole } from '#strata/control-plane';
import type { TenantContext, TenantPlacement } from '#strata/tenancy/platform';
import { forbiddenRole } from './auth.errors';
import { roleSatisfies } from './route-access.decorators';

export interface CurrentMember {
  userId: string;
  role: MembershipRole;
  tenant: TenantPlacement;
}

/**
 * The caller as the tenant guard bound it: user, role of its membership as it is now (not as its
 * token says), tenant. The route's @RequireRole already admitted it; `needed` repeats that floor
 * here so a service never acts for a caller below it, whichever route calls it.
 */
export function currentMember(context: TenantContext, needed: MembershipRole, what: string): CurrentMember {
  const scope = context.requireTenant(what, 'members');
  if (!scope.userId || !scope.role || !roleSatisfies(scope.role, needed)) throw forbiddenRole(needed, what);
  return { userId: scope.userId, role: scope.role as MembershipRole, tenant: scope.tenant };
}
