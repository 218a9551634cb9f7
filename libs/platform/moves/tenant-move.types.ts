import { ApiProperty, ApiPropertyOptional, ApiSchema } from '@nestjs/swagger';
import { TIERS, type Tier } from '#strata/control-plane';

/** Phases in order; `done`, `failed` and `cancelled` are terminal. */
export const MOVE_PHASES = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover', 'done', 'failed', 'cancelled'] as const;
export type MovePhase = (typeof MOVE_PHASES)[number];
export const TERMINAL_PHASES: readonly MovePhase[] = ['done', 'failed', 'cancelled'];
/** From cutover on the tenant may already be served by the target: no going back. */
export const CANCELLABLE_PHASES: readonly MovePhase[] = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying'];

@ApiSchema({ name: 'MovePhaseRecord' })
export class PhaseRecord {
  @ApiProperty({ enum: MOVE_PHASES }) phase: MovePhase;
  @ApiProperty({ format: 'date-time' }) startedAt: string;
  @ApiPropertyOptional({ format: 'date-time' }) finishedAt?: string;
}

/** What verification found per table: counts and checksums on both sides, taken on the same snapshot. */
@ApiSchema({ name: 'MoveTableCheck' })
export class TableCheck {
  @ApiProperty() table: string;
  @ApiProperty({ type: 'integer' }) sourceRows: number;
  @ApiProperty({ type: 'integer' }) targetRows: number;
  @ApiProperty() sourceChecksum: string;
  @ApiProperty() targetChecksum: string;
}

/** A row of control.tenant_moves. */
export interface TenantMoveRecord {
  id: string;
  tenantId: string;
  fromTier: Tier;
  fromPoolId: string;
  fromSchema: string;
  fromDatabase: string | null;
  toTier: Tier;
  toPoolId: string;
  toSchema: string;
  toDatabase: string | null;
  phase: MovePhase;
  cancelRequested: boolean;
  requestedBy: string;
  rowsCopied: number;
  rowsTotal: number;
  lagRows: number;
  pauseMs: number | null;
  checkpoint: { checks?: TableCheck[]; fromEpoch?: number; lastError?: string };
  phases: PhaseRecord[];
  error: string | null;
  leaseOwner: string | null;
  leaseUntil: Date | null;
  attempts: number;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  sourceDropAfter: Date | null;
  sourceDroppedAt: Date | null;
}

/** The admin API's view of a move. */
@ApiSchema({ name: 'TenantMove' })
export class TenantMoveView {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'uuid' }) tenantId: string;
  @ApiProperty({ enum: TIERS }) fromTier: Tier;
  @ApiProperty() fromPoolId: string;
  @ApiProperty({ enum: TIERS }) toTier: Tier;
  @ApiProperty() toPoolId: string;
  @ApiProperty({ enum: MOVE_PHASES }) phase: MovePhase;
  @ApiProperty({ type: String, format: 'date-time' }) createdAt: Date;
  @ApiProperty({ description: 'the operator (token `sub`) who asked' }) requestedBy: string;
  @ApiProperty({ type: 'integer', minimum: 0 }) rowsCopied: number;
  @ApiProperty({ type: 'integer', minimum: 0 }) rowsTotal: number;
  @ApiProperty({ type: 'integer', minimum: 0, description: 'changes captured but not yet applied to the target' }) lagRows: number;
  @ApiProperty({ type: 'integer', nullable: true, description: "the cutover's write pause" }) pauseMs: number | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) startedAt: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) finishedAt: Date | null;
  @ApiProperty({ type: String, nullable: true }) error: string | null;
  @ApiProperty() cancelRequested: boolean;
  @ApiProperty({ type: [PhaseRecord] }) phases: PhaseRecord[];
  @ApiProperty({ type: [TableCheck] }) checks: TableCheck[];
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) sourceDropAfter: Date | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) sourceDroppedAt: Date | null;
}

export function moveView(m: TenantMoveRecord): TenantMoveView {
  return {
    id: m.id,
    tenantId: m.tenantId,
    fromTier: m.fromTier,
    fromPoolId: m.fromPoolId,
    toTier: m.toTier,
    toPoolId: m.toPoolId,
    phase: m.phase,
    createdAt: m.createdAt,
    requestedBy: m.requestedBy,
    rowsCopied: m.rowsCopied,
    rowsTotal: m.rowsTotal,
    lagRows: m.lagRows,
    pauseMs: m.pauseMs,
    startedAt: m.startedAt,
    finishedAt: m.finishedAt,
    error: m.error,
    cancelRequested: m.cancelRequested,
    phases: m.phases,
    checks: m.checkpoint.checks ?? [],
    sourceDropAfter: m.sourceDropAfter,
    sourceDroppedAt: m.sourceDroppedAt,
  };
}
