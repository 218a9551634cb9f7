import { Injectable } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import {
  INVOICE_OVERDUE_JOB,
  INVOICE_OVERDUE_QUEUE,
  INVOICE_OVERDUE_SWEEP_CRON,
  type InvoiceOverduePayload,
} from './invoice-overdue.constants';
import { TenantFanOut, type FanOutReport } from './tenant-fan-out';

export interface SweepReport extends FanOutReport {
  asOf: string;
}

/**
 * The nightly fan-out (TenantFanOut): runs as the system tenant, lists the tenants, and enqueues
 * one overdue count per active tenant from inside that tenant's own context. Suspended (and
 * provisioning) tenants are skipped and reported.
 */
@Injectable()
export class InvoiceOverdueSweep {

  constructor(private readonly fanOut: TenantFanOut) {}

  @Cron(INVOICE_OVERDUE_SWEEP_CRON === 'off' ? '0 3 * * *' : INVOICE_OVERDUE_SWEEP_CRON, {
    name: 'invoice-overdue-sweep',
    disabled: INVOICE_OVERDUE_SWEEP_CRON === 'off',
    waitForCompletion: true,
  })
  async onSchedule(now = new Date()): Promise<SweepReport | null> {
    // Every worker instance fires the cron; the first to claim this minute's slot runs the sweep.
    if (!(await this.fanOut.claimSlot('invoice-overdue-sweep', now))) return null;
    return this.run(now);
  }

  async run(now = new Date()): Promise<SweepReport> {
    const payload: InvoiceOverduePayload = { asOf: now.toISOString() };
    const report = await this.fanOut.enqueuePerActiveTenant({ requestIdPrefix: 'sweep', queue: INVOICE_OVERDUE_QUEUE, name: INVOICE_OVERDUE_JOB, payload });
    return { ...report, asOf: payload.asOf };
  }
}
