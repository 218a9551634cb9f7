import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE, type Tier } from '#strata/control-plane';
import { LeasedTable, rowsOf } from '#strata/leases';
import type { ExportTableSummary, TenantExportRecord } from './tenant-export.types';

const COLUMNS = `id, tenant_id, requested_by, state, tier, schema_version, rows_exported, files_exported, tables, archive_key,
  archive_bytes, archive_sha256, error, lease_owner, lease_until, attempts, created_at, started_at, finished_at`;
const OPEN = `state IN ('queued', 'running')`;
const LEASED = new LeasedTable({ table: 'control.tenant_exports', key: 'id', open: OPEN, order: 'created_at', columns: COLUMNS });
// The claim counts the attempt: an export that kills its process still runs out of attempts.
const CLAIM = LEASED.claim({ set: [`state = 'running'`, 'attempts = attempts + 1', 'started_at = coalesce(started_at, now())'] });
const RENEW = LEASED.renew();
const RELEASE = LEASED.release({ set: [`state = 'queued'`, 'error = $4'] });

type Row = Record<string, unknown>;
const toRecord = (r: Row): TenantExportRecord => ({
  id: r.id as string,
  tenantId: r.tenant_id as string,
  requestedBy: r.requested_by as string,
  state: r.state as TenantExportRecord['state'],
  tier: (r.tier as Tier | null) ?? null,
  schemaVersion: (r.schema_version as string | null) ?? null,
  rowsExported: Number(r.rows_exported),
  filesExported: Number(r.files_exported),
  tables: Object.entries((r.tables as Record<string, { rows: number; sha256: string; order: number }>) ?? {})
    .sort(([, a], [, b]) => a.order - b.order)
    .map(([name, t]) => ({ name, rows: t.rows, sha256: t.sha256 })),
  archiveKey: (r.archive_key as string | null) ?? null,
  archiveBytes: r.archive_bytes === null ? null : Number(r.archive_bytes),
  archiveSha256: (r.archive_sha256 as string | null) ?? null,
  error: (r.error as string | null) ?? null,
  leaseOwner: (r.lease_owner as string | null) ?? null,
  leaseUntil: (r.lease_until as Date | null) ?? null,
  attempts: Number(r.attempts),
  createdAt: r.created_at as Date,
  startedAt: (r.started_at as Date | null) ?? null,
  finishedAt: (r.finished_at as Date | null) ?? null,
});

/** What a finished export records: where the archive is and what it holds. */
export interface ExportResult {
  tier: Tier;
  schemaVersion: string;
  rowsExported: number;
  filesExported: number;
  tables: ExportTableSummary[];
  archiveKey: string;
  archiveBytes: number;
  archiveSha256: string;
}

/**
 * control.tenant_exports, one query per method. Every change an executor makes is conditional on it
 * still holding the lease (`lease_owner`), so a process that lost its claim changes nothing.
 */
@Injectable()
export class TenantExportsRepository {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  /** A new export, or the tenant's open one (queued or running) when it has one; `created` says which. */
  async insertOrOpen(tenantId: string, requestedBy: string): Promise<{ record: TenantExportRecord; created: boolean }> {
    for (;;) {
      const rows = rowsOf(await this.db.query(
        `INSERT INTO control.tenant_exports (tenant_id, requested_by) VALUES ($1, $2)
         ON CONFLICT (tenant_id) WHERE ${OPEN} DO NOTHING RETURNING ${COLUMNS}`,
        [tenantId, requestedBy],
      ));
      if (rows[0]) return { record: toRecord(rows[0]), created: true };
      const open = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_exports WHERE tenant_id = $1 AND ${OPEN}`, [tenantId]));
      // Ended between the two statements: try again.
      if (open[0]) return { record: toRecord(open[0]), created: false };
    }
  }

  /** Every export of the tenant, for offboarding: the archives to delete and the rows to drop after. */
  async deleteByTenant(tenantId: string): Promise<number> {
    const rows = rowsOf(await this.db.query(`DELETE FROM control.tenant_exports WHERE tenant_id = $1 RETURNING id`, [tenantId]));
    return rows.length;
  }

  async findById(id: string): Promise<TenantExportRecord | null> {
    const rows = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_exports WHERE id = $1`, [id]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Only when it is `tenantId`'s: the owner routes never learn whether another tenant's id exists. */
  async findForTenant(id: string, tenantId: string): Promise<TenantExportRecord | null> {
    const rows = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_exports WHERE id = $1 AND tenant_id = $2`, [id, tenantId]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async listByTenant(tenantId: string, limit = 50): Promise<TenantExportRecord[]> {
    const rows = rowsOf(await this.db.query(
      `SELECT ${COLUMNS} FROM control.tenant_exports WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [tenantId, limit],
    ));
    return rows.map(toRecord);
  }

  /** Claims the oldest open export nobody holds (or whose holder's lease ran out), and counts the attempt. */
  async claim(owner: string, leaseMs: number): Promise<TenantExportRecord | null> {
    const rows = rowsOf(await this.db.query(CLAIM, [owner, leaseMs]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Extends the lease; false when another process has taken the export over (or it ended). */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(RENEW, [id, owner, leaseMs]));
    return rows.length === 1;
  }

  async progress(id: string, owner: string, rowsExported: number, filesExported: number): Promise<void> {
    await this.db.query(
      `UPDATE control.tenant_exports SET rows_exported = $3, files_exported = $4 WHERE id = $1 AND lease_owner = $2`,
      [id, owner, rowsExported, filesExported],
    );
  }

  /** Gives the export back, claimable again after `delayMs` (a retry's back-off). */
  async release(id: string, owner: string, delayMs: number, error: string): Promise<void> {
    await this.db.query(RELEASE, [id, owner, delayMs, error]);
  }

  async finish(id: string, owner: string, result: ExportResult): Promise<TenantExportRecord | null> {
    const tables = Object.fromEntries(result.tables.map((t, order) => [t.name, { rows: t.rows, sha256: t.sha256, order }]));
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_exports
          SET state = 'done', tier = $3, schema_version = $4, rows_exported = $5, files_exported = $6, tables = $7::jsonb,
              archive_key = $8, archive_bytes = $9, archive_sha256 = $10, error = NULL, finished_at = now(), ${LEASED.letGo}
        WHERE ${LEASED.held}
        RETURNING ${COLUMNS}`,
      [id, owner, result.tier, result.schemaVersion, result.rowsExported, result.filesExported, JSON.stringify(tables), result.archiveKey, result.archiveBytes, result.archiveSha256],
    ));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async fail(id: string, owner: string, error: string): Promise<void> {
    await this.db.query(
      `UPDATE control.tenant_exports SET state = 'failed', error = $3, finished_at = now(), ${LEASED.letGo}
        WHERE ${LEASED.held}`,
      [id, owner, error],
    );
  }
}
