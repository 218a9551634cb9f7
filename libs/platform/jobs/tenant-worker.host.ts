import { Inject } from '@nestjs/common';
import { WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import type { TenantJobData } from './tenant-job.envelope';
import { TenantJobRunner } from './tenant-job.runner';

/**
 * Base class of every processor. process() is final in spirit: it validates the tenant envelope,
 * re-enters the tenant's context and only then calls handle(), so a handler uses the same
 * tenant-scoped repositories as an HTTP handler and never sees a job it could run as nobody.
 *
 * ```ts
 * @Processor('invoice-overdue', { concurrency: 4 })
 * export class InvoiceOverdueProcessor extends TenantWorkerHost<{ days: number }, number> {
 *   protected handle(job) { return this.connections.transaction(...); }
 * }
 * ```
 */
export abstract class TenantWorkerHost<P = unknown, R = unknown> extends WorkerHost {
  // Property injection keeps subclass constructors free for their own dependencies.
  @Inject(TenantJobRunner) private readonly tenantJobRunner!: TenantJobRunner;

  /** Set to true on processors that run system-tenant jobs (cross-tenant work). */
  protected readonly acceptsSystemJobs: boolean = false;

  async process(job: Job<TenantJobData<P>>, token?: string): Promise<R> {
    return this.tenantJobRunner.run(job, this.worker, () => this.handle(job), this.acceptsSystemJobs, token);
  }

  /** Runs inside the job's tenant context; job.data.payload is what the producer was given. */
  protected abstract handle(job: Job<TenantJobData<P>>): Promise<R>;
}
