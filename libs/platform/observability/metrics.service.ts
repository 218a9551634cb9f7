import { Inject, Injectable, Optional, type OnModuleDestroy } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { SharedDataSources, SiloDataSourceCache, type TenantScope } from '#strata/tenancy/platform';
import { OBSERVABILITY_OPTIONS, type ObservabilityOptions } from './observability.options';
import { tierLabel } from './tenant-log.fields';

export type QueueDepthProbe = () => Promise<number> | number;

/** A route label for requests no route matched: raw URLs would make label cardinality unbounded. */
export const UNMATCHED_ROUTE = 'unmatched';

/**
 * Status from which a tenant request counts as an error in `strata_tenant_errors_total`: 5xx only.
 * 4xx answers are the caller's (validation, 404 probing, an expired token); counting them would page
 * someone for a client's bug. They remain visible by status and tier in the duration histogram.
 */
export const TENANT_ERROR_STATUS = 500;

/**
 * How long a queue-depth probe may take before its queue is left out of the scrape. BullMQ's
 * connections retry forever while Redis is away, so an unbounded probe would hang /metrics itself.
 */
export const QUEUE_PROBE_TIMEOUT_MS = 2000;

function withTimeout(probe: QueueDepthProbe, ms: number): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`queue depth probe timed out after ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([Promise.resolve().then(probe), timeout]).finally(() => clearTimeout(timer));
}

/**
 * Every metric of one application instance, in its own Registry (not prom-client's global one), so
 * several apps in one process — parallel e2e tests, the bench — never collide on a metric name.
 */
@Injectable()
export class MetricsService implements OnModuleDestroy {
  readonly registry = new Registry();
  private readonly queueProbes = new Map<string, QueueDepthProbe>();

  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method, status and tenant tier (never tenant id: unbounded cardinality).',
    labelNames: ['route', 'method', 'status', 'tier'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly tenantRequests = new Counter({
    name: 'strata_tenant_requests_total',
    help: 'HTTP requests served for a tenant (after the tenant guard bound it).',
    labelNames: ['tenant_id'] as const,
    registers: [this.registry],
  });

  private readonly tenantErrors = new Counter({
    name: 'strata_tenant_errors_total',
    help: 'HTTP requests of a tenant answered with a 5xx status.',
    labelNames: ['tenant_id'] as const,
    registers: [this.registry],
  });

  constructor(
    @Optional() private readonly shared?: SharedDataSources,
    @Optional() private readonly silos?: SiloDataSourceCache,
    @Optional() @Inject(OBSERVABILITY_OPTIONS) options: ObservabilityOptions = {},
  ) {
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.registerCollectedGauges();
  }

  /**
   * Lets another lib (jobs) publish a queue's depth, read on every scrape. Returns the unregister
   * function. A probe that throws, or takes longer than QUEUE_PROBE_TIMEOUT_MS, leaves its queue
   * out of that scrape rather than failing (or hanging) /metrics.
   */
  registerQueueDepth(queue: string, probe: QueueDepthProbe): () => void {
    this.queueProbes.set(queue, probe);
    return () => {
      if (this.queueProbes.get(queue) === probe) this.queueProbes.delete(queue);
    };
  }

  /** Records one finished HTTP request. `route` is the route pattern, or undefined when none matched. */
  observeHttp(sample: { route: string | undefined; method: string; status: number; seconds: number; scope: TenantScope | undefined }): void {
    const { route, method, status, seconds, scope } = sample;
    this.httpDuration.observe({ route: route ?? UNMATCHED_ROUTE, method, status: String(status), tier: tierLabel(scope) }, seconds);
    if (!scope) return;
    this.tenantRequests.inc({ tenant_id: scope.tenant.id });
    if (status >= TENANT_ERROR_STATUS) this.tenantErrors.inc({ tenant_id: scope.tenant.id });
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  onModuleDestroy(): void {
    this.queueProbes.clear();
  }

  /** Gauges whose values live elsewhere (pools, silo cache, queues): read on scrape, never pushed. */
  private registerCollectedGauges(): void {
    const shared = this.shared;
    const silos = this.silos;
    const probes = this.queueProbes;
    const pool = (name: string, help: string, pick: (s: { total: number; idle: number; waiting: number }) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['server'] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const s of (await shared?.stats()) ?? []) this.set({ server: s.server }, pick(s));
        },
      });
    // `server` is host:port/database from the pool record: no credentials, bounded by the fleet size.
    pool('strata_db_pool_connections_total', 'Open connections of the shared pool/bridge DataSource per server.', (s) => s.total);
    pool('strata_db_pool_connections_idle', 'Idle connections per server.', (s) => s.idle);
    pool('strata_db_pool_connections_in_use', 'Checked-out connections per server.', (s) => s.total - s.idle);
    pool('strata_db_pool_waiting', 'Callers waiting for a connection per server.', (s) => s.waiting);

    new Gauge({
      name: 'strata_silo_datasources',
      help: 'Silo tenant DataSources currently open in this instance (bounded LRU).',
      registers: [this.registry],
      collect() {
        if (silos) this.set(silos.stats().size);
      },
    });
    new Gauge({
      name: 'strata_silo_connections_reserved',
      help: 'Connections reserved by open silo DataSources against the global silo budget.',
      registers: [this.registry],
      collect() {
        if (silos) this.set(silos.stats().reservedConnections);
      },
    });
    new Gauge({
      name: 'strata_queue_depth',
      help: 'Jobs waiting to be processed per queue (waiting, prioritized, delayed), from probes registered with MetricsService.registerQueueDepth().',
      labelNames: ['queue'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        const entries = [...probes];
        const depths = await Promise.allSettled(entries.map(([, probe]) => withTimeout(probe, QUEUE_PROBE_TIMEOUT_MS)));
        depths.forEach((d, i) => {
          if (d.status === 'fulfilled' && Number.isFinite(d.value)) this.set({ queue: entries[i][0] }, d.value);
        });
      },
    });
  }
}
