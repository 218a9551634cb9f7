import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { Logger } from '@nestjs/common';
import { Invoice } from '#strata/invoices';
import { TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import {
  INVOICE_OVERDUE_CONCURRENCY,
  INVOICE_OVERDUE_QUEUE,
  type InvoiceOverduePayload,
  type InvoiceOverdueResult,
} from './invoice-overdue.constants';

/**
 * One tenant's overdue count, in that tenant's context (TenantWorkerHost re-entered it): the
 * query runs in a tenant transaction like any HTTP use case, on whichever tier the tenant lives.
 * The count is the job's return value (BullMQ keeps it on the completed job) and a log line.
 */
@Processor(INVOICE_OVERDUE_QUEUE, { concurrency: INVOICE_OVERDUE_CONCURRENCY })
export class InvoiceOverdueProcessor extends TenantWorkerHost<InvoiceOverduePayload, InvoiceOverdueResult> {
  private readonly logger = new Logger('InvoiceOverdue');

  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {
    super();
  }

  protected async handle(job: Job<TenantJobData<InvoiceOverduePayload>>): Promise<InvoiceOverdueResult> {
    const { asOf, olderThanDays } = job.data.payload;
    const cutoff = new Date(Date.parse(asOf) - olderThanDays * 86_400_000);
    if (Number.isNaN(cutoff.getTime())) throw new Error(`invalid asOf ${JSON.stringify(asOf)}`);
    const tenant = this.context.tenant;
    // Served by the (tenant_id, created_at DESC, id DESC) index; tenant_id named explicitly, RLS second.
    const overdue = await this.connections.transaction((em) =>
      em
        .createQueryBuilder(Invoice, 'invoice')
        .where('invoice.tenantId = :tenantId', { tenantId: tenant.id })
        .andWhere('invoice.createdAt < :cutoff', { cutoff })
        .getCount(),
    );
    this.logger.log(`tenant ${tenant.slug}: ${overdue} invoice(s) older than ${olderThanDays} days`);
    return { tenantId: tenant.id, overdue, cutoff: cutoff.toISOString() };
  }
}
