import { EventEmitter } from 'node:events';
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import { BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { NextFunction, Request, Response } from 'express';
import { ClsServiceManager, CLS_ID } from 'nestjs-cls';
import type { TenantScope } from '#strata/tenancy/platform';
import { HttpObservationMiddleware } from './http-observation.middleware';
import { MetricsService } from './metrics.service';
import { extractTraceContext, injectTraceContext } from './trace-propagation';
import { inSpan, isTracingEnabled, samplerFrom, startTracing, traceExportersFrom, type StopTracing } from './tracing';

const A = '3f2c1a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const scopeOf = (id: string, tier: 'pool' | 'bridge' | 'silo' = 'pool'): TenantScope => ({
  tenant: { id, slug: 'acme', tier, poolId: 'p', schemaName: 'shared', databaseName: null, status: 'active', schemaVersion: '1', placementEpoch: 1 },
  requestId: 'req-12345678',
});
const cls = ClsServiceManager.getClsService();
const inTenant = <T>(scope: TenantScope | undefined, fn: () => T): T =>
  cls.run(() => {
    cls.set(CLS_ID, 'req-12345678');
    if (scope) cls.set('scope', scope);
    return fn();
  });
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('traceExportersFrom (when tracing is on)', () => {
  it.each([
    [{}, []],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, ['otlp']],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, ['otlp']],
    [{ OTEL_TRACES_EXPORTER: 'console' }, ['console']],
    [{ OTEL_TRACES_EXPORTER: 'otlp, console' }, ['otlp', 'console']],
    [{ OTEL_TRACES_EXPORTER: 'none', OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, []],
    [{ OTEL_SDK_DISABLED: 'true', OTEL_TRACES_EXPORTER: 'otlp' }, []],
  ])('%j → %j', (env, expected) => {
    expect(traceExportersFrom(env)).toEqual(expected);
  });

  it('refuses unknown exporters and gRPC by name instead of tracing nothing', () => {
    expect(() => traceExportersFrom({ OTEL_TRACES_EXPORTER: 'jaeger' })).toThrow(/OTEL_TRACES_EXPORTER/);
    expect(() => traceExportersFrom({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(/grpc/);
  });

  it('reads the standard sampler settings and refuses bad ones', () => {
    expect(samplerFrom({}).toString()).toMatch(/ParentBased/);
    expect(samplerFrom({ OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.25' }).toString()).toMatch(/0\.25/);
    expect(() => samplerFrom({ OTEL_TRACES_SAMPLER: 'sometimes' })).toThrow(/OTEL_TRACES_SAMPLER/);
    expect(() => samplerFrom({ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '2' })).toThrow(/OTEL_TRACES_SAMPLER_ARG/);
  });
});

describe('tracing off (no exporter configured)', () => {
  it('registers nothing: no spans, and injectTraceContext writes nothing even in a tenant context', async () => {
    const stop = startTracing({ serviceName: 'strata-test', env: {} });
    expect(isTracingEnabled()).toBe(false);
    const carrier = inTenant(scopeOf(A), () => injectTraceContext({}));
    expect(carrier).toEqual({});
    let seen: unknown = 'not called';
    await inSpan('x', {}, async (span) => (seen = span));
    expect(seen).toBeUndefined();
    await stop();
  });
});

describe('tracing on', () => {
  const exporter = new InMemorySpanExporter();
  let stop: StopTracing;
  beforeAll(() => {
    stop = startTracing({ serviceName: 'strata-test', spanProcessors: [new SimpleSpanProcessor({ exporter })] });
  });
  afterAll(() => stop());
  beforeEach(() => exporter.reset());

  it('refuses a second start in the same process', () => {
    expect(() => startTracing({ serviceName: 'again', spanProcessors: [] })).toThrow(/already started/);
  });

  it('injectTraceContext writes the current span and the current tenant as baggage', async () => {
    const carrier = await inTenant(scopeOf(A), () => inSpan('outbound', {}, async (span) => ({ carrier: injectTraceContext({}), span })));
    expect(carrier.carrier.traceparent).toContain(carrier.span!.spanContext().traceId);
    expect(carrier.carrier.baggage).toBe(`tenant.id=${A}`);
  });

  it('writes no tenant baggage outside a tenant context, even when the active baggage has one', () => {
    const forged = propagation.setBaggage(context.active(), propagation.createBaggage({ 'tenant.id': { value: 'someone-else' }, other: { value: '1' } }));
    const carrier = inTenant(undefined, () => context.with(forged, () => injectTraceContext({})));
    expect(carrier.baggage).toBe('other=1');
  });

  it('extractTraceContext continues the caller trace and drops tenant baggage from outside', () => {
    const ctx = extractTraceContext({ traceparent: TRACEPARENT, baggage: 'tenant.id=forged,tenant.tier=silo,team=blue' });
    expect(trace.getSpanContext(ctx)?.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    const bag = propagation.getBaggage(ctx)!;
    expect(bag.getAllEntries().map(([k]) => k)).toEqual(['team']);
  });

  it('inSpan records a failure and ends the span', async () => {
    await expect(inSpan('failing', { kind: SpanKind.CONSUMER }, async () => Promise.reject(new TypeError('boom')))).rejects.toThrow('boom');
    const [span] = exporter.getFinishedSpans();
    expect(span).toMatchObject({ name: 'failing', kind: SpanKind.CONSUMER, status: { code: SpanStatusCode.ERROR, message: 'boom' } });
    expect(span.attributes['error.type']).toBe('TypeError');
    expect(span.resource.attributes['service.name']).toBe('strata-test');
  });

  describe('the HTTP observation middleware', () => {
    const metrics = new MetricsService(undefined, undefined, { defaultMetrics: false });
    const middleware = new HttpObservationMiddleware(metrics);

    function request(headers: Record<string, string> = {}) {
      const req = { method: 'GET', url: '/projects/1?email=a@b.test', originalUrl: '/projects/1?email=a@b.test', headers, protocol: 'http', httpVersion: '1.1', baseUrl: '' } as unknown as Request;
      const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: false }) as unknown as Response & EventEmitter;
      return { req, res };
    }

    it('runs the request in a SERVER span, keeps the CLS store visible, and stamps the tenant bound later', async () => {
      const { req, res } = request({ traceparent: TRACEPARENT });
      const seen = await inTenant(undefined, () =>
        new Promise<{ traceId?: string; tenant?: string }>((resolve) => {
          const next: NextFunction = () => {
            // What the tenant guard does after the middleware ran: bind the scope into the same store.
            cls.set('scope', scopeOf(A, 'silo'));
            (req as unknown as { route: unknown }).route = { path: '/projects/:id' };
            setTimeout(() => resolve({ traceId: trace.getActiveSpan()?.spanContext().traceId, tenant: (cls.get('scope') as TenantScope).tenant.id }), 1);
          };
          middleware.use(req, res, next);
        }),
      );
      expect(seen).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c', tenant: A });
      Object.assign(res, { statusCode: 503, writableFinished: true });
      res.emit('finish');
      const [span] = exporter.getFinishedSpans();
      expect(span).toMatchObject({ name: 'GET /projects/:id', kind: SpanKind.SERVER, status: { code: SpanStatusCode.ERROR } });
      expect(span.parentSpanContext?.spanId).toBe('b7ad6b7169203331');
      expect(span.attributes).toMatchObject({
        'tenant.id': A,
        'tenant.tier': 'silo',
        'http.request.method': 'GET',
        'http.route': '/projects/:id',
        'http.response.status_code': 503,
        'url.path': '/projects/1',
        'strata.request_id': 'req-12345678',
      });
      expect(JSON.stringify(span.attributes)).not.toContain('a@b.test');
    });

    it('leaves 4xx unset and marks a client abort as an error', async () => {
      const { req, res } = request();
      inTenant(undefined, () => middleware.use(req, res, () => undefined));
      Object.assign(res, { statusCode: 404, writableFinished: true });
      res.emit('finish');
      const aborted = request();
      inTenant(undefined, () => middleware.use(aborted.req, aborted.res, () => undefined));
      aborted.res.emit('close');
      const [notFound, closed] = exporter.getFinishedSpans();
      expect(notFound.status.code).toBe(SpanStatusCode.UNSET);
      expect(notFound.name).toBe('GET');
      expect(notFound.attributes['tenant.id']).toBeUndefined();
      expect(closed).toMatchObject({ status: { code: SpanStatusCode.ERROR }, attributes: { 'error.type': 'client_closed' } });
    });
  });
});

describe('after the stop function', () => {
  it('flushes batched spans, unregisters the globals and stops creating spans', async () => {
    const exported: string[] = [];
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans.map((s) => s.name));
        done({ code: ExportResultCode.SUCCESS });
      },
      shutdown: async () => undefined,
    };
    // As in production: batched, exported every 5 s, so only the stop function's flush exports it.
    const stop = startTracing({ serviceName: 'strata-test', spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: 60_000 })] });
    await inSpan('before-stop', {}, async () => undefined);
    expect(exported).toEqual([]);
    await stop();
    await stop(); // idempotent
    expect(exported).toEqual(['before-stop']);
    expect(isTracingEnabled()).toBe(false);
    expect(trace.getTracer('x').startSpan('y').isRecording()).toBe(false);
    expect(inTenant(scopeOf(A), () => injectTraceContext({}))).toEqual({});
    const middleware = new HttpObservationMiddleware(new MetricsService(undefined, undefined, { defaultMetrics: false }));
    const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: true }) as unknown as Response & EventEmitter;
    let active: unknown = 'unset';
    middleware.use({ method: 'GET', url: '/', originalUrl: '/', headers: { traceparent: TRACEPARENT } } as unknown as Request, res, () => (active = trace.getActiveSpan()));
    res.emit('finish');
    expect(active).toBeUndefined();
    expect(exported).toEqual(['before-stop']);
  });
});
