import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { Invoice } from './invoice.entity';

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
  async insert(fields: { number: string; amount: number; currency: string }): Promise<Invoice> {
    const invoice = this.connections.manager.create(Invoice, { ...fields, tenantId: this.context.tenant.id });
    // INSERT … RETURNING fills id and createdAt into `invoice`.
    await this.connections.manager.insert(Invoice, invoice);
    return invoice;
  }

  findById(id: string): Promise<Invoice | null> {
    return this.connections.manager.findOneBy(Invoice, { tenantId: this.context.tenant.id, id });
  }

  /** Served by the (tenant_id, created_at DESC, id DESC) index. */
  list(window: KeysetWindow): Promise<Invoice[]> {
    const query = this.connections.manager
      .createQueryBuilder(Invoice, 'invoice')
      .where('invoice.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    return applyKeysetWindow(query, 'invoice', window).getMany();
  }

  /** How many of the tenant's invoices were created before `cutoff`; served by the same index. */
  countCreatedBefore(cutoff: Date): Promise<number> {
    return this.connections.manager
      .createQueryBuilder(Invoice, 'invoice')
      .where('invoice.tenantId = :tenantId', { tenantId: this.context.tenant.id })
      .andWhere('invoice.createdAt < :cutoff', { cutoff })
      .getCount();
  }
}
