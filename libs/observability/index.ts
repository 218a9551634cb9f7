// Public API of libs/observability.
export { ObservabilityModule } from './observability.module';
export { OBSERVABILITY_OPTIONS, logLevelFrom, setObservabilityDefaults, type ObservabilityOptions } from './observability.options';
export { MetricsService, TENANT_ERROR_STATUS, UNMATCHED_ROUTE, type QueueDepthProbe } from './metrics.service';
export { tenantLogFields, tierLabel, currentClsStore, SYSTEM_TENANT_LABEL, type TenantLogFields } from './tenant-log.fields';
export { tenantMixin, REDACTED_PATHS } from './log.config';
export { injectTraceContext } from './trace-propagation';
// Apps install nestjs-pino's Nest logger (app.useLogger) through this lib, not the package directly.
export { Logger as StrataLogger, PinoLogger } from 'nestjs-pino';
