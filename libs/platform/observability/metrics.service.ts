import { Inject, Injectable, Optional, type OnModuleDestroy } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { ServerConnectionBudget, SharedDataSources, SiloDataSourceCache, type TenantScope } from '#strata/tenancy/platform';
import { TenantLabelCap } from './tenant-label.cap';
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
  /** tenant_id label values of the per-tenant series: the busiest METRICS_TENANT_LABELS_MAX tenants, the rest `other`. */
  readonly tenantLabels: TenantLabelCap;
  private readonly stopObservingWaits: () => void;

  private readonly httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method, status and tenant tier (never tenant id: unbounded cardinality).',
    labelNames: ['route', 'method', 'status', 'tier'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly tenantRequests = new Counter({
    name: 'strata_tenant_requests_total',
    help: 'HTTP requests served for a tenant (after the tenant guard bound it); tenant_id is "other" beyond the busiest METRICS_TENANT_LABELS_MAX tenants.',
    labelNames: ['tenant_id'] as const,
    registers: [this.registry],
  });

  private readonly tenantErrors = new Counter({
    name: 'strata_tenant_errors_total',
    help: 'HTTP requests of a tenant answered with a 5xx status; tenant_id is "other" beyond the busiest METRICS_TENANT_LABELS_MAX tenants.',
    labelNames: ['tenant_id'] as const,
    registers: [this.registry],
  });

  private readonly admissionWaits = new Histogram({
    name: 'strata_db_server_admission_wait_seconds',
    help: 'Waits of a new data-plane connection for a slot of its server budget (DB_SERVER_MAX_CONNECTIONS), by tier (shared = pool and bridge) and outcome.',
    labelNames: ['tier', 'outcome'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  constructor(
    @Optional() private readonly shared?: SharedDataSources,
    @Optional() private readonly silos?: SiloDataSourceCache,
    @Optional() @Inject(OBSERVABILITY_OPTIONS) options: ObservabilityOptions = {},
    @Optional() private readonly budget?: ServerConnectionBudget,
    @Optional() @Inject(STRATA_CONFIG) config?: StrataConfig,
  ) {
    this.tenantLabels = new TenantLabelCap(config?.metricsTenantLabelsMax ?? 100);
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    this.registerCollectedGauges();
    this.stopObservingWaits =
      budget?.onWait((w) => this.admissionWaits.observe({ tier: w.kind, outcome: w.admitted ? 'admitted' : 'timed_out' }, w.seconds)) ?? (() => undefined);
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

  /**
   * Lets another lib publish one number read on every scrape (e.g. offboarding's stuck deletions).
   * A probe that throws or takes longer than QUEUE_PROBE_TIMEOUT_MS leaves the gauge out of that
   * scrape. Returns the unregister function.
   */
  registerCollectedGauge(name: string, help: string, probe: () => Promise<number>): () => void {
    const gauge = new Gauge({
      name,
      help,
      registers: [this.registry],
      async collect() {
        this.reset();
        const value = await withTimeout(probe, QUEUE_PROBE_TIMEOUT_MS).catch(() => undefined);
        if (value !== undefined && Number.isFinite(value)) this.set(value);
      },
    });
    return () => {
      if (this.registry.getSingleMetric(name) === gauge) this.registry.removeSingleMetric(name);
    };
  }

  /** Records one finished HTTP request. `route` is the route pattern, or undefined when none matched. */
  observeHttp(sample: { route: string | undefined; method: string; status: number; seconds: number; scope: TenantScope | undefined }): void {
    const { route, method, status, seconds, scope } = sample;
    this.httpDuration.observe({ route: route ?? UNMATCHED_ROUTE, method, status: String(status), tier: tierLabel(scope) }, seconds);
    if (!scope) return;
    const tenant = this.tenantLabels.labelOf(scope.tenant.id);
    this.tenantRequests.inc({ tenant_id: tenant });
    if (status >= TENANT_ERROR_STATUS) this.tenantErrors.inc({ tenant_id: tenant });
  }

  metrics(): Promise<string> {
    // Demoted tenants lose their series (their later samples count as `other`): bounded output.
    for (const id of this.tenantLabels.rebalance()) {
      this.tenantRequests.remove({ tenant_id: id });
      this.tenantErrors.remove({ tenant_id: id });
    }
    return this.registry.metrics();
  }

  onModuleDestroy(): void {
    this.queueProbes.clear();
    this.stopObservingWaits();
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

    const budget = this.budget;
    // Per database server (host:port) and tier: `shared` is the pool/bridge DataSource (one
    // connection serves both tiers, so they cannot be told apart), `silo` every silo tenant's.
    const perServer = async () => {
      const rows = new Map<string, { server: string; tier: string; inUse: number; idle: number; waiting: number }>();
      const row = (server: string, tier: string) => {
        const key = `${server}\u0000${tier}`;
        let r = rows.get(key);
        if (!r) rows.set(key, (r = { server, tier, inUse: 0, idle: 0, waiting: 0 }));
        return r;
      };
      for (const s of (await shared?.stats()) ?? []) {
        const r = row(s.host, 'shared');
        r.inUse += s.total - s.idle;
        r.idle += s.idle;
        r.waiting += s.waiting;
      }
      for (const s of silos?.serverStats() ?? []) {
        const r = row(s.server, 'silo');
        r.inUse += s.total - s.idle;
        r.idle += s.idle;
        r.waiting += s.waiting;
      }
      // Connections waiting for admission to the server's budget.
      for (const s of budget?.stats() ?? []) if (s.waiting > 0) row(s.server, s.kind).waiting += s.waiting;
      return [...rows.values()];
    };
    new Gauge({
      name: 'strata_db_server_connections',
      help: 'Data-plane connections of this instance per database server (host:port), tier (shared = pool and bridge, silo) and state (in_use, idle).',
      labelNames: ['server', 'tier', 'state'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await perServer()) {
          this.set({ server: r.server, tier: r.tier, state: 'in_use' }, r.inUse);
          this.set({ server: r.server, tier: r.tier, state: 'idle' }, r.idle);
        }
      },
    });
    new Gauge({
      name: 'strata_db_server_waiting',
      help: 'Units waiting for a data-plane connection per database server and tier (in their pool, or for admission to the server budget).',
      labelNames: ['server', 'tier'] as const,
      registers: [this.registry],
      async collect() {
        this.reset();
        for (const r of await perServer()) this.set({ server: r.server, tier: r.tier }, r.waiting);
      },
    });
    new Gauge({
      name: 'strata_db_server_connections_max',
      help: 'DB_SERVER_MAX_CONNECTIONS: the most data-plane connections this instance opens to one database server.',
      labelNames: ['server'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!budget) return;
        for (const server of new Set(budget.stats().map((s) => s.server))) this.set({ server }, budget.max);
      },
    });
    new Counter({
      name: 'strata_silo_datasource_creations_total',
      help: 'Silo DataSources created (each a new connection to a tenant database); steady traffic over resident tenants creates none.',
      registers: [this.registry],
      collect() {
        this.reset();
        if (silos) this.inc(silos.counters.creations);
      },
    });
    new Counter({
      name: 'strata_silo_evictions_total',
      help: 'Silo DataSources closed, by reason: lru (past SILO_DATASOURCES_MAX), explicit (a move, offboarding). Room for another tenant closes connections, not DataSources.',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!silos) return;
        for (const [reason, n] of Object.entries(silos.counters.evictions)) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'strata_silo_connection_closes_total',
      help: 'Idle silo connections closed while their DataSource stays, by reason: room (another silo tenant needed the slot), idle (past SILO_IDLE_MS).',
      labelNames: ['reason'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!silos) return;
        for (const [reason, n] of Object.entries(silos.counters.connectionCloses)) this.inc({ reason }, n);
      },
    });
    new Counter({
      name: 'strata_silo_reconnects_total',
      help: 'Kept silo DataSources that had no connection and opened one again (a new session, not a new DataSource).',
      registers: [this.registry],
      collect() {
        this.reset();
        if (silos) this.inc(silos.counters.reconnects);
      },
    });
    new Counter({
      name: 'strata_silo_admission_waits_total',
      help: 'Silo tenants that needed a connection, found the silo budget full with no idle connection closable, and waited, by outcome (admitted, or timed_out with 503).',
      labelNames: ['outcome'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        if (!silos) return;
        this.inc({ outcome: 'timed_out' }, silos.counters.waitTimeouts);
        this.inc({ outcome: 'admitted' }, silos.counters.waits - silos.counters.waitTimeouts);
      },
    });
    new Gauge({
      name: 'strata_silo_datasources',
      help: 'Silo tenant DataSources kept in this instance (LRU bounded by SILO_DATASOURCES_MAX), with or without a connection.',
      registers: [this.registry],
      collect() {
        if (silos) this.set(silos.stats().size);
      },
    });
    new Gauge({
      name: 'strata_silo_connections_reserved',
      help: 'Silo connections (open or opening) counted against SILO_MAX_CONNECTIONS.',
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
