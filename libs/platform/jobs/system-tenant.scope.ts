import { Injectable } from '@nestjs/common';
import { SYSTEM_TENANT, SYSTEM_TENANT_ID, TenantContext, type TenantPlacement, type TenantScope } from '#strata/tenancy/platform';

/** The system tenant (libs/platform/tenancy): its own case, with no tier, pool or home. */
export { SYSTEM_TENANT, SYSTEM_TENANT_ID };
/** Its log label (slug). */
export const SYSTEM_TENANT_LABEL = SYSTEM_TENANT.slug;

export function isSystemScope(scope: Pick<TenantScope, 'tenant' | 'system'> | undefined): boolean {
  return Boolean(scope?.system) || scope?.tenant.id === SYSTEM_TENANT_ID;
}

/** Enters the explicit system tenant for cross-tenant work (cron sweeps, fan-out, maintenance). */
@Injectable()
export class SystemTenantRunner {
  constructor(private readonly context: TenantContext) {}

  /** Runs `fn` in a fresh context holding the system scope; the caller's context is untouched. */
  runAsSystem<T>(fn: () => T, requestId?: string): T {
    return this.context.run({ tenant: SYSTEM_TENANT, system: true, ...(requestId ? { requestId } : {}) }, fn);
  }

  /** Runs `fn` as one tenant, from inside system work (fan-out): same request id, so the runs correlate. */
  runAsTenant<T>(tenant: TenantPlacement, fn: () => T): T {
    const scope = this.context.require('entering a tenant from system work');
    if (!isSystemScope(scope)) throw new Error('runAsTenant is for system work; tenant code already runs in its own tenant');
    return this.context.run({ tenant, requestId: scope.requestId }, fn);
  }
}
