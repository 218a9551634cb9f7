import { SpanKind, type Attributes, type Span } from '@opentelemetry/api';
import type { Job } from 'bullmq';
import {
  ATTR_TENANT_ID,
  ATTR_TENANT_TIER,
  ATTR_REQUEST_ID,
  extractTraceContext,
  inSpan,
  isTracingEnabled,
  tierLabel,
  withTenantBaggage,
} from '#strata/observability';
import type { JobScope, TenantEnvelope } from './tenant-job.envelope';

// Messaging semantic conventions are still "incubating"; OTel asks to copy such names rather than
// import them from the unstable entry point.
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id';
export const ATTR_MESSAGING_BATCH_MESSAGE_COUNT = 'messaging.batch.message_count';
export const ATTR_JOB_NAME = 'bullmq.job.name';
export const ATTR_JOB_ATTEMPT = 'bullmq.job.attempt';
export const MESSAGING_SYSTEM_BULLMQ = 'bullmq';

/**
 * The PRODUCER span `send <queue>` around an enqueue (one per add/addBulk), in the enqueuing
 * context: a request's server span, a job's consumer span, or a new trace for cron work. The
 * envelope's trace carrier is injected inside it, so each job's consumer span is its child.
 */
export function traceEnqueue<T>(queue: string, count: number, scope: JobScope, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!isTracingEnabled()) return fn(undefined);
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_BULLMQ,
    [ATTR_MESSAGING_DESTINATION_NAME]: queue,
    [ATTR_MESSAGING_OPERATION_TYPE]: 'send',
    [ATTR_MESSAGING_OPERATION_NAME]: 'send',
    [ATTR_TENANT_ID]: scope.tenant.id,
    [ATTR_TENANT_TIER]: tierLabel(scope),
    [ATTR_REQUEST_ID]: scope.requestId,
    ...(count > 1 ? { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: count } : {}),
  };
  return inSpan(`send ${queue}`, { kind: SpanKind.PRODUCER, attributes }, fn);
}

/**
 * The CONSUMER span `job <queue>/<name>` a job's handler runs in, child of the producer's span
 * when the envelope carries a trace (a new trace otherwise). Its context's baggage has `tenant.id`
 * set from the validated envelope, whatever the carrier's baggage said: the carrier is telemetry,
 * the envelope is the truth. While tracing is off this is just `fn(undefined)`.
 */
export function traceJob<T>(job: Job, queue: string, envelope: TenantEnvelope, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!isTracingEnabled()) return fn(undefined);
  const parent = withTenantBaggage(extractTraceContext(envelope.trace ?? {}), envelope.tenantId);
  const attributes: Attributes = {
    [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM_BULLMQ,
    [ATTR_MESSAGING_DESTINATION_NAME]: queue,
    [ATTR_MESSAGING_OPERATION_TYPE]: 'process',
    [ATTR_MESSAGING_OPERATION_NAME]: 'process',
    ...(job.id ? { [ATTR_MESSAGING_MESSAGE_ID]: job.id } : {}),
    [ATTR_JOB_NAME]: job.name,
    [ATTR_JOB_ATTEMPT]: job.attemptsMade + 1,
    [ATTR_TENANT_ID]: envelope.tenantId,
    [ATTR_REQUEST_ID]: envelope.requestId,
  };
  return inSpan(`job ${queue}/${job.name}`, { kind: SpanKind.CONSUMER, attributes, parent }, fn);
}
