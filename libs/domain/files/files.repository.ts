import { Injectable } from '@nestjs/common';
import { applyKeysetWindow, type KeysetWindow } from '#strata/common';
import { TenantConnectionManager, TenantContext } from '#strata/tenancy';
import { StoredFile } from './stored-file.entity';

export interface NewFileRow {
  id: string;
  name: string;
  contentType: string;
  sizeBytes: number;
  storageKey: string;
}

/**
 * One query per method, on the open tenant transaction. Every statement names tenant_id from the
 * context explicitly; RLS is the second line, not the only one.
 */
@Injectable()
export class FilesRepository {
  constructor(
    private readonly connections: TenantConnectionManager,
    private readonly context: TenantContext,
  ) {}

  async insert(fields: NewFileRow): Promise<StoredFile> {
    const file = this.connections.manager.create(StoredFile, { ...fields, tenantId: this.context.tenant.id });
    // INSERT … RETURNING fills createdAt into `file`.
    await this.connections.manager.insert(StoredFile, file);
    return file;
  }

  findById(id: string): Promise<StoredFile | null> {
    return this.connections.manager.findOneBy(StoredFile, { tenantId: this.context.tenant.id, id });
  }

  /** Served by the (tenant_id, created_at DESC, id DESC) index. */
  list(window: KeysetWindow): Promise<StoredFile[]> {
    const query = this.connections.manager
      .createQueryBuilder(StoredFile, 'file')
      .where('file.tenantId = :tenantId', { tenantId: this.context.tenant.id });
    return applyKeysetWindow(query, 'file', window).getMany();
  }

  /** The deleted row's storage key and size, or null when the tenant has no file with this id. */
  async delete(id: string): Promise<{ storageKey: string; sizeBytes: number } | null> {
    const result = await this.connections.manager
      .createQueryBuilder()
      .delete()
      .from(StoredFile)
      .where({ tenantId: this.context.tenant.id, id })
      .returning('storage_key, size_bytes')
      .execute();
    const [row] = result.raw as Array<{ storage_key: string; size_bytes: string }>;
    return row ? { storageKey: row.storage_key, sizeBytes: Number(row.size_bytes) } : null;
  }
}
