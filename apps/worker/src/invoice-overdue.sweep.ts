import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { Cron } from '@nestjs/schedule';
import type { Redis } from 'ioredis';
import { DataSource, In } from 'typeorm';
import { toPlacement } from '#strata/auth';
import { CONTROL_DATA_SOURCE, TenantEntity } from '#strata/control-plane';
import { JOBS_OPTIONS, JOBS_REDIS, SystemTenantRunner, TenantJobProducer, type ResolvedJobsOptions } from '#strata/jobs';
import {
  INVOICE_OVERDUE_DAYS,
  INVOICE_OVERDUE_JOB,
  INVOICE_OVERDUE_QUEUE,
  INVOICE_OVERDUE_SWEEP_CRON,
  type InvoiceOverduePayload,
} from './invoice-overdue.constants';

export interface SweepReport {
  requestId: string;
  asOf: string;
  enqueued: string[];
  skipped: Array<{ id: string; status: string }>;
}

// Enqueue in slices: one Redis round trip per tenant, but not 10,000 promises at once.
const FAN_OUT_SLICE = 50;

/**
 * The nightly fan-out. Runs as the system tenant (it reads the control plane, never tenant data),
 * lists the tenants, and enqueues one job per active tenant from inside that tenant's own context,
 * so each job carries its tenant's envelope like any job enqueued by a request. Suspended (and
 * provisioning) tenants are skipped and reported.
 */
@Injectable()
export class InvoiceOverdueSweep {
  private readonly logger = new Logger('InvoiceOverdueSweep');

  constructor(
    private readonly system: SystemTenantRunner,
    private readonly producer: TenantJobProducer,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(JOBS_REDIS) private readonly redis: Redis,
    @Inject(JOBS_OPTIONS) private readonly jobs: ResolvedJobsOptions,
  ) {}

  @Cron(INVOICE_OVERDUE_SWEEP_CRON === 'off' ? '0 3 * * *' : INVOICE_OVERDUE_SWEEP_CRON, {
    name: 'invoice-overdue-sweep',
    disabled: INVOICE_OVERDUE_SWEEP_CRON === 'off',
    waitForCompletion: true,
  })
  async onSchedule(now = new Date()): Promise<SweepReport | null> {
    // Every worker instance fires the cron; the first to claim this minute's slot runs the sweep.
    const slot = now.toISOString().slice(0, 16);
    const claimed = await this.redis.set(`${this.jobs.prefix}:cron:invoice-overdue-sweep:${slot}`, '1', 'EX', 3600, 'NX');
    if (claimed !== 'OK') return null;
    return this.run(now);
  }

  run(now = new Date(), olderThanDays = INVOICE_OVERDUE_DAYS): Promise<SweepReport> {
    // One request id for the sweep and every job it enqueues, so a night's run correlates in logs.
    const requestId = `sweep-${randomUUID()}`;
    return this.system.runAsSystem(async () => {
      const tenants = await this.control
        .getRepository(TenantEntity)
        .find({ where: { status: In(['active', 'suspended', 'provisioning']) }, order: { id: 'ASC' } });
      const payload: InvoiceOverduePayload = { asOf: now.toISOString(), olderThanDays };
      const active = tenants.filter((t) => t.status === 'active');
      const report: SweepReport = {
        requestId,
        asOf: payload.asOf,
        enqueued: [],
        skipped: tenants.filter((t) => t.status !== 'active').map((t) => ({ id: t.id, status: t.status })),
      };
      for (let i = 0; i < active.length; i += FAN_OUT_SLICE) {
        await Promise.all(
          active.slice(i, i + FAN_OUT_SLICE).map((t) =>
            this.system.runAsTenant(toPlacement(t), async () => {
              await this.producer.add(INVOICE_OVERDUE_QUEUE, INVOICE_OVERDUE_JOB, payload);
              report.enqueued.push(t.id);
            }),
          ),
        );
      }
      this.logger.log(`[system] enqueued ${report.enqueued.length} overdue count(s), skipped ${report.skipped.length} inactive tenant(s)`);
      return report;
    }, requestId);
  }
}
