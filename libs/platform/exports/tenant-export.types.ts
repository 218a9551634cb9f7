import { ApiProperty, ApiSchema } from '@nestjs/swagger';
import { TIERS, type MembershipRole, type Tier } from '#strata/control-plane';

/** States in order; `done` and `failed` are terminal. */
export const EXPORT_STATES = ['queued', 'running', 'done', 'failed'] as const;
export type ExportState = (typeof EXPORT_STATES)[number];
export const TERMINAL_EXPORT_STATES: readonly ExportState[] = ['done', 'failed'];

/** What the archive says about one table: its rows and the sha256 of its JSON Lines file. */
@ApiSchema({ name: 'ExportTable' })
export class ExportTableSummary {
  @ApiProperty() name: string;
  @ApiProperty({ type: 'integer', minimum: 0 }) rows: number;
  @ApiProperty({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of tables/{name}.jsonl in the archive' }) sha256: string;
}

/** A row of control.tenant_exports. */
export interface TenantExportRecord {
  id: string;
  tenantId: string;
  requestedBy: string;
  state: ExportState;
  tier: Tier | null;
  schemaVersion: string | null;
  rowsExported: number;
  filesExported: number;
  tables: ExportTableSummary[];
  archiveKey: string | null;
  archiveBytes: number | null;
  archiveSha256: string | null;
  error: string | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

/** The API's view of an export (operators and the tenant's owners see the same). */
@ApiSchema({ name: 'TenantExport' })
export class TenantExportView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ enum: EXPORT_STATES }) state: ExportState;
  @ApiProperty({ description: '`operator:<sub>` or `owner:<user id>`' }) requestedBy: string;
  @ApiProperty({ enum: TIERS, nullable: true, description: 'where the tenant lived when its rows were read' }) tier: Tier | null;
  @ApiProperty({ type: String, nullable: true, description: 'the tenant schema version the rows have' }) schemaVersion: string | null;
  @ApiProperty({ type: 'integer', minimum: 0 }) rowsExported: number;
  @ApiProperty({ type: 'integer', minimum: 0 }) filesExported: number;
  @ApiProperty({ type: [ExportTableSummary], description: 'per table, parents before children' }) tables: ExportTableSummary[];
  @ApiProperty({ type: 'integer', nullable: true, description: 'size of the .tar.gz' }) archiveBytes: number | null;
  @ApiProperty({ type: String, nullable: true, pattern: '^[0-9a-f]{64}$', description: 'sha256 of the .tar.gz (also sent as the download\'s Digest)' }) archiveSha256: string | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty({ type: 'integer', minimum: 0 }) attempts: number;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startedAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt: Date | null;
}

export function exportView(e: TenantExportRecord): TenantExportView {
  return {
    id: e.id,
    tenantId: e.tenantId,
    state: e.state,
    requestedBy: e.requestedBy,
    tier: e.tier,
    schemaVersion: e.schemaVersion,
    rowsExported: e.rowsExported,
    filesExported: e.filesExported,
    tables: e.tables,
    archiveBytes: e.archiveBytes,
    archiveSha256: e.archiveSha256,
    error: e.error,
    attempts: e.attempts,
    createdAt: e.createdAt,
    startedAt: e.startedAt,
    finishedAt: e.finishedAt,
  };
}

/** An archive's manifest.json, its first entry. */
export interface ExportManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  exportId: string;
  createdAt: string;
  tenant: { id: string; slug: string; name: string; plan: string; tier: Tier };
  /** The tenant schema version of the rows: a restore needs a home at the same version. */
  schemaVersion: string;
  /** Parents before children: the order rows are restored in. */
  tables: Array<{ name: string; path: string; rows: number; bytes: number; sha256: string }>;
  /** Sequences of the tenant's home schema and the last value each had handed out. */
  sequences: Array<{ name: string; last: string }>;
  /** Objects under the tenant's storage prefix, by key relative to it. */
  files: Array<{ key: string; path: string; bytes: number; sha256: string; contentType?: string }>;
  /**
   * The tenant's members (control plane): `members.jsonl`, one ExportedMember per line, ordered by
   * email. Absent in archives made before it was added; a restore then adds nobody.
   */
  members?: { path: typeof MEMBERS_PATH; rows: number; bytes: number; sha256: string };
}
export const MANIFEST_FORMAT = 'strata-tenant-export';
export const MANIFEST_PATH = 'manifest.json';
export const MEMBERS_PATH = 'members.jsonl';

/** One line of members.jsonl: who belonged to the tenant, with which role. No password hash, no sessions. */
export interface ExportedMember {
  userId: string;
  email: string;
  role: MembershipRole;
}

/** Where an export's archive is kept: a platform key, outside every tenant's `{tenantId}/` prefix. */
export const archiveKeyOf = (exportId: string): string => `platform/exports/${exportId}.tar.gz`;
