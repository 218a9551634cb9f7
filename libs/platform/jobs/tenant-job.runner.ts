import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { DelayedError, UnrecoverableError, type Job, type Worker } from 'bullmq';
import { TenantRegistry } from '#strata/control-plane';
import { KeyedSlots, SlotWaitError, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantContext, placementOf } from '#strata/tenancy/platform';
import { ATTR_TENANT_TIER, tierLabel } from '#strata/observability';
import { parseTenantEnvelope, type JobScope, type TenantEnvelope } from './tenant-job.envelope';
import { SYSTEM_TENANT, SYSTEM_TENANT_ID } from './system-tenant.scope';
import { TenantBacklog } from './tenant-backlog.counter';
import { DEFAULT_JOBS_PREFIX, JOBS_OPTIONS, type ResolvedJobsOptions } from './jobs.options';
import { traceJob } from './tenant-job.tracing';
import { JOB_CONCURRENCY_POLICY, laneOfPriority, type JobConcurrencyPolicy } from './tenant-job.lanes';

/**
 * A job whose tenant already runs its cap of jobs on this queue waits this long in the worker for
 * one of them to finish (FIFO per tenant), then goes back to delayed for CAP_DELAY_MS. Waiting
 * first means a tenant alone on the queue keeps its cap busy without a Redis round trip per
 * refusal; the bound keeps the slots it waits in from being held for long.
 */
const CAP_WAIT_MS = 250;
const CAP_DELAY_MS = 500;

/** scopeFor()'s answer for a tenant whose jobs must wait. */
const PARK = Symbol('park');

/**
 * What happens around every tenant job before and after its handler: validate the envelope, load
 * the tenant from the registry, re-enter its context with TenantContext.run(), and count the job
 * out of its tenant's backlog once it is finished for good.
 */
@Injectable()
export class TenantJobRunner {
  private readonly logger = new Logger('TenantJobs');
  /** Jobs running per (queue, tenant) in this process: the per-tenant cap. */
  private readonly running = new KeyedSlots({ queueMax: Number.MAX_SAFE_INTEGER, waitMs: CAP_WAIT_MS });
  private readonly defaultCap: number;

  constructor(
    private readonly context: TenantContext,
    private readonly registry: TenantRegistry,
    private readonly backlog: TenantBacklog,
    @Inject(JOBS_OPTIONS) private readonly options: ResolvedJobsOptions,
    @Inject(STRATA_CONFIG) config: StrataConfig,
    @Optional() @Inject(JOB_CONCURRENCY_POLICY) private readonly caps?: JobConcurrencyPolicy,
  ) {
    this.defaultCap = config.jobsTenantConcurrency;
  }

  /** Jobs of `tenantId` this process runs on `queue` right now. */
  runningOf(queue: string, tenantId: string): number {
    return this.running.held(`${queue}\u0000${tenantId}`);
  }

  /** `token`: the worker's lock token of the job, needed to park it (move it to delayed) from inside process(). */
  async run<R>(job: Job, worker: Worker, handle: () => Promise<R>, acceptsSystemJobs: boolean, token?: string): Promise<R> {
    const where = `job ${job.name}#${job.id} on queue ${worker.name}`;
    let envelope: TenantEnvelope;
    try {
      envelope = parseTenantEnvelope(job.data, SYSTEM_TENANT_ID, where);
    } catch (err) {
      this.logger.warn(`${(err as Error).message}`);
      throw err;
    }
    const key = this.backlog.key(worker.opts.prefix ?? DEFAULT_JOBS_PREFIX, worker.name, envelope.tenantId, laneOfPriority(job.opts.priority));
    // The OTel context (consumer span, baggage) is entered first, the tenant's CLS context inside
    // it: two separate AsyncLocalStorages, both visible to the handler. A no-op while tracing is off.
    return traceJob(job, worker.name, envelope, async (span) => {
      let finished = true;
      try {
        const scope = await this.scopeFor(envelope, where, acceptsSystemJobs);
        if (scope === PARK) {
          // Not run, not failed: back to delayed with its attempts untouched, and still in its
          // tenant's backlog. Reactivation promotes it (TenantQueuedJobs.promoteParked).
          await job.moveToDelayed(Date.now() + this.options.parkDelayMs, token);
          throw new DelayedError(`${where}: tenant ${envelope.tenantId} is paused; parked for ${this.options.parkDelayMs} ms`);
        }
        span?.setAttribute(ATTR_TENANT_TIER, tierLabel(scope));
        if (scope.system) return await this.context.run(scope, handle);
        const cap = this.caps?.jobConcurrencyOf(scope.tenant.plan) ?? this.defaultCap;
        if (cap <= 0) return await this.context.run(scope, handle);
        const slot = `${worker.name}\u0000${envelope.tenantId}`;
        const taken = this.running.take(slot, cap);
        if (taken !== true) {
          try {
            await taken;
          } catch (err) {
            if (!(err instanceof SlotWaitError)) throw err;
            // Its tenant's cap stayed full: back to delayed, attempts untouched, still in its backlog.
            await job.moveToDelayed(Date.now() + CAP_DELAY_MS, token);
            throw new DelayedError(`${where}: tenant ${envelope.tenantId} already runs ${cap} job(s) on ${worker.name}; delayed ${CAP_DELAY_MS} ms`);
          }
        }
        try {
          return await this.context.run(scope, handle);
        } finally {
          this.running.give(slot);
        }
      } catch (err) {
        // A retried job is still in its tenant's backlog; only its last attempt counts it out.
        finished = !(err instanceof DelayedError) && (err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1));
        throw err;
      } finally {
        if (finished) await this.backlog.settle(key).catch((e: unknown) => this.logger.warn(`backlog counter ${key}: ${String(e)}`));
      }
    });
  }

  private async scopeFor(envelope: TenantEnvelope, where: string, acceptsSystemJobs: boolean): Promise<JobScope | typeof PARK> {
    const base = {
      requestId: envelope.requestId,
      ...(envelope.userId ? { userId: envelope.userId } : {}),
      ...(envelope.impersonatedBy ? { impersonatedBy: envelope.impersonatedBy } : {}),
    };
    if (envelope.system) {
      if (!acceptsSystemJobs) throw new UnrecoverableError(`${where}: enqueued as the system tenant, but this processor only runs tenant jobs`);
      return { ...base, tenant: SYSTEM_TENANT, system: true };
    }
    const tenant = await this.registry.findById(envelope.tenantId);
    if (!tenant || tenant.status === 'deleted' || tenant.status === 'deleting') {
      throw new UnrecoverableError(`${where}: tenant ${envelope.tenantId} is unknown or deleted; the job is dropped without retries`);
    }
    // Suspended or in maintenance: the job waits for the tenant, it is neither run nor failed.
    if (tenant.status === 'suspended' || (tenant.status === 'active' && tenant.maintenanceSince)) return PARK;
    if (tenant.status !== 'active') {
      // Failed (not skipped): the job stays in the failed set with the reason; an operator can retry it.
      throw new UnrecoverableError(`${where}: tenant ${envelope.tenantId} is ${tenant.status}; the job was not run (retry it once the tenant is active)`);
    }
    return { ...base, tenant: placementOf(tenant) };
  }
}
