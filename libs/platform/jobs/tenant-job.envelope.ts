import { UnrecoverableError } from 'bullmq';
import { TIERS, type Tier } from '#strata/control-plane';
import type { TenantScope } from '#strata/tenancy/platform';

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
  /**
   * W3C trace context of the enqueuing code (`traceparent`, `tracestate`, `baggage`), present only
   * while tracing is on. Observability metadata: never a source of the tenant (tenantId is).
   */
  trace?: Record<string, string>;
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

/**
 * The trace carrier keys kept, with their size bounds: traceparent is 55 characters in version 00
 * (room left for future versions), tracestate 512 (what W3C asks every vendor to propagate),
 * baggage 8192 (the W3C baggage limit).
 */
export const TRACE_CARRIER_LIMITS: Readonly<Record<string, number>> = Object.freeze({ traceparent: 128, tracestate: 512, baggage: 8192 });
// Printable ASCII: W3C headers never contain anything else.
const HEADER_VALUE = /^[\x20-\x7e]*$/;

/**
 * The trace carrier of an envelope, or undefined when there is none or it is malformed (not an
 * object, a non-string, oversized or non-printable value, no known key). Malformed carriers are
 * dropped, not refused: tracing is telemetry, and failing a tenant's job over its telemetry would
 * lose work. Unknown keys are not copied. Never a source of the tenant (the runner re-sets it).
 */
export function parseTraceCarrier(raw: unknown): Record<string, string> | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const given = raw as Record<string, unknown>;
  const carrier: Record<string, string> = {};
  for (const [key, max] of Object.entries(TRACE_CARRIER_LIMITS)) {
    const v = given[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length > max || !HEADER_VALUE.test(v)) return undefined;
    carrier[key] = v;
  }
  return Object.keys(carrier).length ? carrier : undefined;
}

export function envelopeFromScope(scope: JobScope, trace?: Record<string, string>): TenantEnvelope {
  return {
    tenantId: scope.tenant.id,
    tier: scope.system ? 'system' : scope.tenant.tier,
    requestId: scope.requestId,
    ...(scope.userId ? { userId: scope.userId } : {}),
    ...(scope.impersonatedBy ? { impersonatedBy: scope.impersonatedBy } : {}),
    ...(scope.system ? { system: true as const } : {}),
    ...(trace && Object.keys(trace).length ? { trace } : {}),
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
    // Ids in lower case at every edge, so caches keyed by them (memberships) see one spelling.
    ...(e.userId ? { userId: (e.userId as string).toLowerCase() } : {}),
    ...(e.impersonatedBy ? { impersonatedBy: e.impersonatedBy as string } : {}),
    ...(system ? { system: true as const } : {}),
    ...withTrace(parseTraceCarrier(e.trace)),
  };
}

const withTrace = (trace: Record<string, string> | undefined) => (trace ? { trace } : {});
