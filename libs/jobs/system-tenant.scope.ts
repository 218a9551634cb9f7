import { Injectable } from '@nestjs/common';
import type { Tier } from '#strata/control-plane';
import { TenantContext, type TenantPlacement, type TenantScope } from '#strata/tenancy/platform';

/** The system tenant's fixed id: the nil UUID, which no provisioned tenant can have. */
export const SYSTEM_TENANT_ID = '00000000-0000-0000-0000-000000000000';
/** Its log label (slug). */
export const SYSTEM_TENANT_LABEL = 'system';

/**
 * The placement the system scope carries. It names no real place on purpose: the tier is not one
 * of pool/bridge/silo, so TenantConnectionManager finds no strategy and throws before it takes a
 * connection; the empty pool id and schema would also be refused by the placement resolver and by
 * tenantSetupSql. Cross-tenant work reads the control plane, then enters each tenant with
 * TenantContext.run() to touch its data.
 */
export const SYSTEM_TENANT: Readonly<TenantPlacement> = Object.freeze({
  id: SYSTEM_TENANT_ID,
  slug: SYSTEM_TENANT_LABEL,
  tier: SYSTEM_TENANT_LABEL as unknown as Tier,
  poolId: '',
  schemaName: '',
  databaseName: null,
  status: 'active',
  schemaVersion: '',
  placementEpoch: 0,
});

export function isSystemScope(scope: Pick<TenantScope, 'tenant' | 'system'> | undefined): boolean {
  return Boolean(scope?.system) || scope?.tenant.id === SYSTEM_TENANT_ID;
}

/** Enters the explicit system tenant for cross-tenant work (cron sweeps, fan-out, maintenance). */
@Injectable()
export class SystemTenantRunner {
  constructor(private readonly context: TenantContext) {}

  /** Runs `fn` in a fresh context holding the system scope; the caller's context is untouched. */
  runAsSystem<T>(fn: () => T, requestId?: string): T {
    return this.context.run({ tenant: { ...SYSTEM_TENANT }, system: true, ...(requestId ? { requestId } : {}) }, fn);
  }

  /** Runs `fn` as one tenant, from inside system work (fan-out): same request id, so the runs correlate. */
  runAsTenant<T>(tenant: TenantPlacement, fn: () => T): T {
    const scope = this.context.require('entering a tenant from system work');
    if (!isSystemScope(scope)) throw new Error('runAsTenant is for system work; tenant code already runs in its own tenant');
    return this.context.run({ tenant, requestId: scope.requestId }, fn);
  }
}
