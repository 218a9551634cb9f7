import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { IdempotencyKeySweeper, type IdempotencyKeySweepPayload, type IdempotencyKeySweepResult } from './idempotency-key.sweeper';
import { IDEMPOTENCY_KEY_SWEEP_CONCURRENCY, IDEMPOTENCY_KEY_SWEEP_QUEUE } from './idempotency.options';

/**
 * One tenant's key sweep, in that tenant's context (TenantWorkerHost re-entered it). apps/worker's
 * cron enqueues one job per active tenant; registered by apps/worker only.
 */
@Processor(IDEMPOTENCY_KEY_SWEEP_QUEUE, { concurrency: IDEMPOTENCY_KEY_SWEEP_CONCURRENCY })
export class IdempotencyKeySweepProcessor extends TenantWorkerHost<IdempotencyKeySweepPayload, IdempotencyKeySweepResult> {
  constructor(private readonly sweeper: IdempotencyKeySweeper) {
    super();
  }

  protected handle(_job: Job<TenantJobData<IdempotencyKeySweepPayload>>): Promise<IdempotencyKeySweepResult> {
    return this.sweeper.sweep();
  }
}
