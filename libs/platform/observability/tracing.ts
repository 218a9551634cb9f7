import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, detectResources, resourceAttributesEnvDetector, resourceFromAttributes, serviceNameEnvDetector } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';

/** The instrumentation scope of every span Strata creates itself. */
export const STRATA_TRACER = 'strata';

export interface TracingOptions {
  /** `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one: `strata-api`, `strata-worker`. */
  serviceName: string;
  /**
   * Span processors to use instead of the ones the environment configures; turns tracing on
   * whatever the environment says. Tests pass `[new SimpleSpanProcessor(new InMemorySpanExporter())]`.
   */
  spanProcessors?: SpanProcessor[];
  /** Default: `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, else parent-based always-on. */
  sampler?: Sampler;
  /** Read instead of `process.env` for the on/off decision and the sampler (tests). */
  env?: NodeJS.ProcessEnv;
}

/** Flushes pending spans, shuts the provider down and unregisters the globals. Idempotent. */
export type StopTracing = () => Promise<void>;

export type TraceExporterKind = 'otlp' | 'console';

const EXPORTERS: readonly string[] = ['otlp', 'console', 'none'];
const SAMPLERS = ['always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio'];

// Set by startTracing: the hot paths (every request, every job) test this boolean and create no
// span, context or attribute object at all while tracing is off.
let active = false;

/** True between startTracing() and its stop function: spans are being recorded somewhere. */
export function isTracingEnabled(): boolean {
  return active;
}

/**
 * Which exporters the environment asks for; none means tracing stays off (the default).
 * `OTEL_TRACES_EXPORTER` wins (`none` switches tracing off even with an endpoint set); without
 * it, an OTLP endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `…_TRACES_ENDPOINT`) turns OTLP on.
 * Values are validated like every other setting: a typo stops the process instead of tracing nothing.
 */
export function traceExportersFrom(env: NodeJS.ProcessEnv = process.env): TraceExporterKind[] {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return [];
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL || env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim().toLowerCase();
  const raw = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase();
  let kinds: string[];
  if (raw) {
    kinds = [...new Set(raw.split(',').map((k) => k.trim()).filter(Boolean))];
    const unknown = kinds.filter((k) => !EXPORTERS.includes(k));
    if (unknown.length) {
      throw new Error(`config: OTEL_TRACES_EXPORTER must be otlp, console or none (comma-separated), got ${JSON.stringify(env.OTEL_TRACES_EXPORTER)}`);
    }
    if (kinds.includes('none')) return [];
  } else {
    kinds = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() ? ['otlp'] : [];
  }
  // The installed exporter speaks OTLP over HTTP (port 4318); a gRPC collector endpoint would
  // silently receive nothing.
  if (kinds.includes('otlp') && protocol === 'grpc') {
    throw new Error('config: OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not supported: Strata exports traces over OTLP/HTTP (http/json, port 4318)');
  }
  return kinds as TraceExporterKind[];
}

/** The standard `OTEL_TRACES_SAMPLER` values (`parentbased_always_on` by default). */
export function samplerFrom(env: NodeJS.ProcessEnv = process.env): Sampler {
  const name = env.OTEL_TRACES_SAMPLER?.trim().toLowerCase() || 'parentbased_always_on';
  if (!SAMPLERS.includes(name)) throw new Error(`config: OTEL_TRACES_SAMPLER must be one of ${SAMPLERS.join(', ')}, got ${JSON.stringify(env.OTEL_TRACES_SAMPLER)}`);
  const ratio = () => {
    const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
    const r = arg ? Number(arg) : 1;
    if (!Number.isFinite(r) || r < 0 || r > 1) throw new Error(`config: OTEL_TRACES_SAMPLER_ARG must be a ratio between 0 and 1, got ${JSON.stringify(arg)}`);
    return new TraceIdRatioBasedSampler(r);
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return ratio();
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: ratio() });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

const noop: StopTracing = async () => undefined;

/**
 * Starts OpenTelemetry tracing for this process, or does nothing (returns a no-op stop) when no
 * exporter is configured: then the API stays the no-op implementation and the middleware, the job
 * producer and the runner create no span objects. Call it first thing in `main()`, before the app
 * is built. No auto-instrumentation packages: they patch `require` (useless for ESM-only Nest 12
 * deps and fragile with bundled code), and one middleware (HttpObservationMiddleware) already
 * observes every request, so it opens the server span itself; jobs get theirs from TenantJobRunner.
 *
 * Registers globally: the tracer provider, an AsyncLocalStorage context manager (a separate
 * AsyncLocalStorage from nestjs-cls's, so both contexts ride the same async chain independently)
 * and the W3C trace-context + baggage propagators.
 */
export function startTracing(options: TracingOptions): StopTracing {
  if (active) throw new Error('tracing is already started in this process');
  const env = options.env ?? process.env;
  let processors = options.spanProcessors;
  if (!processors) {
    const kinds = traceExportersFrom(env);
    if (kinds.length === 0) return noop;
    processors = kinds.map((k) =>
      // OTLPTraceExporter reads its endpoint, headers, timeout and compression from OTEL_EXPORTER_OTLP_*.
      k === 'otlp' ? new BatchSpanProcessor({ exporter: new OTLPTraceExporter() }) : new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() }),
    );
  }
  const sampler = options.sampler ?? samplerFrom(env);
  // service.name: our default < OTEL_RESOURCE_ATTRIBUTES < OTEL_SERVICE_NAME (the spec's precedence).
  const resource = defaultResource()
    .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName }))
    .merge(detectResources({ detectors: [resourceAttributesEnvDetector, serviceNameEnvDetector] }));
  const provider = new TracerProvider({ resource, sampler, spanProcessors: processors });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  const registered =
    context.setGlobalContextManager(contextManager) &&
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] })) &&
    trace.setGlobalTracerProvider(provider);
  if (!registered) {
    disableGlobals();
    throw new Error('tracing: another OpenTelemetry SDK is already registered in this process');
  }
  active = true;
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      active = false;
      try {
        await provider.forceFlush();
      } finally {
        await provider.shutdown().catch(() => undefined);
        disableGlobals();
      }
    })());
}

function disableGlobals(): void {
  trace.disable();
  propagation.disable();
  context.disable();
}

/** Strata's tracer (the global provider's, or the API's no-op one while tracing is off). */
export function strataTracer(): Tracer {
  return trace.getTracer(STRATA_TRACER);
}

export interface SpanSpec {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent context; default the active one. */
  parent?: Context;
}

/**
 * Runs `fn` inside a new active span that ends when `fn` settles (a throw records the exception
 * and sets ERROR). While tracing is off it just calls `fn(undefined)`: no span, no context switch.
 */
export async function inSpan<T>(name: string, spec: SpanSpec, fn: (span: Span | undefined) => Promise<T>): Promise<T> {
  if (!active) return fn(undefined);
  const parent = spec.parent ?? context.active();
  return strataTracer().startActiveSpan(name, { kind: spec.kind ?? SpanKind.INTERNAL, attributes: spec.attributes }, parent, async (span) => {
    try {
      return await fn(span);
    } catch (err) {
      recordFailure(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** Marks a span failed: the exception event, `error.type` (the error's class) and ERROR with its message. */
export function recordFailure(span: Span, err: unknown): void {
  if (err instanceof Error) {
    span.recordException(err);
    span.setAttribute('error.type', err.name || err.constructor.name);
  } else {
    span.setAttribute('error.type', '_OTHER');
  }
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}
