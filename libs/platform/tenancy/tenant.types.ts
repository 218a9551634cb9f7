import type { TenantEntity, Tier, TenantStatus } from '#strata/control-plane';

/** What the connection layer needs to know about a tenant: where it lives and under which id. */
export interface TenantPlacement {
  id: string;
  slug: string;
  tier: Tier;
  poolId: string;
  schemaName: string;
  databaseName: string | null;
  status: TenantStatus;
  /** Tenant schema version of its own schema/database; pool tenants follow their pool's instead. */
  schemaVersion: string;
  /** Bumped by every move's cutover: a unit that found its home retired waits for a newer one. */
  placementEpoch: number;
  /** The tenant's plan (control.plans id): its units' budgets follow it (UNIT_BUDGET_POLICY). */
  plan?: string;
}

/** The placement of a control-plane tenant record: what jobs, the HTTP edge and moves hand to tenancy. */
export function placementOf(t: TenantEntity): TenantPlacement {
  return {
    id: t.id,
    slug: t.slug,
    tier: t.tier,
    poolId: t.poolId,
    schemaName: t.schemaName,
    databaseName: t.databaseName,
    status: t.status,
    schemaVersion: t.schemaVersion,
    placementEpoch: t.placementEpoch,
    plan: t.plan,
  };
}

/** The nil UUID: the system tenant's id, which no provisioned tenant can have. */
export const SYSTEM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

/**
 * Who cross-tenant work (cron fan-out, maintenance) runs as. Not a placement: it has no tier, pool
 * or home, so nothing that needs one (a unit of work, a cache key, a file) can be given it.
 */
export interface SystemTenant {
  readonly id: typeof SYSTEM_TENANT_ID;
  readonly slug: 'system';
  readonly tier: 'system';
}
export const SYSTEM_TENANT: SystemTenant = Object.freeze({ id: SYSTEM_TENANT_ID, slug: 'system', tier: 'system' });

interface ScopeBase {
  requestId: string;
  userId?: string;
  role?: string;
  /** The platform operator acting as this user, when impersonating (an id, never an email). */
  impersonatedBy?: string;
  /** The impersonation (control.impersonations id) the request runs under. */
  impersonationId?: string;
}

/** Work for one tenant, at its placement. */
export interface TenantUnitScope extends ScopeBase {
  tenant: TenantPlacement;
  system?: false;
}

/** Cross-tenant work, as the system tenant. */
export interface SystemScope extends ScopeBase {
  tenant: SystemTenant;
  system: true;
}

/** The typed value held in CLS for the duration of a request, job or system task. */
export type TenantScope = TenantUnitScope | SystemScope;
