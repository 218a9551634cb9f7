/** Queue of the per-tenant overdue counts the nightly sweep fans out. */
export const INVOICE_OVERDUE_QUEUE = 'invoice-overdue';
export const INVOICE_OVERDUE_JOB = 'count-overdue';

// Read once at startup: @Cron() takes its expression when the class is decorated.
/** When the sweep runs (cron syntax, server time); `off` disables it. Default: 03:00 daily. */
export const INVOICE_OVERDUE_SWEEP_CRON = process.env.INVOICE_OVERDUE_SWEEP_CRON || '0 3 * * *';
export const INVOICE_OVERDUE_CONCURRENCY = Number(process.env.INVOICE_OVERDUE_CONCURRENCY || 4);

export interface InvoiceOverduePayload {
  /** ISO instant the sweep ran; every tenant counts the open invoices due before it. */
  asOf: string;
}

export interface InvoiceOverdueResult {
  tenantId: string;
  overdue: number;
  asOf: string;
}
