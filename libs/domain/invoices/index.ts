// Public API of libs/domain/invoices. The app mounts InvoicesModule; the rest is for in-process callers
// (the bench calls InvoicesService, and maps Invoice for its untenanted baseline).
export { InvoicesModule } from './invoices.module';
export { InvoicesService, INVOICE_CREATED, INVOICE_UPDATED } from './invoices.service';
export { Invoice, INVOICE_STATUSES, type InvoiceStatus } from './invoice.entity';
export { ListInvoicesQuery, type InvoiceView } from './invoices.dto';
export { InvoicesErrorCode } from './invoices.errors';
