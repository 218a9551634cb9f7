import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { IDEMPOTENCY_KEY_SWEEP_JOB, IDEMPOTENCY_KEY_SWEEP_QUEUE, type IdempotencyKeySweepPayload } from '#strata/idempotency';
import { TenantFanOut, type FanOutReport } from './tenant-fan-out';

// Read once at startup: @Cron() takes its expression when the class is decorated.
/** When expired idempotency keys are swept (cron syntax, server time); `off` disables it. Default: hourly, at :17. */
export const IDEMPOTENCY_KEY_SWEEP_CRON = process.env.IDEMPOTENCY_KEY_SWEEP_CRON || '17 * * * *';
export const IDEMPOTENCY_KEY_SWEEP_CRON_NAME = 'idempotency-key-sweep';

/**
 * The idempotency key sweep's cron (TenantFanOut, like the overdue sweep and the webhook relay): as
 * the system tenant, one sweep job per active tenant; each runs IdempotencyKeySweeper in its
 * tenant's context and deletes that tenant's keys older than IDEMPOTENCY_KEY_RETENTION_SECONDS from
 * its own home. Expired keys are free again whether swept or not; the sweep only reclaims storage.
 */
@Injectable()
export class IdempotencyKeySweep {
  constructor(private readonly fanOut: TenantFanOut) {}

  @Cron(IDEMPOTENCY_KEY_SWEEP_CRON === 'off' ? '17 * * * *' : IDEMPOTENCY_KEY_SWEEP_CRON, {
    name: IDEMPOTENCY_KEY_SWEEP_CRON_NAME,
    disabled: IDEMPOTENCY_KEY_SWEEP_CRON === 'off',
    waitForCompletion: true,
  })
  async onSchedule(now = new Date()): Promise<FanOutReport | null> {
    if (!(await this.fanOut.claimSlot(IDEMPOTENCY_KEY_SWEEP_CRON_NAME, now))) return null;
    return this.run();
  }

  run(): Promise<FanOutReport> {
    return this.fanOut.enqueuePerActiveTenant<IdempotencyKeySweepPayload>({
      requestIdPrefix: 'idem-sweep',
      queue: IDEMPOTENCY_KEY_SWEEP_QUEUE,
      name: IDEMPOTENCY_KEY_SWEEP_JOB,
      payload: {},
      // One attempt: a failed sweep is simply the next tick's work. Finished jobs are kept for inspection only.
      opts: { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } },
    });
  }
}
