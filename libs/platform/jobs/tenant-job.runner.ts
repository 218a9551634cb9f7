import { Injectable, Logger } from '@nestjs/common';
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { TenantRegistry } from '#strata/control-plane';
import { TenantContext, placementOf } from '#strata/tenancy/platform';
import { ATTR_TENANT_TIER, tierLabel } from '#strata/observability';
import { parseTenantEnvelope, type JobScope, type TenantEnvelope } from './tenant-job.envelope';
import { SYSTEM_TENANT, SYSTEM_TENANT_ID } from './system-tenant.scope';
import { TenantBacklog } from './tenant-backlog.counter';
import { DEFAULT_JOBS_PREFIX } from './jobs.options';
import { traceJob } from './tenant-job.tracing';

/**
 * What happens around every tenant job before and after its handler: validate the envelope, load
 * the tenant from the registry, re-enter its context with TenantContext.run(), and count the job
 * out of its tenant's backlog once it is finished for good.
 */
@Injectable()
export class TenantJobRunner {
  private readonly logger = new Logger('TenantJobs');

  constructor(
    private readonly context: TenantContext,
    private readonly registry: TenantRegistry,
    private readonly backlog: TenantBacklog,
  ) {}

  async run<R>(job: Job, worker: Worker, handle: () => Promise<R>, acceptsSystemJobs: boolean): Promise<R> {
    const where = `job ${job.name}#${job.id} on queue ${worker.name}`;
    let envelope: TenantEnvelope;
    try {
      envelope = parseTenantEnvelope(job.data, SYSTEM_TENANT_ID, where);
    } catch (err) {
      this.logger.warn(`${(err as Error).message}`);
      throw err;
    }
    const key = this.backlog.key(worker.opts.prefix ?? DEFAULT_JOBS_PREFIX, worker.name, envelope.tenantId);
    // The OTel context (consumer span, baggage) is entered first, the tenant's CLS context inside
    // it: two separate AsyncLocalStorages, both visible to the handler. A no-op while tracing is off.
    return traceJob(job, worker.name, envelope, async (span) => {
      let finished = true;
      try {
        const scope = await this.scopeFor(envelope, where, acceptsSystemJobs);
        span?.setAttribute(ATTR_TENANT_TIER, tierLabel(scope));
        return await this.context.run(scope, handle);
      } catch (err) {
        // A retried job is still in its tenant's backlog; only its last attempt counts it out.
        finished = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        throw err;
      } finally {
        if (finished) await this.backlog.settle(key).catch((e: unknown) => this.logger.warn(`backlog counter ${key}: ${String(e)}`));
      }
    });
  }

  private async scopeFor(envelope: TenantEnvelope, where: string, acceptsSystemJobs: boolean): Promise<JobScope> {
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
    if (tenant.status !== 'active') {
      // Failed (not skipped): the job stays in the failed set, so nothing is lost silently and an
      // operator can retry it once the tenant is active again.
      throw new UnrecoverableError(`${where}: tenant ${envelope.tenantId} is ${tenant.status}; the job was not run (retry it after reactivation)`);
    }
    return { ...base, tenant: placementOf(tenant) };
  }
}
