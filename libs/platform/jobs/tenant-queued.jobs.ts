import { Inject, Injectable, Logger } from '@nestjs/common';
import { Queue, type Job, type JobType } from 'bullmq';
import type { Redis } from 'ioredis';
import { globLiteral } from '#strata/cache';
import { JOBS_OPTIONS, type ResolvedJobsOptions } from './jobs.options';
import { JOBS_REDIS } from './tenant-backlog.counter';

const SCAN_COUNT = 500;
const PAGE = 1000;
/** Every state a job can wait in; `active` ones are locked by a worker and cannot be removed. */
const REMOVABLE_STATES: JobType[] = ['waiting', 'prioritized', 'delayed', 'waiting-children', 'failed', 'completed'];

/** What purge() removed, per queue, for the deletion report. */
export interface TenantJobsPurge {
  /** Jobs removed per queue (waiting, prioritized, delayed/parked, failed, completed …). */
  jobs: Record<string, number>;
  /** Job schedulers (repeatable jobs) whose template carried the tenant. */
  schedulers: number;
  /** Fairness backlog counters of the tenant. */
  counters: number;
  /** Jobs of the tenant a worker holds right now (not removable yet: purge again later). */
  active: number;
}

const tenantOf = (job: Pick<Job, 'data'> | undefined): unknown =>
  (job?.data as { envelope?: { tenantId?: unknown } } | undefined)?.envelope?.tenantId;

/**
 * The jobs of one tenant across every queue under the jobs prefix — including queues this process
 * never registered (the worker's own), found in Redis by their `meta` key. For reactivation
 * (promote what was parked) and offboarding (remove everything). Both walk the queues' job lists:
 * O(jobs queued), acceptable for operations an operator starts, never on a request path.
 */
@Injectable()
export class TenantQueuedJobs {
  private readonly logger = new Logger('TenantJobs');

  constructor(
    @Inject(JOBS_REDIS) private readonly redis: Redis,
    @Inject(JOBS_OPTIONS) private readonly options: ResolvedJobsOptions,
  ) {}

  /** Names of every queue that has keys under the prefix. */
  async queueNames(): Promise<string[]> {
    const head = `${this.options.prefix}:`;
    const names = new Set<string>();
    for (const key of await this.scan(`${globLiteral(head)}*:meta`)) names.add(key.slice(head.length, -':meta'.length));
    return [...names].sort();
  }

  /** Runs the tenant's parked (delayed) jobs now; returns how many were promoted. */
  async promoteParked(tenantId: string): Promise<number> {
    let promoted = 0;
    await this.eachQueue(async (queue) => {
      for (const job of await this.jobsOf(queue, tenantId, ['delayed'])) {
        await job.promote().then(
          () => promoted++,
          // Promoted or picked up meanwhile: nothing to do.
          (err: unknown) => this.logger.debug(`promoting job ${job.id} on ${queue.name}: ${(err as Error).message}`),
        );
      }
    });
    return promoted;
  }

  /** Removes every job, job scheduler and backlog counter of the tenant. Idempotent. */
  async purge(tenantId: string): Promise<TenantJobsPurge> {
    const result: TenantJobsPurge = { jobs: {}, schedulers: 0, counters: 0, active: 0 };
    await this.eachQueue(async (queue) => {
      // Schedulers first: a scheduler's next (delayed) job cannot be removed while its scheduler exists.
      for (const s of await queue.getJobSchedulers(0, -1)) {
        if (s.template?.data && tenantOf({ data: s.template.data }) === tenantId && (await queue.removeJobScheduler(s.key))) result.schedulers++;
      }
      let removed = 0;
      for (const job of await this.jobsOf(queue, tenantId, REMOVABLE_STATES)) {
        try {
          await job.remove();
          removed++;
        } catch (err) {
          // A worker took it meanwhile (locked): counted below, the caller purges again. Gone already: fine.
          const state = await job.getState();
          if (state !== 'active' && state !== 'unknown') throw err;
        }
      }
      result.active += (await this.jobsOf(queue, tenantId, ['active'])).length;
      if (removed) result.jobs[queue.name] = removed;
    });
    // The producer's fairness counters: `{prefix}:{queue}:tenant-backlog:{tenantId}`.
    const counters = await this.scan(`${globLiteral(this.options.prefix)}:*:tenant-backlog:${tenantId}`);
    if (counters.length) result.counters = await this.redis.unlink(...counters);
    return result;
  }

  private async jobsOf(queue: Queue, tenantId: string, states: JobType[]): Promise<Job[]> {
    const found: Job[] = [];
    for (let start = 0; ; start += PAGE) {
      const page = (await queue.getJobs(states, start, start + PAGE - 1, true)) as Job[];
      for (const job of page) if (job && tenantOf(job) === tenantId) found.push(job);
      if (page.length < PAGE) return found;
    }
  }

  private async eachQueue(fn: (queue: Queue) => Promise<void>): Promise<void> {
    for (const name of await this.queueNames()) {
      // Its own short-lived connection: BullMQ's queue objects of the app are not reachable from a lib.
      const queue = new Queue(name, { connection: this.options.connection as never, prefix: this.options.prefix });
      queue.on('error', () => undefined);
      try {
        await fn(queue);
      } finally {
        await queue.close().catch(() => undefined);
      }
    }
  }

  private async scan(match: string): Promise<string[]> {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await this.redis.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    return keys;
  }
}

/** Escapes Redis glob metacharacters so a literal prefix stays literal inside MATCH. */
