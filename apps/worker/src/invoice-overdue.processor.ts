import { Processor } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import { Logger } from '@nestjs/common';
import { InvoicesService } from '#strata/invoices';
import { TenantWorkerHost, type TenantJobData } from '#strata/jobs';
import { TenantContext } from '#strata/tenancy/platform';
import {
  INVOICE_OVERDUE_CONCURRENCY,
  INVOICE_OVERDUE_QUEUE,
  type InvoiceOverduePayload,
  type InvoiceOverdueResult,
} from './invoice-overdue.constants';

/**
 * One tenant's overdue count (open invoices past their dueAt), in that tenant's context (TenantWorkerHost re-entered it): the same
 * InvoicesService use case an HTTP handler would call, on whichever tier the tenant lives.
 * The count is the job's return value (BullMQ keeps it on the completed job) and a log line.
 */
@Processor(INVOICE_OVERDUE_QUEUE, { concurrency: INVOICE_OVERDUE_CONCURRENCY })
export class InvoiceOverdueProcessor extends TenantWorkerHost<InvoiceOverduePayload, InvoiceOverdueResult> {
  private readonly logger = new Logger('InvoiceOverdue');

  constructor(
    private readonly invoices: InvoicesService,
    private readonly context: TenantContext,
  ) {
    super();
  }

  protected async handle(job: Job<TenantJobData<InvoiceOverduePayload>>): Promise<InvoiceOverdueResult> {
    const { asOf } = job.data.payload;
    const at = new Date(asOf);
    if (Number.isNaN(at.getTime())) throw new Error(`invalid asOf ${JSON.stringify(asOf)}`);
    const tenant = this.context.tenant;
    const overdue = await this.invoices.countOverdue(at);
    this.logger.log(`tenant ${tenant.slug}: ${overdue} open invoice(s) past their due date`);
    return { tenantId: tenant.id, overdue, asOf: at.toISOString() };
  }
}
