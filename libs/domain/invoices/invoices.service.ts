import { Injectable } from '@nestjs/common';
import { EventEmitter2 } from '@nestjs/event-emitter';
import { QueryFailedError } from 'typeorm';
import { conflict, DEFAULT_PAGE_LIMIT, filterScope, keysetWindow, notFound, toPage, type Page } from '#strata/common';
import { TenantConnectionManager } from '#strata/tenancy';
import { PlanLimits } from '#strata/plans';
import type { Invoice, InvoiceStatus } from './invoice.entity';
import { toInvoiceView, type CreateInvoiceDto, type InvoiceFilter, type InvoiceView, type UpdateInvoiceDto } from './invoices.dto';
import { InvoicesErrorCode } from './invoices.errors';
import { InvoicesRepository } from './invoices.repository';

const UNIQUE_VIOLATION = '23505';
/** Emitted inside the creating transaction with the InvoiceView; libs that react to it never import this lib. */
export const INVOICE_CREATED = 'invoice.created';
/** Emitted inside the changing transaction with the new InvoiceView (PATCH, void). */
export const INVOICE_UPDATED = 'invoice.updated';

/** The statuses each status may move to (a status "moving" to itself is a no-op, always allowed). */
const TRANSITIONS: Readonly<Record<InvoiceStatus, readonly InvoiceStatus[]>> = {
  draft: ['open', 'void'],
  open: ['paid', 'void'],
  paid: [],
  void: [],
};
const invalidTransition = (message: string) => conflict(InvoicesErrorCode.invalidInvoiceTransition, message);
const sqlState = (err: unknown): string | undefined =>
  err instanceof QueryFailedError ? (err.driverError as { code?: string } | undefined)?.code : undefined;

/** Invoices of the current tenant; each use case is one tenant transaction. */
@Injectable()
export class InvoicesService {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly invoices: InvoicesRepository,
    private readonly events: EventEmitter2,
    private readonly limits: PlanLimits,
  ) {}

  /**
   * Newest first, optionally filtered. A malformed cursor, or one issued for other filters, is
   * refused before any connection is taken.
   */
  async list(limit = DEFAULT_PAGE_LIMIT, cursor?: string, filter: InvoiceFilter = {}): Promise<Page<InvoiceView>> {
    const scope = filterScope({ ...filter });
    const window = keysetWindow({ limit, cursor }, scope);
    const rows = await this.connections.read(() => this.invoices.list(window, filter));
    return toPage(rows, limit, toInvoiceView, scope);
  }

  /**
   * Changes amount, due date and/or status in one transaction on the locked row, so two concurrent
   * transitions (pay and void) cannot both pass the check. Emits invoice.updated when anything changed.
   */
  async update(id: string, input: UpdateInvoiceDto): Promise<InvoiceView> {
    return this.connections.transaction(async () => {
      const invoice = await this.invoices.findByIdForUpdate(id);
      if (!invoice) throw notFound(InvoicesErrorCode.invoiceNotFound, 'invoice not found');
      const changes: Partial<Pick<Invoice, 'amount' | 'dueAt' | 'status'>> = {};
      const editsFields = input.amount !== undefined || input.dueAt !== undefined;
      if (editsFields && (invoice.status === 'paid' || invoice.status === 'void')) {
        throw invalidTransition(`a ${invoice.status} invoice cannot be changed`);
      }
      if (input.amount !== undefined && input.amount !== invoice.amount) changes.amount = input.amount;
      if (input.dueAt !== undefined) {
        const dueAt = input.dueAt === null ? null : new Date(input.dueAt);
        if (dueAt?.getTime() !== invoice.dueAt?.getTime()) changes.dueAt = dueAt;
      }
      if (input.status !== undefined && input.status !== invoice.status) {
        if (!TRANSITIONS[invoice.status].includes(input.status)) {
          throw invalidTransition(`an invoice cannot go from ${invoice.status} to ${input.status}${this.allowedFrom(invoice.status)}`);
        }
        changes.status = input.status;
      }
      if (!Object.keys(changes).length) return toInvoiceView(invoice);
      await this.invoices.update(id, changes);
      const view = toInvoiceView({ ...invoice, ...changes });
      await this.events.emitAsync(INVOICE_UPDATED, view);
      return view;
    });
  }

  /** `POST /invoices/:id/void`: void from draft or open; voiding a void invoice again is a no-op. */
  void(id: string): Promise<InvoiceView> {
    return this.update(id, { status: 'void' });
  }

  private allowedFrom(status: InvoiceStatus): string {
    const next = TRANSITIONS[status];
    return next.length ? ` (from ${status} only to ${next.join(' or ')})` : ` (${status} is final)`;
  }

  async create(input: CreateInvoiceDto): Promise<InvoiceView> {
    try {
      const invoice = await this.connections.transaction(async () => {
        // Invoices created this UTC month, against the plan (402); a create that fails later rolls it back.
        await this.limits.reserve('invoicesPerMonth');
        const created = await this.invoices.insert({
          number: input.number,
          amount: input.amount,
          currency: input.currency,
          status: input.status ?? 'open',
          dueAt: input.dueAt === undefined ? null : new Date(input.dueAt),
        });
        // Listeners (webhooks' outbox) write in this same unit of work; one that throws rolls the invoice back.
        await this.events.emitAsync(INVOICE_CREATED, toInvoiceView(created));
        return created;
      });
      return toInvoiceView(invoice);
    } catch (err) {
      // The database decides, not a prior SELECT: two concurrent creates cannot both pass. The
      // only other unique key is the generated primary key.
      if (sqlState(err) === UNIQUE_VIOLATION) {
        throw conflict(InvoicesErrorCode.invoiceNumberTaken, 'an invoice with this number already exists');
      }
      throw err;
    }
  }

  async get(id: string): Promise<InvoiceView> {
    const invoice = await this.connections.read(() => this.invoices.findById(id));
    if (!invoice) throw notFound(InvoicesErrorCode.invoiceNotFound, 'invoice not found');
    return toInvoiceView(invoice);
  }

  /** How many of the tenant's open invoices are past their due date at `asOf` (the overdue sweep). An invalid date is refused before any connection is taken. */
  async countOverdue(asOf: Date): Promise<number> {
    if (Number.isNaN(asOf.getTime())) throw new Error('countOverdue: asOf is an invalid date');
    return this.connections.read(() => this.invoices.countOverdue(asOf));
  }
}
