import { ClsServiceManager, CLS_ID } from 'nestjs-cls';
import type { TenantScope } from '#strata/tenancy/platform';

/** The label cross-tenant work carries instead of a tenant id, in logs and metrics alike. */
export const SYSTEM_TENANT_LABEL = 'system';

/** Fields every log line carries about whose work it is. Ids and slugs only: never names or emails. */
export interface TenantLogFields {
  tenantId?: string;
  tenantSlug?: string;
  tenantTier?: string;
  requestId?: string;
  /** Only under impersonation: the user acted as, beside the operator acting. */
  userId?: string;
  impersonatedBy?: string;
  impersonationId?: string;
}

/**
 * The CLS store a log line or a metric belongs to. Read through the static ClsServiceManager, not
 * DI, because pino calls its mixin outside Nest and jobs/cron log from their own CLS contexts.
 */
export function currentClsStore(): Record<PropertyKey, unknown> | undefined {
  const cls = ClsServiceManager.getClsService();
  if (!cls?.isActive()) return undefined;
  return cls.get() as Record<PropertyKey, unknown> | undefined;
}

/**
 * Tenant fields of a CLS store (the current one by default). Read at log time, not when a child
 * logger is made: the tenant guard binds the scope after the logging middleware has run.
 */
export function tenantLogFields(store: Record<PropertyKey, unknown> | undefined = currentClsStore()): TenantLogFields {
  if (!store) return {};
  const scope = store.scope as TenantScope | undefined;
  const requestId = scope?.requestId ?? (typeof store[CLS_ID] === 'string' ? (store[CLS_ID] as string) : undefined);
  if (!scope) return requestId ? { requestId } : {};
  // The system tenant keeps its own id (so its work stays traceable) but always the `system` label.
  const fields: TenantLogFields = scope.system
    ? { tenantId: scope.tenant?.id ?? SYSTEM_TENANT_LABEL, tenantSlug: SYSTEM_TENANT_LABEL, tenantTier: SYSTEM_TENANT_LABEL }
    : { tenantId: scope.tenant.id, tenantSlug: scope.tenant.slug, tenantTier: scope.tenant.tier };
  if (requestId) fields.requestId = requestId;
  // Every line of an impersonated request names both identities: the operator (an id, never an
  // email) beside the user, and the impersonation it runs under.
  if (typeof scope.impersonatedBy === 'string') {
    fields.impersonatedBy = scope.impersonatedBy;
    if (scope.userId) fields.userId = scope.userId;
  }
  if (typeof scope.impersonationId === 'string') fields.impersonationId = scope.impersonationId;
  return fields;
}

/** The metrics label for a scope's tier: `none` without a tenant, `system` for cross-tenant work. */
export function tierLabel(scope: TenantScope | undefined): string {
  if (!scope) return 'none';
  return scope.system ? SYSTEM_TENANT_LABEL : scope.tenant.tier;
}
