import { context, propagation } from '@opentelemetry/api';
import { tenantLogFields } from './tenant-log.fields';

/**
 * Writes the W3C `traceparent`/`baggage` of the current context into `carrier` (outbound HTTP
 * headers, a job's envelope), with `tenant.id` added to the baggage from the current tenant
 * context. A no-op until tracing installs a propagator (tracing is off without an exporter).
 */
export function injectTraceContext(carrier: Record<string, string>): Record<string, string> {
  const { tenantId } = tenantLogFields();
  let ctx = context.active();
  if (tenantId) {
    const bag = propagation.getBaggage(ctx) ?? propagation.createBaggage();
    ctx = propagation.setBaggage(ctx, bag.setEntry('tenant.id', { value: tenantId }));
  }
  propagation.inject(ctx, carrier);
  return carrier;
}
