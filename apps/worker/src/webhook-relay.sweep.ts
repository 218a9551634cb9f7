import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import { WEBHOOK_RELAY_JOB, WEBHOOK_RELAY_QUEUE, type WebhookRelayPayload } from '#strata/webhooks';
import { TenantFanOut, type FanOutReport } from './tenant-fan-out';

// Read once at startup: @Cron() takes its expression when the class is decorated.
/** When the outbox relay runs (cron syntax, server time); `off` disables it. Default: every 5 minutes. */
export const WEBHOOK_RELAY_CRON = process.env.WEBHOOK_RELAY_CRON || '*/5 * * * *';
export const WEBHOOK_RELAY_CRON_NAME = 'webhook-outbox-relay';

/**
 * The webhook outbox relay's cron (TenantFanOut, like the overdue sweep): as the system tenant,
 * one relay job per active tenant on WEBHOOK_RELAY_QUEUE; each runs WebhookOutboxRelay in its
 * tenant's context and re-enqueues that tenant's pending deliveries whose enqueue was lost.
 */
@Injectable()
export class WebhookRelaySweep {

  constructor(private readonly fanOut: TenantFanOut) {}

  @Cron(WEBHOOK_RELAY_CRON === 'off' ? '*/5 * * * *' : WEBHOOK_RELAY_CRON, {
    name: WEBHOOK_RELAY_CRON_NAME,
    disabled: WEBHOOK_RELAY_CRON === 'off',
    waitForCompletion: true,
  })
  async onSchedule(now = new Date()): Promise<FanOutReport | null> {
    if (!(await this.fanOut.claimSlot(WEBHOOK_RELAY_CRON_NAME, now))) return null;
    return this.run();
  }

  async run(): Promise<FanOutReport> {
    const report = await this.fanOut.enqueuePerActiveTenant<WebhookRelayPayload>({
      requestIdPrefix: 'relay',
      queue: WEBHOOK_RELAY_QUEUE,
      name: WEBHOOK_RELAY_JOB,
      payload: {},
      // Every tenant every few minutes: finished relay jobs are kept an hour, for inspection only.
      // One attempt: a failed relay is simply the next tick's work.
      opts: { removeOnComplete: { age: 3600, count: 10_000 }, removeOnFail: { age: 7 * 24 * 3600, count: 10_000 } },
    });
    return report;
  }
}
