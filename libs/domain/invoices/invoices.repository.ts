import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { Invoice, type InvoiceStatus } from './invoice.entity';
import type { InvoiceFilter } from './invoices.dto';

/**
 * One query per method, on the open tenant transaction. Every statement names tenant_id from the
 * context explicitly; RLS is the second line, not the only one.
 */
@Injectable()
export class InvoicesRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  /** Fails with a unique violation (23505) when the tenant already has an invoice with this number. */
  async insert(fields: { number: string; amount: number; currency: string; status: InvoiceStatus; dueAt: Date | null }): Promise<Invoice> {
    const invoice = this.connections.manager.create(Invoice, { ...fields, tenantId: this.context.tenant.id });
    // INSERT … RETURNING fills id and createdAt into `invoice`.
    await this.connections.manager.insert(Invoice, invoice);
    return invoice;
  }

  findById(id: string): Promise<Invoice | null> {
    return this.connections.manager.findOneBy(Invoice, { tenantId: this.context.tenant.id, id });
  }

  /** Locks the row for the rest of the transaction: a transition is decided on the status it changes. */
  findByIdForUpdate(id: string): Promise<Invoice | null> {
    return this.connections.manager
      .createQueryBuilder(Invoice, 'invoice')
      .setLock('pessimistic_write')
      .where('invoice.tenantId = :tenantId AND invoice.id = :id', { tenantId: this.context.tenant.id, id })
      .getOne();
  }

  async update(id: string, fields: Partial<Pick<Invoice, 'amount' | 'dueAt' | 'status'>>): Promise<void> {
    if (Object.keys(fields).length) await this.connections.manager.update(Invoice, { tenantId: this.context.tenant.id, id }, fields);
  }

  /**
   * Served by the (tenant_id, created_at DESC, id DESC) index, or (tenant_id, status, created_at
   * DESC, id DESC) with a status. Date windows: `from` inclusive, `to` exclusive.
   */
  list(window: KeysetWindow, filter: InvoiceFilter = {}): Promise<Invoice[]> {
    const query = this.connections.manager
      .createQueryBuilder(Invoice, 'invoice')
      .where('invoice.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    if (filter.status) query.andWhere('invoice.status = :status', { status: filter.status });
    if (filter.dueFrom) query.andWhere('invoice.dueAt >= :dueFrom', { dueFrom: filter.dueFrom });
    if (filter.dueTo) query.andWhere('invoice.dueAt < :dueTo', { dueTo: filter.dueTo });
    if (filter.createdFrom) query.andWhere('invoice.createdAt >= :createdFrom', { createdFrom: filter.createdFrom });
    if (filter.createdTo) query.andWhere('invoice.createdAt < :createdTo', { createdTo: filter.createdTo });
    return applyKeysetWindow(query, 'invoice', window).getMany();
  }

  /** Open invoices whose due date is before `asOf`; served by the partial (tenant_id, due_at) WHERE open index. */
  countOverdue(asOf: Date): Promise<number> {
    return this.connections.manager
      .createQueryBuilder(Invoice, 'invoice')
      .where('invoice.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere("invoice.status = 'open'")
      .andWhere('invoice.dueAt < :asOf', { asOf })
      .getCount();
  }

}
