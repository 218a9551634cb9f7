import type { Readable } from 'node:stream';
import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, TenantEntity, type AuditActor, type AuditTrail } from '#strata/control-plane';
import { STORAGE_DRIVER, type StorageDriver } from '#strata/storage';
import { ExportExecutor } from './export.executor';
import { exportError, ExportErrorCode } from './exports.errors';
import { TenantExportsRepository } from './tenant-exports.repository';
import { archiveKeyOf, exportView, type TenantExportRecord, type TenantExportView } from './tenant-export.types';

/** An archive on its way to a client. */
export interface ExportDownload {
  stream: Readable;
  bytes: number;
  sha256: string;
  filename: string;
}

/** What operators and tenant owners ask of exports: request, follow, download. The executor does the work. */
@Injectable()
export class ExportsService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly exports: TenantExportsRepository,
    private readonly executor: ExportExecutor,
    @Inject(STORAGE_DRIVER) private readonly storage: StorageDriver,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  /**
   * Queues an export of the tenant; `requestedBy` is `operator:<sub>` or `owner:<user id>`. A tenant
   * has at most one open export: while one is queued or running, asking again answers that one.
   */
  async request(tenantId: string, requestedBy: string, actor: AuditActor): Promise<TenantExportView> {
    const tenant = await this.tenant(tenantId);
    if (tenant.status !== 'active' && tenant.status !== 'suspended') {
      throw exportError(ExportErrorCode.tenantNotActive, `a ${tenant.status} tenant cannot be exported`);
    }
    const { record, created } = await this.exports.insertOrOpen(tenant.id, requestedBy);
    // All of a tenant's data leaving the platform: recorded whoever asks, also when an open export is answered again.
    await this.audit.record({ action: 'export.requested', tenantId: tenant.id, actor, details: { exportId: record.id, reused: !created } });
    this.executor.nudge();
    return exportView(record);
  }

  /**
   * Deletes every archive of the tenant from storage, then its export records (an export still
   * running when this is called fails on its lease, and its executor removes what it stored).
   * Idempotent; answers what it removed.
   */
  async purgeTenant(tenantId: string): Promise<{ archives: number; records: number }> {
    const archives = await this.purgeArchives(tenantId);
    return { archives, records: await this.exports.deleteByTenant(tenantId) };
  }

  /**
   * Offboarding's storage step: every archive of the tenant's exports (the records go with the other
   * control-plane rows, later). Idempotent; answers how many archives there were.
   */
  async purgeArchives(tenantId: string): Promise<number> {
    const records = await this.exports.listByTenant(tenantId, Number.MAX_SAFE_INTEGER);
    for (const r of records) await this.storage.delete(r.archiveKey ?? archiveKeyOf(r.id));
    return records.filter((r) => r.archiveKey).length;
  }

  async get(id: string): Promise<TenantExportView> {
    return exportView(await this.record(id));
  }

  /** The tenant's own export; another tenant's id is not found, exactly like an unknown one. */
  async getForTenant(id: string, tenantId: string): Promise<TenantExportView> {
    return exportView(await this.recordForTenant(id, tenantId));
  }

  async listForTenant(tenantId: string): Promise<TenantExportView[]> {
    await this.tenant(tenantId);
    return (await this.exports.listByTenant(tenantId)).map(exportView);
  }

  async download(id: string, actor: AuditActor): Promise<ExportDownload> {
    return this.open(await this.record(id), actor);
  }

  async downloadForTenant(id: string, tenantId: string, actor: AuditActor): Promise<ExportDownload> {
    return this.open(await this.recordForTenant(id, tenantId), actor);
  }

  private async open(record: TenantExportRecord, actor: AuditActor): Promise<ExportDownload> {
    if (record.state !== 'done' || !record.archiveKey || !record.archiveSha256) {
      throw exportError(ExportErrorCode.exportNotReady, `export ${record.id} is ${record.state}; its archive can be downloaded once it is done`);
    }
    const object = await this.storage.get(record.archiveKey);
    await this.audit.record({ action: 'export.downloaded', tenantId: record.tenantId, actor, details: { exportId: record.id, bytes: object.size } }).catch((err: unknown) => {
      object.stream.destroy();
      throw err;
    });
    const date = (record.finishedAt ?? record.createdAt).toISOString().slice(0, 10);
    return { stream: object.stream, bytes: object.size, sha256: record.archiveSha256, filename: `strata-export-${date}-${record.id}.tar.gz` };
  }

  private async tenant(id: string): Promise<TenantEntity> {
    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id });
    if (!tenant || tenant.status === 'deleted') throw exportError(ExportErrorCode.tenantNotFound, 'tenant not found');
    return tenant;
  }

  private async record(id: string): Promise<TenantExportRecord> {
    const record = await this.exports.findById(id);
    if (!record) throw exportError(ExportErrorCode.exportNotFound, 'export not found');
    return record;
  }

  private async recordForTenant(id: string, tenantId: string): Promise<TenantExportRecord> {
    const record = await this.exports.findForTenant(id, tenantId);
    if (!record) throw exportError(ExportErrorCode.exportNotFound, 'export not found');
    return record;
  }
}
