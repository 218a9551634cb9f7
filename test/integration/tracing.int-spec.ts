import { RequireRole } from '#strata/auth';
import { randomBytes, randomUUID } from 'node:crypto';
import { Controller, Get, Injectable, Post } from '@nestjs/common';
import { Processor } from '@nestjs/bullmq';
import { propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace';
import type { Job } from 'bullmq';
import type { Tier } from '#strata/control-plane';
import { JOBS_OPTIONS, JobsModule, TenantJobProducer, TenantWorkerHost, type ResolvedJobsOptions, type TenantEnvelope, type TenantJobData } from '#strata/jobs';
import { injectTraceContext, startTracing, type StopTracing } from '#strata/observability';
import { TenantContext } from '#strata/tenancy/platform';
import { startTestApp, type OnboardedTenant, type TestApp } from '../support/test-app';
import { sleep, waitFor } from '../support/tenancy-fixture';
import { startTestWorker, type TestWorker } from '../support/worker-fixture';

jest.setTimeout(90_000);

// A unique queue name under the run's JOBS_PREFIX, which the API and the test's worker share.
const QUEUE = `trace-test-${randomBytes(4).toString('hex')}`;
const TRACE_ID = '0af7651916cd43dd8448eb211c80319c';
const CALLER_SPAN = 'b7ad6b7169203331';
const TRACEPARENT = `00-${TRACE_ID}-${CALLER_SPAN}-01`;

interface Seen {
  tenantId?: string;
  traceId?: string;
  spanId?: string;
  baggageTenant?: string;
  outbound: Record<string, string>;
}

/** What a tenant handler sees after an await: its CLS tenant and its active span, and what an outbound call would send. */
@Controller('trace-probe')
@RequireRole('member')
class TraceProbeController {
  constructor(
    private readonly ctx: TenantContext,
    private readonly producer: TenantJobProducer,
  ) {}

  @Get('seen')
  async seen(): Promise<Seen> {
    await sleep(Math.random() * 10);
    const span = trace.getActiveSpan()?.spanContext();
    return { tenantId: this.ctx.current()?.tenant.id, traceId: span?.traceId, spanId: span?.spanId, outbound: injectTraceContext({}) };
  }

  @Post('enqueue')
  async enqueue(): Promise<{ jobId: string; envelope: TenantEnvelope }> {
    const job = await this.producer.add(QUEUE, 'echo', { at: Date.now() });
    return { jobId: job.id!, envelope: job.data.envelope };
  }
}

/** Records, per job, the tenant, span and baggage its handler ran with. */
@Injectable()
@Processor(QUEUE, { concurrency: 4 })
class TraceEchoProcessor extends TenantWorkerHost<{ at: number }, void> {
  static seen = new Map<string, Seen>();
  constructor(private readonly ctx: TenantContext) {
    super();
  }

  protected async handle(job: Job<TenantJobData<{ at: number }>>): Promise<void> {
    await sleep(1);
    const span = trace.getActiveSpan()?.spanContext();
    TraceEchoProcessor.seen.set(job.id!, {
      tenantId: this.ctx.tenant.id,
      traceId: span?.traceId,
      spanId: span?.spanId,
      baggageTenant: propagation.getActiveBaggage()?.getEntry('tenant.id')?.value,
      outbound: injectTraceContext({}),
    });
  }
}

type Tenant = OnboardedTenant;

describe('tracing: tenant on server spans, W3C context into jobs and outbound calls (real API, Redis, worker)', () => {
  const exporter = new InMemorySpanExporter();
  let t: TestApp;
  let worker: TestWorker;
  const http = () => t.http();
  const tenants: Partial<Record<Tier, Tenant>> = {};

  const as = (who: Tenant, method: 'get' | 'post', path: string, requestId = `rq-${randomUUID()}`) =>
    http()[method](path).set('X-Tenant', who.slug).set('authorization', `Bearer ${who.token}`).set('X-Request-Id', requestId);

  const spans = () => exporter.getFinishedSpans();
  const serverSpanOf = (requestId: string) => spans().find((s) => s.kind === SpanKind.SERVER && s.attributes['strata.request_id'] === requestId);
  const byId = (spanId: string | undefined) => spans().find((s) => s.spanContext().spanId === spanId);
  const waitForJob = async (jobId: string): Promise<Seen> => {
    const seen = await waitFor(() => TraceEchoProcessor.seen.get(jobId), (s) => s !== undefined, 20_000);
    if (!seen) throw new Error(`job ${jobId} did not run within 20 s`);
    return seen;
  };
  const consumerSpanOf = (jobId: string) =>
    waitFor(
      () => spans().find((s) => s.kind === SpanKind.CONSUMER && s.attributes['messaging.message.id'] === jobId),
      (s) => s !== undefined,
      10_000,
    ) as Promise<ReadableSpan>;

  beforeAll(async () => {
    t = await startTestApp({}, { extra: { imports: [JobsModule.registerQueue(QUEUE)], controllers: [TraceProbeController] } });
    for (const tier of ['pool', 'bridge', 'silo'] as const) tenants[tier] = await t.onboard(`tr${tier}`, tier);
    // Jobs-only worker on the API's prefix (this run's JOBS_PREFIX), consuming nothing but the test's queue.
    worker = await startTestWorker(t.config, { prefix: t.app.get<ResolvedJobsOptions>(JOBS_OPTIONS).prefix, jobsOnly: true, queues: [QUEUE], providers: [TraceEchoProcessor] });
  });

  afterAll(async () => {
    await worker?.close();
    await t?.close();
  });

  describe('while tracing is off (no exporter configured)', () => {
    it('creates no span, injects nothing and enqueues jobs without a trace carrier, which run as before', async () => {
      const pool = tenants.pool!;
      const seen = (await as(pool, 'get', '/trace-probe/seen').expect(200)).body as Seen;
      expect(seen).toEqual({ tenantId: pool.id, outbound: {} });
      const { jobId, envelope } = (await as(pool, 'post', '/trace-probe/enqueue').expect(201)).body;
      expect(envelope).not.toHaveProperty('trace');
      expect(await waitForJob(jobId)).toEqual({ tenantId: pool.id, outbound: {} });
    });
  });

  describe('with an exporter', () => {
    let stop: StopTracing;
    beforeAll(() => {
      stop = startTracing({ serviceName: 'strata-api', spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    });
    afterAll(() => stop());

    it.each(['pool', 'bridge', 'silo'] as const)('a %s tenant request yields a SERVER span with its tenant.id, and the handler sees both contexts', async (tier) => {
      const t = tenants[tier]!;
      const requestId = `rq-${randomUUID()}`;
      const seen = (await as(t, 'get', '/trace-probe/seen', requestId).expect(200)).body as Seen;
      const span = serverSpanOf(requestId)!;
      expect(span).toBeDefined();
      expect(span.name).toBe('GET /trace-probe/seen');
      expect(span.attributes).toMatchObject({ 'tenant.id': t.id, 'tenant.tier': tier, 'http.route': '/trace-probe/seen', 'http.response.status_code': 200 });
      // Inside the handler, after an await: the CLS tenant and the server span are both there.
      expect(seen).toMatchObject({ tenantId: t.id, traceId: span.spanContext().traceId, spanId: span.spanContext().spanId });
      // An outbound call from the handler carries the span and the tenant.
      expect(seen.outbound.traceparent).toBe(`00-${span.spanContext().traceId}-${span.spanContext().spanId}-01`);
      expect(seen.outbound.baggage).toBe(`tenant.id=${t.id}`);
      // Ids and tiers only.
      expect(JSON.stringify(span.attributes)).not.toMatch(/@|inc\b/);
    });

    it('continues an incoming traceparent, and never takes the tenant from incoming baggage', async () => {
      const t = tenants.bridge!;
      const requestId = `rq-${randomUUID()}`;
      const res = await as(t, 'get', '/trace-probe/seen', requestId)
        .set('traceparent', TRACEPARENT)
        .set('baggage', `tenant.id=${tenants.silo!.id},team=blue`)
        .expect(200);
      const span = serverSpanOf(requestId)!;
      expect(span.spanContext().traceId).toBe(TRACE_ID);
      expect(span.parentSpanContext?.spanId).toBe(CALLER_SPAN);
      const seen = res.body as Seen;
      expect(seen.traceId).toBe(TRACE_ID);
      // Other baggage travels on; tenant.id is the request's own tenant, not the one the caller claimed.
      expect(Object.fromEntries(seen.outbound.baggage.split(',').map((kv) => kv.split('=')))).toEqual({ 'tenant.id': t.id, team: 'blue' });
    });

    it('a request the guard rejects has a server span without a tenant', async () => {
      const requestId = `rq-${randomUUID()}`;
      await http().get('/trace-probe/seen').set('X-Tenant', tenants.pool!.slug).set('X-Request-Id', requestId).expect(401);
      const span = serverSpanOf(requestId)!;
      expect(span.attributes['http.response.status_code']).toBe(401);
      expect(span.attributes['tenant.id']).toBeUndefined();
      expect(span.status.code).toBe(SpanStatusCode.UNSET);
    });

    it('under interleaved concurrent requests of three tenants, every span and handler sees its own tenant', async () => {
      const all = [tenants.pool!, tenants.bridge!, tenants.silo!];
      const sent = await Promise.all(
        Array.from({ length: 30 }, async (_, i) => {
          const tenant = all[i % all.length];
          const requestId = `rq-${randomUUID()}`;
          const seen = (await as(tenant, 'get', '/trace-probe/seen', requestId).expect(200)).body as Seen;
          return { tenant, requestId, seen };
        }),
      );
      for (const { tenant, requestId, seen } of sent) {
        const span = serverSpanOf(requestId)!;
        expect({ span: span.attributes['tenant.id'], handler: seen.tenantId, baggage: seen.outbound.baggage }).toEqual({
          span: tenant.id,
          handler: tenant.id,
          baggage: `tenant.id=${tenant.id}`,
        });
        expect(seen.spanId).toBe(span.spanContext().spanId);
      }
    });

    it('a job enqueued in a tenant request runs in a CONSUMER span of the same trace, with tenant.id baggage', async () => {
      const t = tenants.silo!;
      const requestId = `rq-${randomUUID()}`;
      const { jobId, envelope } = (await as(t, 'post', '/trace-probe/enqueue', requestId).set('traceparent', TRACEPARENT).expect(201)).body;
      expect(envelope).toMatchObject({ tenantId: t.id, tier: 'silo', requestId, trace: { traceparent: expect.stringContaining(TRACE_ID), baggage: `tenant.id=${t.id}` } });

      const seen = await waitForJob(jobId);
      const consumer = await consumerSpanOf(jobId);
      const producer = byId(consumer.parentSpanContext?.spanId)!;
      const server = serverSpanOf(requestId)!;
      // caller → SERVER (API) → PRODUCER `send <queue>` → CONSUMER `job <queue>/echo` (worker): one trace.
      expect(consumer.spanContext().traceId).toBe(TRACE_ID);
      expect(producer).toMatchObject({ name: `send ${QUEUE}`, kind: SpanKind.PRODUCER });
      expect(producer.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
      expect(consumer.name).toBe(`job ${QUEUE}/echo`);
      expect(consumer.attributes).toMatchObject({
        'tenant.id': t.id,
        'tenant.tier': 'silo',
        'messaging.system': 'bullmq',
        'messaging.destination.name': QUEUE,
        'messaging.operation.type': 'process',
        'strata.request_id': requestId,
      });
      expect(producer.attributes).toMatchObject({ 'tenant.id': t.id, 'messaging.message.id': jobId, 'messaging.operation.type': 'send' });
      // The handler ran in the tenant's CLS context, inside the consumer span, with the tenant in baggage,
      // and an outbound call from the job would carry both on.
      expect(seen).toEqual({
        tenantId: t.id,
        traceId: TRACE_ID,
        spanId: consumer.spanContext().spanId,
        baggageTenant: t.id,
        outbound: { traceparent: `00-${TRACE_ID}-${consumer.spanContext().spanId}-01`, baggage: `tenant.id=${t.id}` },
      });
    });

    it('takes the tenant from the envelope, not from a forged carrier, and runs a job whose carrier is malformed', async () => {
      const a = tenants.pool!;
      const queue = worker.queue(QUEUE);
      const envelope = { tenantId: a.id, tier: 'pool', requestId: 'rq-forged-baggage' };
      const forged = await queue.add('echo', { envelope: { ...envelope, trace: { traceparent: TRACEPARENT, baggage: `tenant.id=${tenants.silo!.id}` } }, payload: { at: 0 } });
      const malformed = await queue.add('echo', { envelope: { ...envelope, trace: { traceparent: 42 } }, payload: { at: 0 } });
      const [f, m] = [await waitForJob(forged.id!), await waitForJob(malformed.id!)];
      expect(f).toMatchObject({ tenantId: a.id, traceId: TRACE_ID, baggageTenant: a.id });
      expect(m).toMatchObject({ tenantId: a.id, baggageTenant: a.id });
      expect(m.traceId).not.toBe(TRACE_ID);
      const mSpan = await consumerSpanOf(malformed.id!);
      expect(mSpan.parentSpanContext).toBeUndefined(); // a new trace: the carrier was dropped
      expect(mSpan.attributes['tenant.id']).toBe(a.id);
    });
  });
});
