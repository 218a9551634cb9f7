// Public API of libs/platform/observability.
export { ObservabilityModule } from './observability.module';
export { OBSERVABILITY_OPTIONS, logLevelFrom, setObservabilityDefaults, type ObservabilityOptions } from './observability.options';
export { MetricsService, TENANT_ERROR_STATUS, UNMATCHED_ROUTE, QUEUE_PROBE_TIMEOUT_MS, type QueueDepthProbe } from './metrics.service';
export { tenantLogFields, tierLabel, currentClsStore, SYSTEM_TENANT_LABEL, type TenantLogFields } from './tenant-log.fields';
export { tenantMixin, REDACTED_PATHS } from './log.config';
export { injectTraceContext, extractTraceContext, withTenantBaggage, TENANT_BAGGAGE_KEY, type TraceCarrier } from './trace-propagation';
export {
  startTracing,
  isTracingEnabled,
  traceExportersFrom,
  samplerFrom,
  strataTracer,
  inSpan,
  recordFailure,
  STRATA_TRACER,
  type TracingOptions,
  type StopTracing,
  type SpanSpec,
} from './tracing';
export { TracingShutdownModule } from './tracing-shutdown.module';
export { ATTR_TENANT_ID, ATTR_TENANT_TIER, ATTR_REQUEST_ID } from './http-server.span';
// Apps install nestjs-pino's Nest logger (app.useLogger) through this lib, not the package directly.
export { Logger as StrataLogger, PinoLogger } from 'nestjs-pino';
