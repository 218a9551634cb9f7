import type { Tier } from '#strata/control-plane';

/** Phases in order; `done`, `failed` and `cancelled` are terminal. */
export const MOVE_PHASES = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover', 'done', 'failed', 'cancelled'] as const;
export type MovePhase = (typeof MOVE_PHASES)[number];
export const TERMINAL_PHASES: readonly MovePhase[] = ['done', 'failed', 'cancelled'];
/** From cutover on the tenant may already be served by the target: no going back. */
export const CANCELLABLE_PHASES: readonly MovePhase[] = ['queued', 'provisioning', 'copying', 'catching_up', 'verifying'];

export interface PhaseRecord {
  phase: MovePhase;
  startedAt: string;
  finishedAt?: string;
}

/** What verification found per table: counts and checksums on both sides, taken on the same snapshot. */
export interface TableCheck {
  table: string;
  sourceRows: number;
  targetRows: number;
  sourceChecksum: string;
  targetChecksum: string;
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
export interface TenantMoveView {
  id: string;
  tenantId: string;
  fromTier: Tier;
  fromPoolId: string;
  toTier: Tier;
  toPoolId: string;
  phase: MovePhase;
  createdAt: Date;
  requestedBy: string;
  rowsCopied: number;
  rowsTotal: number;
  lagRows: number;
  pauseMs: number | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  error: string | null;
  cancelRequested: boolean;
  phases: PhaseRecord[];
  checks: TableCheck[];
  sourceDropAfter: Date | null;
  sourceDroppedAt: Date | null;
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
