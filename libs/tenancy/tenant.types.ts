import type { Tier, TenantStatus } from '#strata/control-plane';

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
