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

  /** A disabled endpoint gets no new deliveries (queued ones still go). */
  @Column('boolean', { default: true })
  enabled: boolean;

  /** The secret before the last rotation; deliveries are signed with it too until it expires. */
  @Column('text', { name: 'previous_secret', nullable: true })
  previousSecret: string | null;

  @Column('timestamptz', { name: 'previous_secret_expires_at', nullable: true })
  previousSecretExpiresAt: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;

  /** Soft delete: the endpoint is gone for every route but its delivery log, kept for the retention. */
  @Column('timestamptz', { name: 'deleted_at', nullable: true })
  deletedAt: Date | null;
}
