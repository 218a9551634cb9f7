import { randomUUID } from 'node:crypto';
import { QueryFailedError, type EntityManager } from 'typeorm';
import { type KeysetWindow } from '#strata/common';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import type { TenantConnectionManager } from '#strata/tenancy';
import type { PlanLimits } from '#strata/plans';
import type { Invoice, InvoiceStatus } from './invoice.entity';
import type { InvoicesRepository } from './invoices.repository';
import { InvoicesService } from './invoices.service';
import { apiError } from '../../../test/support/api-error';

/** Runs work at once and records how many units of work a use case opened. */
class FakeTransactions {
  opened = 0;
  open = false;
  /** The kind of each unit opened, in order. */
  readonly units: Array<'read' | 'transaction'> = [];
  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('transaction', work);
  }
  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.unit('read', work);
  }
  private async unit<T>(kind: 'read' | 'transaction', work: (manager: EntityManager) => Promise<T>): Promise<T> {
    this.opened++;
    this.units.push(kind);
    this.open = true;
    try {
      return await work({} as EntityManager);
    } finally {
      this.open = false;
    }
  }
}

/** One tenant's invoices; the unique (tenant_id, number) key behaves as in the database. */
class FakeInvoicesRepository implements Pick<InvoicesRepository, keyof InvoicesRepository> {
  rows: Invoice[] = [];
  private clock = Date.UTC(2026, 0, 1);
  constructor(private readonly tx: FakeTransactions) {}

  async insert(fields: { number: string; amount: number; currency: string; status: InvoiceStatus; dueAt: Date | null }): Promise<Invoice> {
    if (!this.tx.open) throw new Error('repository called outside a tenant transaction');
    if (this.rows.some((r) => r.number === fields.number)) {
      throw new QueryFailedError('INSERT INTO "invoices" …', [], Object.assign(new Error('duplicate key'), { code: '23505' }));
    }
    const invoice = { ...fields, tenantId: 'tenant', id: randomUUID(), createdAt: new Date(this.clock++) };
    this.rows.push(invoice);
    return { ...invoice };
  }

  async findById(id: string): Promise<Invoice | null> {
    if (!this.tx.open) throw new Error('repository called outside a tenant transaction');
    const row = this.rows.find((r) => r.id === id);
    return row ? { ...row } : null;
  }

  async list(window: KeysetWindow): Promise<Invoice[]> {
    if (!this.tx.open) throw new Error('repository called outside a tenant transaction');
    const after = window.after;
    return [...this.rows]
      .reverse()
      .filter((r) => !after || r.createdAt < after.createdAt)
      .slice(0, window.take);
  }

  async findByIdForUpdate(id: string): Promise<Invoice | null> {
    return this.findById(id);
  }

  async update(id: string, fields: Partial<Pick<Invoice, 'amount' | 'dueAt' | 'status'>>): Promise<void> {
    if (!this.tx.open) throw new Error('repository called outside a tenant transaction');
    Object.assign(this.rows.find((r) => r.id === id)!, fields);
  }

  async countOverdue(asOf: Date): Promise<number> {
    if (!this.tx.open) throw new Error('repository called outside a tenant transaction');
    return this.rows.filter((r) => r.status === 'open' && r.dueAt !== null && r.dueAt < asOf).length;
  }
}

/** Records what was emitted and whether a unit of work was open at that moment. */
class FakeEvents {
  emitted: Array<{ event: string; payload: unknown; inTransaction: boolean }> = [];
  failWith?: Error;
  constructor(private readonly tx: FakeTransactions) {}
  async emitAsync(event: string, payload: unknown): Promise<unknown[]> {
    this.emitted.push({ event, payload, inTransaction: this.tx.open });
    if (this.failWith) throw this.failWith;
    return [];
  }
}

function setup() {
  const tx = new FakeTransactions();
  const repo = new FakeInvoicesRepository(tx);
  const events = new FakeEvents(tx);
  // Quotas are PlanLimits' own tests (test/e2e/plan-limits.e2e-spec.ts); here every reservation passes.
  const limits = { reserve: async () => undefined, release: async () => undefined } as unknown as PlanLimits;
  const service = new InvoicesService(tx as unknown as TenantConnectionManager, repo as unknown as InvoicesRepository, events as unknown as EventEmitter2, limits);
  return { service, tx, repo, events };
}

describe('InvoicesService', () => {
  it('creates an invoice in one transaction and shows it without the tenant', async () => {
    const { service, tx } = setup();
    const view = await service.create({ number: 'INV-9', amount: 123456, currency: 'JPY' });
    expect(view).toEqual({ id: expect.any(String), number: 'INV-9', amount: 123456, currency: 'JPY', status: 'open', dueAt: null, createdAt: expect.any(Date) });
    expect(tx.opened).toBe(1);
  });

  it('reads through read units and writes through a transaction', async () => {
    const { service, tx } = setup();
    const { id } = await service.create({ number: 'INV-1', amount: 1, currency: 'EUR' });
    await service.get(id);
    await service.list();
    await service.countOverdue(new Date());
    expect(tx.units).toEqual(['transaction', 'read', 'read', 'read']);
  });

  it('emits invoice.created with the view inside the creating transaction', async () => {
    const { service, events } = setup();
    const view = await service.create({ number: 'INV-7', amount: 5, currency: 'EUR' });
    expect(events.emitted).toEqual([{ event: 'invoice.created', payload: view, inTransaction: true }]);
  });

  it('fails the create when a listener fails, so its transaction rolls back', async () => {
    const { service, events } = setup();
    events.failWith = new Error('outbox insert failed');
    await expect(service.create({ number: 'INV-8', amount: 5, currency: 'EUR' })).rejects.toBe(events.failWith);
  });

  it('answers 409 invoice_number_taken for a number the tenant already used', async () => {
    const { service } = setup();
    await service.create({ number: 'INV-9', amount: 1, currency: 'EUR' });
    expect(await apiError(service.create({ number: 'INV-9', amount: 2, currency: 'EUR' }))).toBe('409 invoice_number_taken');
  });

  it('lets other insert failures through unchanged', async () => {
    const { service, repo } = setup();
    const boom = new Error('connection reset');
    jest.spyOn(repo, 'insert').mockRejectedValueOnce(boom);
    await expect(service.create({ number: 'A', amount: 1, currency: 'EUR' })).rejects.toBe(boom);
  });

  it('answers 404 invoice_not_found for an invoice the tenant does not have', async () => {
    const { service } = setup();
    expect(await apiError(service.get('00000000-0000-4000-8000-000000000000'))).toBe('404 invoice_not_found');
  });

  it('lists newest first and hands out a cursor only while more rows follow', async () => {
    const { service } = setup();
    for (const number of ['A', 'B', 'C']) await service.create({ number, amount: 1, currency: 'EUR' });
    const first = await service.list(2);
    expect(first.items.map((i) => i.number)).toEqual(['C', 'B']);
    const second = await service.list(2, first.nextCursor!);
    expect(second.items.map((i) => i.number)).toEqual(['A']);
    expect(second.nextCursor).toBeNull();
  });

  it('refuses a malformed cursor before opening a transaction', async () => {
    const { service, tx } = setup();
    expect(await apiError(service.list(20, '%%%garbage'))).toBe('400 invalid_cursor');
    expect(tx.opened).toBe(0);
  });

  it('counts open invoices past their due date in one read, refusing an invalid date before opening one', async () => {
    const { service, tx } = setup();
    const past = '2020-01-01T00:00:00.000Z';
    await service.create({ number: 'A', amount: 1, currency: 'EUR', dueAt: past });
    await service.create({ number: 'B', amount: 1, currency: 'EUR', dueAt: '2999-01-01T00:00:00.000Z' });
    await service.create({ number: 'C', amount: 1, currency: 'EUR' });
    const paid = await service.create({ number: 'D', amount: 1, currency: 'EUR', dueAt: past });
    await service.update(paid.id, { status: 'paid' });
    const opened = tx.opened;
    expect(await service.countOverdue(new Date())).toBe(1);
    expect(tx.opened).toBe(opened + 1);
    await expect(service.countOverdue(new Date(Number.NaN))).rejects.toThrow(/invalid date/);
    expect(tx.opened).toBe(opened + 1);
  });

  it.each([
    ['draft', 'open'],
    ['draft', 'void'],
    ['open', 'paid'],
    ['open', 'void'],
  ] as const)('moves an invoice from %s to %s and emits invoice.updated in the transaction', async (from, to) => {
    const { service, events, repo } = setup();
    const created = await service.create({ number: 'T', amount: 1, currency: 'EUR', status: from === 'draft' ? 'draft' : 'open' });
    const view = await service.update(created.id, { status: to });
    expect(view.status).toBe(to);
    expect(repo.rows[0].status).toBe(to);
    expect(events.emitted.at(-1)).toEqual({ event: 'invoice.updated', payload: view, inTransaction: true });
  });

  it.each([
    ['draft', 'paid'],
    ['open', 'draft'],
    ['paid', 'void'],
    ['paid', 'open'],
    ['void', 'open'],
    ['void', 'paid'],
  ] as const)('refuses to move an invoice from %s to %s with 409 invalid_invoice_transition', async (from, to) => {
    const { service, repo } = setup();
    const created = await service.create({ number: 'T', amount: 1, currency: 'EUR' });
    repo.rows[0].status = from;
    expect(await apiError(service.update(created.id, { status: to }))).toBe('409 invalid_invoice_transition');
    expect(repo.rows[0].status).toBe(from);
  });

  it('refuses to change the amount of a paid invoice, and emits nothing for a change that changes nothing', async () => {
    const { service, repo, events } = setup();
    const created = await service.create({ number: 'T', amount: 1, currency: 'EUR' });
    await service.update(created.id, { amount: 1 });
    expect(events.emitted.map((e) => e.event)).toEqual(['invoice.created']);
    repo.rows[0].status = 'paid';
    expect(await apiError(service.update(created.id, { amount: 2 }))).toBe('409 invalid_invoice_transition');
  });
});
