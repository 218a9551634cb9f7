import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { QueryFailedError } from 'typeorm';
import { conflict, DEFAULT_PAGE_LIMIT, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { toInvoiceView, type CreateInvoiceDto, type InvoiceView } from './invoices.dto';
import { InvoicesRepository } from './invoices.repository';

const UNIQUE_VIOLATION = '23505';
/** Emitted inside the creating transaction with the InvoiceView; libs that react to it never import this lib. */
export const INVOICE_CREATED = 'invoice.created';
const sqlState = (err: unknown): string | undefined =>
  err instanceof QueryFailedError ? (err.driverError as { code?: string } | undefined)?.code : undefined;

/** Invoices of the current tenant; each use case is one tenant transaction. */
@Injectable()
export class InvoicesService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly invoices: InvoicesRepository,
    private readonly events: EventEmitter2,
  ) {}

  /** Newest first. A malformed cursor is refused before any connection is taken. */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string): Promise<Page<InvoiceView>> {
    const window = keysetWindow({ limit, cursor });
    const rows = await this.connections.read(() => this.invoices.list(window));
    return toPage(rows, limit, toInvoiceView);
  }

  async create(input: CreateInvoiceDto): Promise<InvoiceView> {
    try {
      const invoice = await this.connections.transaction(async () => {
        const created = await this.invoices.insert({ number: input.number, amount: input.amount, currency: input.currency });
        // Listeners (webhooks' outbox) write in this same unit of work; one that throws rolls the invoice back.
        await this.events.emitAsync(INVOICE_CREATED, toInvoiceView(created));
        return created;
      });
      return toInvoiceView(invoice);
    } catch (err) {
      // The database decides, not a prior SELECT: two concurrent creates cannot both pass. The
      // only other unique key is the generated primary key.
      if (sqlState(err) === UNIQUE_VIOLATION) {
        throw conflict('invoice_number_taken', 'an invoice with this number already exists');
      }
      throw err;
    }
  }

  async get(id: string): Promise<InvoiceView> {
    const invoice = await this.connections.read(() => this.invoices.findById(id));
    if (!invoice) throw notFound('invoice_not_found', 'invoice not found');
    return toInvoiceView(invoice);
  }

  /** How many of the tenant's invoices were created before `cutoff` (overdue counts). An invalid date is refused before any connection is taken. */
  async countCreatedBefore(cutoff: Date): Promise<number> {
    if (Number.isNaN(cutoff.getTime())) throw new Error('countCreatedBefore: cutoff is an invalid date');
    return this.connections.read(() => this.invoices.countCreatedBefore(cutoff));
  }
}
