import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { lanePriority, type JobLane } from './tenant-job.lanes';

/** The ioredis client JobsModule opens for its own small commands (not BullMQ's connections). */
export const JOBS_REDIS = Symbol('JOBS_REDIS');

export { MAX_PRIORITY } from './tenant-job.lanes';
// A counter left behind by jobs removed out of band heals itself after a quiet week.
const COUNTER_TTL_SECONDS = 7 * 24 * 3600;

// Decrement, but never below zero and never create the key: jobs added without the producer
// (rejected for lacking an envelope) must not drive a tenant's counter negative.
const SETTLE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local v = redis.call('DECRBY', KEYS[1], ARGV[1])
if v <= 0 then redis.call('DEL', KEYS[1]) return 0 end
return v`;

/**
 * Per-tenant backlog counters behind the fairness rule: a job's priority is its position in its
 * tenant's backlog on that queue when it is added. Every tenant's 1st queued job outranks every
 * tenant's 2nd, and so on, so BullMQ's priority set serves tenants round-robin by construction.
 */
@Injectable()
export class TenantBacklog implements OnApplicationShutdown {
  constructor(@Inject(JOBS_REDIS) private readonly redis: Redis) {}

  /**
   * The tenant's backlog counter on `queue`, one per lane: `{prefix}:{queue}:tenant-backlog:{tenantId}`
   * for interactive jobs (the key jobs used before lanes existed), `{prefix}:{queue}:batch:tenant-backlog:{tenantId}`
   * for batch ones; both match the purge's `{prefix}:*:tenant-backlog:{tenantId}`.
   */
  key(prefix: string, queue: string, tenantId: string, lane: JobLane = 'interactive'): string {
    return lane === 'batch' ? `${prefix}:${queue}:batch:tenant-backlog:${tenantId}` : `${prefix}:${queue}:tenant-backlog:${tenantId}`;
  }

  /** Counts `n` new jobs in; returns their priorities in `lane` (interactive: 1 = next). */
  async reserve(key: string, n: number, lane: JobLane = 'interactive'): Promise<number[]> {
    const [[incrErr, total]] = (await this.redis.multi().incrby(key, n).expire(key, COUNTER_TTL_SECONDS).exec()) ?? [[null, 0]];
    if (incrErr) throw incrErr;
    const last = Number(total);
    return Array.from({ length: n }, (_, i) => lanePriority(lane, last - n + 1 + i));
  }

  /** Counts `n` jobs out: finished for good, or never added. */
  async settle(key: string, n = 1): Promise<void> {
    await this.redis.eval(SETTLE, 1, key, n);
  }

  async count(key: string): Promise<number> {
    return Number((await this.redis.get(key)) ?? 0);
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.redis.status !== 'end') await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
