import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';
import { safeIntegerTransformer } from '#strata/common';

// Not named File: Node has a global File. No schema: search_path, set per transaction by the
// tenancy lib, chooses the tier's table.
@Entity({ name: 'files' })
export class StoredFile {
  @PrimaryColumn('uuid', { name: 'tenant_id' })
  tenantId: string;

  /** Chosen by the service before the bytes are stored, so the object's key can carry it. */
  @PrimaryColumn('uuid')
  id: string;

  /** The uploader's file name, shown and used for Content-Disposition; never part of a path or key. */
  @Column('text')
  name: string;

  @Column('text', { name: 'content_type' })
  contentType: string;

  @Column('bigint', { name: 'size_bytes', transformer: safeIntegerTransformer })
  sizeBytes: number;

  /** Relative to the tenant's prefix: TenantStorage adds `{tenantId}/` from the context. */
  @Column('text', { name: 'storage_key' })
  storageKey: string;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt: Date;
}
