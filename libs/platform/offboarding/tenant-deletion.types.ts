import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { TIERS, type Tier } from '#strata/control-plane';

/**
 * The steps of an offboarding, in the order they run (README: what each removes, why in this order).
 * `done` is terminal.
 */
export const DELETION_STEPS = ['jobs', 'files', 'cache', 'retained_homes', 'home', 'control_plane', 'tombstone', 'done'] as const;
export type DeletionStep = (typeof DELETION_STEPS)[number];

/** One store's line in the deletion report: what was removed there, how many, when. */
@ApiSchema({ name: 'DeletionReportEntry' })
export class DeletionReportEntry {
  @ApiProperty({ enum: DELETION_STEPS.filter((s) => s !== 'done'), description: 'the step that cleared it' }) step: DeletionStep;
  @ApiProperty({ description: 'the store, e.g. "bullmq", "object storage (local)", "redis", "postgres silo database strata_t_acme"' }) store: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, description: 'what was removed: count per kind (table, queue, key kind …)' })
  removed: Record<string, number>;
  @ApiPropertyOptional({ type: 'object', additionalProperties: true, description: 'where exactly (server, database, schema, prefix …)' })
  details?: Record<string, unknown>;
  @ApiProperty({ format: 'date-time' }) at: string;
}

/** A row of control.tenant_deletions. */
export interface TenantDeletionRecord {
  tenantId: string;
  slug: string;
  tier: Tier;
  poolId: string;
  schemaName: string;
  databaseName: string | null;
  state: 'running' | 'done';
  step: DeletionStep;
  report: DeletionReportEntry[];
  requestedBy: string;
  requestedAt: Date;
  progressAt: Date;
  finishedAt: Date | null;
  attempts: number;
  error: string | null;
}

/** GET /admin/tenants/:id/deletion-report. */
@ApiSchema({ name: 'DeletionReport' })
export class DeletionReportView {
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ description: 'the slug it had (released for reuse once deleted)' }) slug: string;
  @ApiProperty({ enum: TIERS }) tier: Tier;
  @ApiProperty({ enum: ['deleting', 'deleted'] }) status: 'deleting' | 'deleted';
  @ApiProperty({ enum: DELETION_STEPS, description: 'the step running next (`done` when finished)' }) step: DeletionStep;
  @ApiProperty({ description: 'the operator (token `sub`) who asked' }) requestedBy: string;
  @ApiProperty({ type: String, format: 'date-time' }) requestedAt: Date;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt: Date | null;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'failed attempts so far (each step is retried)' }) attempts: number;
  @ApiProperty({ type: String, nullable: true, description: 'the last failure, while retrying' }) error: string | null;
  @ApiProperty({ type: [DeletionReportEntry], description: 'one entry per store cleared, in order' }) stores: DeletionReportEntry[];
}

export function deletionReportView(d: TenantDeletionRecord): DeletionReportView {
  return {
    tenantId: d.tenantId,
    slug: d.slug,
    tier: d.tier,
    status: d.state === 'done' ? 'deleted' : 'deleting',
    step: d.step,
    requestedBy: d.requestedBy,
    requestedAt: d.requestedAt,
    finishedAt: d.finishedAt,
    attempts: d.attempts,
    error: d.error,
    stores: d.report,
  };
}
