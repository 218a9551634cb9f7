// Public API of libs/domain/invoices. The app mounts InvoicesModule; the rest is for in-process callers
// (the bench calls InvoicesService, and maps Invoice for its untenanted baseline).
export { InvoicesModule } from './invoices.module';
export { InvoicesService } from './invoices.service';
export { Invoice } from './invoice.entity';
export { ListInvoicesQuery, type InvoiceView } from './invoices.dto';
