import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { safeIntegerTransformer } from '#strata/common';

export const INVOICE_STATUSES = ['draft', 'open', 'paid', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

// No schema: search_path, set per transaction by the tenancy lib, chooses the tier's table.
@Entity({ name: 'invoices' })
export class Invoice {
  @PrimaryColumn('uuid', { name: 'tenant_id' })
  tenantId: string;

  @PrimaryGeneratedColumn('uuid')
  id: string;

  /** Unique per tenant (UNIQUE (tenant_id, number)). */
  @Column('text')
  number: string;

  /** Minor units (cents, yen …). */
  @Column('bigint', { transformer: safeIntegerTransformer })
  amount: number;

  @Column('char', { length: 3 })
  currency: string;

  @Column('text', { default: 'open' })
  status: InvoiceStatus;

  /** When payment is due; an open invoice past it is overdue. */
  @Column('timestamptz', { name: 'due_at', nullable: true })
  dueAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
