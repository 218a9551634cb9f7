import { context, propagation, ROOT_CONTEXT, type Baggage, type Context } from '@opentelemetry/api';
import { tenantLogFields } from './tenant-log.fields';

/** The baggage key carrying the tenant across process boundaries (ids only, never names). */
export const TENANT_BAGGAGE_KEY = 'tenant.id';

/** What W3C propagation writes and reads: `traceparent`, `tracestate`, `baggage`. */
export type TraceCarrier = Record<string, string>;

/**
 * Writes the W3C `traceparent`/`baggage` of the current context into `carrier` (outbound HTTP
 * headers, a job's envelope), with `tenant.id` added to the baggage from the current tenant
 * context. Outside a tenant context no `tenant.id` is written, even if the active baggage holds
 * one. A no-op until tracing installs a propagator (tracing is off without an exporter).
 */
export function injectTraceContext(carrier: Record<string, string>): Record<string, string> {
  const { tenantId } = tenantLogFields();
  let ctx = context.active();
  const bag = propagation.getBaggage(ctx);
  if (tenantId) {
    ctx = propagation.setBaggage(ctx, (bag ?? propagation.createBaggage()).setEntry(TENANT_BAGGAGE_KEY, { value: tenantId }));
  } else if (bag?.getEntry(TENANT_BAGGAGE_KEY)) {
    ctx = propagation.setBaggage(ctx, bag.removeEntry(TENANT_BAGGAGE_KEY));
  }
  propagation.inject(ctx, carrier);
  return carrier;
}

/**
 * The context described by an incoming carrier (request headers, a job's trace carrier) on top of
 * `parent` (default: the root context, so nothing of the caller's context leaks in). Baggage under
 * `tenant.` is dropped: baggage arrives from outside (any HTTP client can send a `baggage` header)
 * and is never a source of the tenant. The process re-adds `tenant.id` itself from its own truth:
 * the CLS tenant (injectTraceContext) or a job's validated envelope (TenantJobRunner).
 */
export function extractTraceContext(carrier: Record<string, string | string[] | undefined>, parent: Context = ROOT_CONTEXT): Context {
  const ctx = propagation.extract(parent, carrier);
  const bag = propagation.getBaggage(ctx);
  if (!bag || bag === propagation.getBaggage(parent)) return ctx;
  const stripped = withoutTenantEntries(bag);
  if (stripped === bag) return ctx;
  return stripped.getAllEntries().length ? propagation.setBaggage(ctx, stripped) : propagation.deleteBaggage(ctx);
}

function withoutTenantEntries(bag: Baggage): Baggage {
  const keys = bag.getAllEntries().map(([k]) => k).filter((k) => k.startsWith('tenant.'));
  return keys.length ? bag.removeEntries(...keys) : bag;
}

/** `ctx` with `tenant.id` baggage set to a tenant this process verified (a job's envelope). */
export function withTenantBaggage(ctx: Context, tenantId: string): Context {
  const bag = propagation.getBaggage(ctx) ?? propagation.createBaggage();
  return propagation.setBaggage(ctx, bag.setEntry(TENANT_BAGGAGE_KEY, { value: tenantId }));
}
