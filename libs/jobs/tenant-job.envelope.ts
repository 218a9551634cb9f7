import { UnrecoverableError } from 'bullmq';
import { TIERS, type Tier } from '#strata/control-plane';
import type { TenantScope } from '#strata/tenancy';

/**
 * Who a job runs for, written by TenantJobProducer from the enqueuing context. The worker trusts
 * only tenantId (and the system flag); tier is informational (logs, metrics) because the registry,
 * read again when the job runs, is the truth about where the tenant lives now.
 */
export interface TenantEnvelope {
  tenantId: string;
  tier: Tier | 'system';
  requestId: string;
  userId?: string;
  impersonatedBy?: string;
  system?: true;
}

/** What every tenant job stores in Redis: the envelope beside the handler's own payload. */
export interface TenantJobData<P = unknown> {
  envelope: TenantEnvelope;
  payload: P;
}

/** TenantScope plus the impersonating admin, which TenantScope does not model yet. */
export type JobScope = TenantScope & { impersonatedBy?: string };

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TOKEN = /^[A-Za-z0-9._:@-]{1,128}$/;

export function envelopeFromScope(scope: JobScope): TenantEnvelope {
  return {
    tenantId: scope.tenant.id,
    tier: scope.system ? 'system' : scope.tenant.tier,
    requestId: scope.requestId,
    ...(scope.userId ? { userId: scope.userId } : {}),
    ...(scope.impersonatedBy ? { impersonatedBy: scope.impersonatedBy } : {}),
    ...(scope.system ? { system: true as const } : {}),
  };
}

/**
 * Validates the envelope of a job read back from Redis. Anything missing or malformed is an
 * UnrecoverableError: retrying cannot make a tenantless job safe, so BullMQ fails it at once.
 */
export function parseTenantEnvelope(data: unknown, systemTenantId: string, where: string): TenantEnvelope {
  const bad = (why: string): never => {
    throw new UnrecoverableError(
      `${where}: ${why}. Jobs must carry a tenant envelope: enqueue them with TenantJobProducer.add() inside a ` +
        `tenant context (or runAsSystem() for cross-tenant work), never with Queue.add() directly.`,
    );
  };
  if (!data || typeof data !== 'object') return bad('job data is not an object, so it has no tenant envelope');
  const env = (data as { envelope?: unknown }).envelope;
  if (!env || typeof env !== 'object') return bad('job has no tenant envelope');
  const e = env as Record<string, unknown>;
  if (typeof e.tenantId !== 'string' || !UUID.test(e.tenantId)) return bad('tenant envelope has no valid tenantId');
  if (typeof e.requestId !== 'string' || !TOKEN.test(e.requestId)) return bad('tenant envelope has no valid requestId');
  if (e.system !== undefined && e.system !== true) return bad('tenant envelope has a malformed system flag');
  const system = e.system === true;
  if (system !== (e.tenantId === systemTenantId) || system !== (e.tier === 'system')) {
    return bad('tenant envelope mixes the system tenant with a real tenant');
  }
  if (!system && !TIERS.includes(e.tier as Tier)) return bad('tenant envelope has no valid tier');
  for (const k of ['userId', 'impersonatedBy'] as const) {
    if (e[k] !== undefined && (typeof e[k] !== 'string' || !TOKEN.test(e[k]))) return bad(`tenant envelope has a malformed ${k}`);
  }
  return {
    tenantId: e.tenantId.toLowerCase(),
    tier: e.tier as Tier | 'system',
    requestId: e.requestId,
    ...(e.userId ? { userId: e.userId as string } : {}),
    ...(e.impersonatedBy ? { impersonatedBy: e.impersonatedBy as string } : {}),
    ...(system ? { system: true as const } : {}),
  };
}
