import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { CONTROL_DATA_SOURCE } from '#strata/control-plane';
import { LeasedTable, msFromNow, rowsOf } from '#strata/leases';
import type { MovePhase, TenantMoveRecord } from './tenant-move.types';

const COLUMNS = `id, tenant_id, from_tier, from_pool_id, from_schema, from_database, to_tier, to_pool_id, to_schema, to_database,
  phase, cancel_requested, requested_by, rows_copied, rows_total, lag_rows, pause_ms, checkpoint, phases, error,
  lease_owner, lease_until, attempts, created_at, started_at, finished_at, source_drop_after, source_dropped_at`;
const OPEN = `phase NOT IN ('done', 'failed', 'cancelled')`;
const LEASED = new LeasedTable({ table: 'control.tenant_moves', key: 'id', open: OPEN, order: 'created_at', columns: COLUMNS });
const CLAIM = LEASED.claim({ set: ['started_at = coalesce(started_at, now())'] });
const RENEW = LEASED.renew();
const RELEASE = LEASED.release({ set: ['attempts = attempts + 1', `checkpoint = checkpoint || jsonb_build_object('lastError', $4::text)`] });

type Row = Record<string, unknown>;
const toRecord = (r: Row): TenantMoveRecord => ({
  id: r.id as string,
  tenantId: r.tenant_id as string,
  fromTier: r.from_tier as TenantMoveRecord['fromTier'],
  fromPoolId: r.from_pool_id as string,
  fromSchema: r.from_schema as string,
  fromDatabase: (r.from_database as string | null) ?? null,
  toTier: r.to_tier as TenantMoveRecord['toTier'],
  toPoolId: r.to_pool_id as string,
  toSchema: r.to_schema as string,
  toDatabase: (r.to_database as string | null) ?? null,
  phase: r.phase as MovePhase,
  cancelRequested: r.cancel_requested as boolean,
  requestedBy: r.requested_by as string,
  rowsCopied: Number(r.rows_copied),
  rowsTotal: Number(r.rows_total),
  lagRows: Number(r.lag_rows),
  pauseMs: r.pause_ms === null ? null : Number(r.pause_ms),
  checkpoint: (r.checkpoint as TenantMoveRecord['checkpoint']) ?? {},
  phases: (r.phases as TenantMoveRecord['phases']) ?? [],
  error: (r.error as string | null) ?? null,
  leaseOwner: (r.lease_owner as string | null) ?? null,
  leaseUntil: (r.lease_until as Date | null) ?? null,
  attempts: Number(r.attempts),
  createdAt: r.created_at as Date,
  startedAt: (r.started_at as Date | null) ?? null,
  finishedAt: (r.finished_at as Date | null) ?? null,
  sourceDropAfter: (r.source_drop_after as Date | null) ?? null,
  sourceDroppedAt: (r.source_dropped_at as Date | null) ?? null,
});

export interface NewMove {
  tenantId: string;
  fromTier: string;
  fromPoolId: string;
  fromSchema: string;
  fromDatabase: string | null;
  toTier: string;
  toPoolId: string;
  toSchema: string;
  toDatabase: string | null;
  requestedBy: string;
  fromEpoch: number;
}

export class MoveInProgressError extends Error {}

/**
 * control.tenant_moves, one query per method. Every change an executor makes is conditional on it
 * still holding the lease (`lease_owner`), so a process that lost its claim changes nothing.
 */
@Injectable()
export class TenantMovesRepository {
  constructor(@Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource) {}

  async insert(m: NewMove): Promise<TenantMoveRecord> {
    try {
      const rows = rowsOf(await this.db.query(
        `INSERT INTO control.tenant_moves (tenant_id, from_tier, from_pool_id, from_schema, from_database, to_tier, to_pool_id, to_schema, to_database, requested_by, checkpoint)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, jsonb_build_object('fromEpoch', $11::int)) RETURNING ${COLUMNS}`,
        [m.tenantId, m.fromTier, m.fromPoolId, m.fromSchema, m.fromDatabase, m.toTier, m.toPoolId, m.toSchema, m.toDatabase, m.requestedBy, m.fromEpoch],
      ));
      return toRecord(rows[0]);
    } catch (err) {
      if ((err as { driverError?: { code?: string } }).driverError?.code === '23505') throw new MoveInProgressError();
      throw err;
    }
  }

  async findById(id: string): Promise<TenantMoveRecord | null> {
    const rows = rowsOf(await this.db.query(`SELECT ${COLUMNS} FROM control.tenant_moves WHERE id = $1`, [id]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async listByTenant(tenantId: string, limit = 50): Promise<TenantMoveRecord[]> {
    const rows = rowsOf(await this.db.query(
      `SELECT ${COLUMNS} FROM control.tenant_moves WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [tenantId, limit],
    ));
    return rows.map(toRecord);
  }

  /** Claims the oldest open move nobody holds (or whose holder's lease ran out). */
  async claim(owner: string, leaseMs: number): Promise<TenantMoveRecord | null> {
    const rows = rowsOf(await this.db.query(CLAIM, [owner, leaseMs]));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Extends the lease; false when another process has taken the move over. */
  async renew(id: string, owner: string, leaseMs: number): Promise<boolean> {
    const rows = rowsOf(await this.db.query(RENEW, [id, owner, leaseMs]));
    return rows.length === 1;
  }

  /** Gives the move back, claimable again after `delayMs` (a retry's back-off). */
  async release(id: string, owner: string, delayMs: number, error: string | null): Promise<void> {
    await this.db.query(RELEASE, [id, owner, delayMs, error]);
  }

  /**
   * Moves to `phase` and records when it began (closing the previous phase's record). Entering
   * cutover also requires that no cancel was asked for: cancel and cutover are decided by one row.
   */
  async enterPhase(id: string, owner: string, phase: MovePhase): Promise<TenantMoveRecord | null> {
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_moves
          SET phase = $3,
              phases = (SELECT coalesce(jsonb_agg(CASE WHEN p ? 'finishedAt' THEN p ELSE p || jsonb_build_object('finishedAt', now()) END), '[]'::jsonb)
                          FROM jsonb_array_elements(phases) p)
                       || jsonb_build_array(jsonb_build_object('phase', $3::text, 'startedAt', now()))
        WHERE ${LEASED.held} AND phase <> $3
          AND NOT ($3 = 'cutover' AND cancel_requested)
        RETURNING ${COLUMNS}`,
      [id, owner, phase],
    ));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async progress(
    id: string,
    owner: string,
    figures: { rowsCopied?: number; rowsTotal?: number; lagRows?: number; pauseMs?: number; checkpoint?: Record<string, unknown> },
  ): Promise<void> {
    await this.db.query(
      `UPDATE control.tenant_moves
          SET rows_copied = coalesce($3, rows_copied), rows_total = coalesce($4, rows_total), lag_rows = coalesce($5, lag_rows),
              pause_ms = coalesce($6, pause_ms), checkpoint = checkpoint || coalesce($7::jsonb, '{}'::jsonb)
        WHERE id = $1 AND lease_owner = $2`,
      [id, owner, figures.rowsCopied ?? null, figures.rowsTotal ?? null, figures.lagRows ?? null, figures.pauseMs ?? null, figures.checkpoint ? JSON.stringify(figures.checkpoint) : null],
    );
  }

  /** Ends the move (done, failed, cancelled) and lets go of it. */
  async finish(id: string, owner: string, phase: 'done' | 'failed' | 'cancelled', error: string | null, retentionMs: number): Promise<TenantMoveRecord | null> {
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_moves
          SET phase = $3, error = $4, finished_at = now(), ${LEASED.letGo},
              phases = (SELECT coalesce(jsonb_agg(CASE WHEN p ? 'finishedAt' THEN p ELSE p || jsonb_build_object('finishedAt', now()) END), '[]'::jsonb)
                          FROM jsonb_array_elements(phases) p)
                       || jsonb_build_array(jsonb_build_object('phase', $3::text, 'startedAt', now(), 'finishedAt', now())),
              source_drop_after = CASE WHEN $3 = 'done' THEN ${msFromNow('$5')} END
        WHERE ${LEASED.held}
        RETURNING ${COLUMNS}`,
      [id, owner, phase, error, retentionMs],
    ));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  /** Asks an open, not yet cut-over move to roll back; null when it is past that point (or gone). */
  async requestCancel(id: string): Promise<TenantMoveRecord | null> {
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_moves SET cancel_requested = true
        WHERE id = $1 AND phase IN ('queued', 'provisioning', 'copying', 'catching_up', 'verifying') RETURNING ${COLUMNS}`,
      [id],
    ));
    return rows[0] ? toRecord(rows[0]) : null;
  }

  async isCancelRequested(id: string): Promise<boolean> {
    const rows = rowsOf(await this.db.query(`SELECT cancel_requested AS c FROM control.tenant_moves WHERE id = $1`, [id]));
    return (rows[0]?.c as boolean | undefined) ?? false;
  }

  /** Finished moves whose retained source home is due to be dropped. */
  async dueSourceDrops(limit = 5): Promise<TenantMoveRecord[]> {
    const rows = rowsOf(await this.db.query(
      `SELECT ${COLUMNS} FROM control.tenant_moves
        WHERE phase = 'done' AND source_dropped_at IS NULL AND source_drop_after <= now()
        ORDER BY source_drop_after LIMIT $1`,
      [limit],
    ));
    return rows.map(toRecord);
  }

  /** Claims one due source drop so two processes never drop the same home at once. */
  async claimSourceDrop(id: string): Promise<boolean> {
    const rows = rowsOf(await this.db.query(
      `UPDATE control.tenant_moves SET source_drop_after = now() + interval '10 minutes'
        WHERE id = $1 AND source_dropped_at IS NULL AND source_drop_after <= now() RETURNING id`,
      [id],
    ));
    return rows.length === 1;
  }

  async markSourceDropped(id: string): Promise<void> {
    await this.db.query(`UPDATE control.tenant_moves SET source_dropped_at = now() WHERE id = $1`, [id]);
  }

  /**
   * A new move into a home an earlier move of the tenant left behind (retained, not dropped yet)
   * clears that home itself: the earlier move must never drop it later, when it is live again.
   */
  async supersedeRetainedSource(tenantId: string, poolId: string, schema: string, database: string | null): Promise<void> {
    await this.db.query(
      `UPDATE control.tenant_moves SET source_dropped_at = now()
        WHERE tenant_id = $1 AND phase = 'done' AND source_dropped_at IS NULL
          AND from_pool_id = $2 AND from_schema = $3 AND from_database IS NOT DISTINCT FROM $4`,
      [tenantId, poolId, schema, database],
    );
  }
}
