import { Inject, Injectable, Optional } from '@nestjs/common';
import { Counter, Gauge, Histogram } from 'prom-client';
import { KeyedSlots, SlotWaitError, STRATA_CONFIG, type SlotWaitCancellation, type StrataConfig } from '#strata/common';
import { MetricsService } from '#strata/observability';
import { ClientClosedRequestError, TenantConcurrencyLimitedError } from '#strata/tenancy/platform';

/**
 * Requests in flight per tenant on this instance (KeyedSlots keyed by tenant id): a Map of small
 * records, no Redis — the budget protects this instance's connections and event loop, which no
 * other instance shares. Excess requests wait in a FIFO per tenant (TENANT_QUEUE_MAX long, at
 * most TENANT_QUEUE_WAIT_MS), then answer 429 concurrency_limited.
 *
 * Metrics (with ObservabilityModule), none labelled by tenant so 10,000 tenants add no series:
 * `strata_tenant_concurrency_waits_seconds` (requests that had to wait, however it ended),
 * `strata_tenant_concurrency_refused_total{reason}` (`queue_full`, `timed_out`), and
 * `strata_tenant_concurrency_tenants` (tenants with a request in flight or waiting).
 */
@Injectable()
export class TenantConcurrencyBudget {
  private readonly slots: KeyedSlots;
  private readonly retryAfterSeconds: number;
  private readonly waits: Histogram | undefined;
  private readonly refused: Counter<'reason'> | undefined;

  constructor(@Inject(STRATA_CONFIG) config: StrataConfig, @Optional() metrics?: MetricsService) {
    this.slots = new KeyedSlots({ queueMax: config.tenantQueueMax, waitMs: config.tenantQueueWaitMs });
    this.retryAfterSeconds = Math.max(1, Math.ceil(config.tenantQueueWaitMs / 1000));
    if (metrics) {
      const registers = [metrics.registry];
      this.waits = new Histogram({
        name: 'strata_tenant_concurrency_waits_seconds',
        help: "how long requests waited for their tenant's concurrency slot (only those that waited)",
        buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 5],
        registers,
      });
      this.refused = new Counter({ name: 'strata_tenant_concurrency_refused_total', help: 'requests answered 429 concurrency_limited', labelNames: ['reason'] as const, registers });
      const slots = this.slots;
      new Gauge({
        name: 'strata_tenant_concurrency_tenants',
        help: 'tenants with a request in flight or waiting on this instance',
        registers,
        collect() {
          this.set(slots.size);
        },
      });
    }
  }

  /** `true`: admitted now; else a promise of admission that rejects with the answer to give. */
  enter(tenantId: string, limit: number, cancellation?: SlotWaitCancellation): true | Promise<void> {
    const taken = this.slots.take(tenantId, limit, cancellation);
    if (taken === true) return true;
    const started = performance.now();
    return taken.then(
      () => this.waits?.observe((performance.now() - started) / 1000),
      (err: unknown) => {
        if (!(err instanceof SlotWaitError)) throw err;
        this.waits?.observe((performance.now() - started) / 1000);
        if (err.reason === 'cancelled') throw new ClientClosedRequestError();
        this.refused?.inc({ reason: err.reason });
        throw new TenantConcurrencyLimitedError(limit, this.retryAfterSeconds);
      },
    );
  }

  leave(tenantId: string): void {
    this.slots.give(tenantId);
  }

  /** Requests of the tenant in flight on this instance now. */
  inFlight(tenantId: string): number {
    return this.slots.held(tenantId);
  }

  /** Requests of the tenant waiting for a slot now. */
  waiting(tenantId: string): number {
    return this.slots.waiting(tenantId);
  }

  /** Tenants with a request in flight or waiting (no others are kept). */
  get tenantsTracked(): number {
    return this.slots.size;
  }
}
