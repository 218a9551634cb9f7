import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { getQueueToken } from '@nestjs/bullmq';
import type { BulkJobOptions, Job, JobsOptions, Queue } from 'bullmq';
import { TenantContext } from '#strata/tenancy/platform';
import { injectTraceContext } from '#strata/observability';
import { envelopeFromScope, type TenantJobData } from './tenant-job.envelope';
import { ATTR_MESSAGING_MESSAGE_ID, traceEnqueue } from './tenant-job.tracing';
import { TenantBacklog } from './tenant-backlog.counter';
import { JOB_LANES, type JobLane } from './tenant-job.lanes';
import { DEFAULT_JOBS_PREFIX } from './jobs.options';
import { QueueConnections } from './queue-connections.watcher';

/** Job options the producer owns: priority carries fairness, so callers cannot set it; they say the job's lane instead. */
export type TenantJobOptions = Omit<JobsOptions, 'priority' | 'lifo'> & { lane?: JobLane };
type TenantBulkJobOptions = Omit<BulkJobOptions, 'priority' | 'lifo'>;

/**
 * The only way to enqueue tenant work. The tenant comes from the current context, never from a
 * parameter, and no context means MissingTenantContextError before anything reaches Redis.
 * Redis known to be down means JobsUnavailableError (503, Retry-After) at once, with nothing
 * enqueued; Redis not answering within REDIS_COMMAND_TIMEOUT_MS means the same error after that
 * bound (an add Redis was only slow to take may still land: enqueue idempotently, with a jobId).
 * Either way the backlog counter is given back when Redis takes it.
 */
@Injectable()
export class TenantJobProducer {
  private readonly queues = new Map<string, Queue>();

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly context: TenantContext,
    private readonly backlog: TenantBacklog,
    private readonly connections: QueueConnections,
  ) {}

  /** One job; `opts.lane` (default `interactive`) says whether someone waits on it or it is bulk work. */
  async add<P>(queue: string, name: string, payload: P, opts: TenantJobOptions = {}): Promise<Job<TenantJobData<P>>> {
    const { lane, ...rest } = opts;
    const [job] = await this.addBulk<P>(queue, [{ name, payload, opts: rest }], lane);
    return job;
  }

  /**
   * Several jobs of the current tenant in one round trip (one backlog reservation, one addBulk), all
   * in `lane`: `interactive` (default; webhooks, emails) or `batch` (imports, exports, bulk work),
   * which only runs when no interactive job of the queue is waiting (tenant-job.lanes.ts).
   */
  async addBulk<P>(
    queue: string,
    jobs: Array<{ name: string; payload: P; opts?: TenantBulkJobOptions }>,
    lane: JobLane = 'interactive',
  ): Promise<Job<TenantJobData<P>>[]> {
    const scope = this.context.require(`enqueueing ${jobs[0]?.name ?? 'a job'} on queue ${queue}`);
    if (jobs.length === 0) return [];
    if (!JOB_LANES.includes(lane)) throw new Error(`unknown job lane ${JSON.stringify(lane)}: one of ${JOB_LANES.join(', ')}`);
    for (const j of jobs) {
      if (j.opts && ('priority' in j.opts || 'lifo' in j.opts)) {
        throw new Error('TenantJobProducer sets job priority itself (per-tenant fairness); do not pass priority or lifo');
      }
    }
    const q = this.queue(queue);
    return traceEnqueue(q.name, jobs.length, scope, async (span) => {
      // With tracing on, the envelope carries this span's traceparent and the tenant's baggage.
      const envelope = envelopeFromScope(scope, span ? injectTraceContext({}) : undefined);
      const key = this.backlog.key(q.opts.prefix ?? DEFAULT_JOBS_PREFIX, q.name, envelope.tenantId, lane);
      const priorities = await this.connections.call(q.name, () => this.backlog.reserve(key, jobs.length, lane));
      try {
        const added = (await this.connections.call(q.name, () =>
          q.addBulk(jobs.map((j, i) => ({ name: j.name, data: { envelope, payload: j.payload }, opts: { ...j.opts, priority: priorities[i] } }))),
          jobs.length,
        )) as Job<TenantJobData<P>>[];
        if (span && added.length === 1 && added[0].id) span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, added[0].id);
        return added;
      } catch (err) {
        await this.backlog.settle(key, jobs.length).catch(() => undefined);
        throw err;
      }
    });
  }

  private queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) {
      try {
        q = this.moduleRef.get<Queue>(getQueueToken(name), { strict: false });
      } catch {
        throw new Error(`queue ${JSON.stringify(name)} is not registered: import JobsModule.registerQueue(${JSON.stringify(name)})`);
      }
      this.queues.set(name, q);
    }
    return q;
  }
}
