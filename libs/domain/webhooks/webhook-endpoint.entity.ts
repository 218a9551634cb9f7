import { Column, CreateDateColumn, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';

// No schema: search_path, set per transaction by the tenancy lib, chooses the tier's table.
@Entity({ name: 'webhook_endpoints' })
export class WebhookEndpoint {
  @PrimaryColumn('uuid', { name: 'tenant_id' })
  tenantId: string;

  @PrimaryGeneratedColumn('uuid')
  id: string;

  @Column('text')
  url: string;

  /** Signing secret of this endpoint; shown once, at registration. */
  @Column('text')
  secret: string;

  @Column('text', { array: true })
  events: string[];

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
