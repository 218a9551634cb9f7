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
  };
}

/** The typed value held in CLS for the duration of a request, job or system task. */
export interface TenantScope {
  tenant: TenantPlacement;
  requestId: string;
  userId?: string;
  role?: string;
  /** The platform operator acting as this user, when impersonating (an id, never an email). */
  impersonatedBy?: string;
  /** Set for cross-tenant work run as the system tenant. */
  system?: boolean;
}
