import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { DataSource, In } from 'typeorm';
import { placementOf } from '#strata/tenancy/platform';
import { CONTROL_DATA_SOURCE, TenantEntity } from '#strata/control-plane';
import { setTimeout as sleep } from 'node:timers/promises';
import { JOBS_OPTIONS, JOBS_REDIS, JobsUnavailableError, SystemTenantRunner, TenantJobProducer, type ResolvedJobsOptions, type TenantJobOptions } from '#strata/jobs';

export interface FanOutReport {
  /** One request id for the run and every job it enqueued, so a run correlates in logs. */
  requestId: string;
  /** Tenants a job was enqueued for. */
  enqueued: string[];
  /** Suspended and provisioning tenants: no job. */
  skipped: Array<{ id: string; status: string }>;
  /** Active tenants whose job Redis did not take after every attempt (the next tick tries again). */
  failed: Array<{ id: string; reason: string }>;
}

export interface FanOutJob<P> {
  /** `sweep` → request id `sweep-<uuid>`. */
  requestIdPrefix: string;
  queue: string;
  name: string;
  payload: P;
  opts?: TenantJobOptions;
}

// Enqueue in slices: one Redis round trip per tenant, but not 10,000 promises at once.
const FAN_OUT_SLICE = 50;
/**
 * A cron is not a request: nobody waits for its answer, so an enqueue Redis was too slow to take
 * within REDIS_COMMAND_TIMEOUT_MS (a busy Redis, a reconnect) is tried again after these pauses
 * instead of dropping that tenant's job until the next tick. The job id is the same each time, so
 * an attempt given up on that Redis took after all is not enqueued twice.
 */
export const FAN_OUT_RETRY_PAUSES_MS = [200, 1000, 3000];

/**
 * What every cron of the worker does: claim the tick (several worker instances fire each cron),
 * then, as the system tenant (it reads the control plane, never tenant data), list the tenants and
 * enqueue one job per active tenant from inside that tenant's own context, so each job carries its
 * tenant's envelope like any job enqueued by a request. Suspended (and provisioning) tenants are
 * skipped and reported.
 */
@Injectable()
export class TenantFanOut {
  private readonly logger = new Logger('TenantFanOut');
  constructor(
    private readonly system: SystemTenantRunner,
    private readonly producer: TenantJobProducer,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(JOBS_REDIS) private readonly redis: Redis,
    @Inject(JOBS_OPTIONS) private readonly jobs: ResolvedJobsOptions,
  ) {}

  /**
   * True for the one caller that claims `cron`'s slot for `now`'s minute (SET NX, kept an hour), so
   * every worker instance can fire the cron and it still runs once per tick. A sub-minute expression
   * therefore runs at most once a minute.
   */
  async claimSlot(cron: string, now: Date): Promise<boolean> {
    const slot = now.toISOString().slice(0, 16);
    return (await this.redis.set(`${this.jobs.prefix}:cron:${cron}:${slot}`, '1', 'EX', 3600, 'NX')) === 'OK';
  }

  enqueuePerActiveTenant<P>(job: FanOutJob<P>): Promise<FanOutReport> {
    const requestId = `${job.requestIdPrefix}-${randomUUID()}`;
    return this.system.runAsSystem(async () => {
      const tenants = await this.control
        .getRepository(TenantEntity)
        .find({ where: { status: In(['active', 'suspended', 'provisioning']) }, order: { id: 'ASC' } });
      // A tenant in maintenance is skipped like a suspended one: its jobs would only be parked.
      const runs = (t: TenantEntity) => t.status === 'active' && !t.maintenanceSince;
      const active = tenants.filter(runs);
      const report: FanOutReport = {
        requestId,
        enqueued: [],
        skipped: tenants.filter((t) => !runs(t)).map((t) => ({ id: t.id, status: t.status === 'active' ? 'maintenance' : t.status })),
        failed: [],
      };
      for (let i = 0; i < active.length; i += FAN_OUT_SLICE) {
        await Promise.all(
          active.slice(i, i + FAN_OUT_SLICE).map((t) =>
            this.system.runAsTenant(placementOf(t), async () => {
              const failure = await this.enqueueWithRetries(job, `${requestId}-${t.id}`);
              if (failure) report.failed.push({ id: t.id, reason: failure });
              else report.enqueued.push(t.id);
            }),
          ),
        );
      }
      if (report.failed.length > 0) {
        this.logger.warn(`${job.queue}: ${report.failed.length} tenant(s) got no job this run (Redis did not take it): ${report.failed[0].reason}`);
      }
      // Inside the system context, so the line carries the system label and the fan-out's request id.
      this.logger.log(`${job.queue}: enqueued ${report.enqueued.length} job(s), skipped ${report.skipped.length} inactive tenant(s)`);
      return report;
    }, requestId);
  }

  /** Adds the current tenant's job; the reason it could not when every attempt found Redis unavailable. */
  private async enqueueWithRetries<P>(job: FanOutJob<P>, jobId: string): Promise<string | undefined> {
    // Sweeps are bulk work: the batch lane, behind any tenant's webhook on the same queue (unless the job says otherwise).
    const opts = { jobId, lane: 'batch' as const, ...job.opts };
    for (let attempt = 0; ; attempt++) {
      try {
        await this.producer.add(job.queue, job.name, job.payload, opts);
        return undefined;
      } catch (err) {
        if (!(err instanceof JobsUnavailableError)) throw err;
        const pause = FAN_OUT_RETRY_PAUSES_MS[attempt];
        if (pause === undefined) return err.reason;
        await sleep(pause);
      }
    }
  }
}
