import { Inject, Injectable, Optional } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { DutyCycle, LOCK_NOT_AVAILABLE, STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { LeasedExecutor, LeaseKeeper, LeaseLost } from '#strata/leases';
import {
  AUDIT_LOG,
  CONTROL_DATA_SOURCE,
  PoolEntity,
  TENANT_CHANGE_PUBLISHER,
  TenantEntity,
  TenantRegistry,
  type AuditTrail,
  type TenantChangePublisher,
} from '#strata/control-plane';
import {
  dataAddressOf,
  OwnerConnections,
  PlacementWarmer,
  placementOf,
  WARM_CONNECTIONS,
  SiloDataSourceCache,
  siloLeaseKey,
  TENANT_SCHEMA_VERSION,
  TierDrivers,
  type TenantHome,
} from '#strata/tenancy/platform';
import { HomeCopier } from './home-copier';
import { TenantMovesRepository } from './tenant-moves.repository';
import { CANCELLABLE_PHASES, type MovePhase, type TenantMoveRecord } from './tenant-move.types';

/** Points an executor passes; tests stop it at each one to prove a move resumes from there. */
export type MoveStep =
  | 'provisioning'
  | 'copying'
  | 'catching_up'
  | 'verifying'
  | 'cutover:before-lock'
  | 'cutover:retired'
  | 'cutover:flipped';

/** Thrown by a test hook: the executor drops the move on the spot, as if its process died (lease kept, nothing cleaned). */
export class ExecutorKilled extends Error {}

export interface MoveExecutorHooks {
  onStep?(step: MoveStep, move: TenantMoveRecord): void | Promise<void>;
}
export const MOVE_EXECUTOR_HOOKS = Symbol('MOVE_EXECUTOR_HOOKS');

class CancelRequested extends Error {}
/** Errors no retry can fix: the move fails and rolls back at once. */
class FatalMoveError extends Error {}

const POLL_MS = 500;
const MAX_ATTEMPTS = 3;
/** Catch-up stops when the log is this short; the rest is drained inside the fence. */
const CUTOVER_LAG = 200;
interface MoveContext {
  tenant: TenantEntity;
  from: TenantHome;
  to: TenantHome;
  copier: HomeCopier;
  /** Set once the target was announced to the instances and warmed here (announceTarget). */
  announced?: Promise<void>;
  /** Throws LeaseLost unless the database confirms this executor still holds the move. */
  confirmLease(): Promise<void>;
}

/**
 * Runs tenant moves. Every API and worker process has one (MOVES_EXECUTOR, on by default): it
 * claims an open move with a lease in control.tenant_moves, renews it while it works, and runs the
 * move's phases from wherever the row says it stands. A process that dies leaves its lease to run
 * out; the next executor to claim the move resumes it — each phase is safe to run again — so a
 * move needs no particular process, and `npm start` alone (no Redis, no worker) runs moves too.
 */
@Injectable()
export class MoveExecutor extends LeasedExecutor {
  constructor(
    private readonly moves: TenantMovesRepository,
    private readonly drivers: TierDrivers,
    private readonly owners: OwnerConnections,
    private readonly registry: TenantRegistry,
    private readonly silos: SiloDataSourceCache,
    private readonly warmer: PlacementWarmer,
    @Inject(CONTROL_DATA_SOURCE) private readonly control: DataSource,
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    @Inject(TENANT_SCHEMA_VERSION) private readonly requiredVersion: string,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
    @Optional() @Inject(TENANT_CHANGE_PUBLISHER) private readonly changes?: TenantChangePublisher,
    @Optional() @Inject(MOVE_EXECUTOR_HOOKS) private readonly hooks?: MoveExecutorHooks,
  ) {
    super('move executor', 'MoveExecutor', POLL_MS);
  }

  protected polls(): boolean {
    return this.config.movesExecutor;
  }

  /** Claims and runs open moves until none is left (tests and the CLI call it directly). */
  async drain(): Promise<void> {
    const exhausted = await this.poll.drain(() => this.moves.claim(this.owner, this.config.moveLeaseMs), (move) => this.execute(move));
    if (exhausted) await this.dropDueSources();
  }

  /** Runs one claimed move as far as it goes. */
  async execute(claimed: TenantMoveRecord): Promise<void> {
    let move = claimed;
    const lease = LeaseKeeper.start({ leaseMs: this.config.moveLeaseMs, renew: () => this.moves.renew(move.id, this.owner, this.config.moveLeaseMs) });
    let ctx: MoveContext | undefined;
    const assertLease = () => lease.assert();
    // Before every destructive step (the copier's too): confirmed in the database, not only in memory.
    const confirmLease = () => lease.confirm();
    try {
      ctx = await this.contextOf(move, confirmLease);
      move = await this.run(move, ctx, assertLease);
    } catch (err) {
      if (err instanceof ExecutorKilled || err instanceof LeaseLost) {
        this.logger.warn(`move ${move.id}: ${err instanceof LeaseLost ? 'lease lost' : 'executor stopped'}; another executor resumes it`);
        return;
      }
      await this.onFailure(move, ctx, err);
    } finally {
      lease.stop();
      await ctx?.copier.close();
    }
  }

  private async run(start: TenantMoveRecord, ctx: MoveContext, assertLease: () => void): Promise<TenantMoveRecord> {
    let move = start;
    const phaseIndex = (p: MovePhase) => ['queued', 'provisioning', 'copying', 'catching_up', 'verifying', 'cutover'].indexOf(p);
    const enter = async (phase: MovePhase) => {
      assertLease();
      if (move.phase === phase) return;
      const next = await this.moves.enterPhase(move.id, this.owner, phase);
      if (!next) {
        if (await this.moves.isCancelRequested(move.id)) throw new CancelRequested();
        throw new LeaseLost();
      }
      move = next;
    };
    const checkCancel = async () => {
      if (CANCELLABLE_PHASES.includes(move.phase) && (await this.moves.isCancelRequested(move.id))) throw new CancelRequested();
    };
    await checkCancel();

    if (phaseIndex(move.phase) <= phaseIndex('provisioning')) {
      await enter('provisioning');
      await this.step('provisioning', move);
      await this.provision(move, ctx);
      await checkCancel();
    }
    if (phaseIndex(move.phase) <= phaseIndex('copying')) {
      await enter('copying');
      await this.step('copying', move);
      const total = await ctx.copier.countSource();
      await this.moves.progress(move.id, this.owner, { rowsTotal: total, rowsCopied: 0 });
      let last = 0;
      await ctx.copier.copySnapshot(async (copied) => {
        assertLease();
        if (copied - last >= 5000) {
          last = copied;
          // Lag grows while the copy runs: show it, so an operator sees the catch-up coming.
          await this.moves.progress(move.id, this.owner, { rowsCopied: copied, lagRows: await ctx.copier.lag() });
          await checkCancel();
        }
      });
      await this.moves.progress(move.id, this.owner, { rowsCopied: Math.max(total, last), lagRows: await ctx.copier.lag() });
      await checkCancel();
    }
    if (phaseIndex(move.phase) <= phaseIndex('catching_up')) {
      await enter('catching_up');
      await this.step('catching_up', move);
      // Until the log is short enough for the fence: the cutover pause grows with what is left.
      // Writes that outpace the rounds for good keep the move here (visible as a steady lagRows);
      // cancel it, or move when the tenant is quieter.
      for (let round = 1; ; round++) {
        assertLease();
        const { lag } = await ctx.copier.catchUpRound();
        await this.moves.progress(move.id, this.owner, { lagRows: lag, checkpoint: { catchUpRounds: round } });
        if (lag <= CUTOVER_LAG) break;
        await checkCancel();
      }
      await checkCancel();
    }
    if (phaseIndex(move.phase) <= phaseIndex('verifying')) {
      await enter('verifying');
      await this.step('verifying', move);
      await ctx.copier.analyzeTarget();
      // The target is complete but for the last changes: instances warm to it while the checksums
      // run, so no warm competes with the fence for the CPU (see announceTarget).
      const announced = this.announceTarget(move, ctx);
      const checks = await ctx.copier.verify();
      await announced;
      await this.moves.progress(move.id, this.owner, { checkpoint: { checks }, lagRows: await ctx.copier.lag() });
      const bad = checks.filter((c) => c.sourceRows !== c.targetRows || c.sourceChecksum !== c.targetChecksum);
      if (bad.length) throw new FatalMoveError(`verification failed on ${bad.map((c) => `${c.table} (${c.sourceRows} vs ${c.targetRows} rows)`).join(', ')}`);
      await checkCancel();
    }
    await enter('cutover');
    move = await this.cutover(move, ctx, assertLease);
    return move;
  }

  private async provision(move: TenantMoveRecord, ctx: MoveContext): Promise<void> {
    const { tenant, to } = ctx;
    const fromPool = await this.pool(move.fromPoolId);
    const toPool = await this.pool(move.toPoolId);
    const has = this.drivers.of(tenant.tier).schemaVersionOf(tenant, fromPool);
    if (has !== this.requiredVersion) throw new FatalMoveError(`the tenant's home is at schema version ${has}, this release needs ${this.requiredVersion}: migrate it first (npm run migrate -- up --tenant ${tenant.slug})`);
    if (move.toTier === 'pool' && toPool.schemaVersion !== this.requiredVersion) {
      throw new FatalMoveError(`pool ${toPool.id} is at schema version ${toPool.schemaVersion}, this release needs ${this.requiredVersion}: migrate it first`);
    }
    // A home an earlier move left behind (or this move's own half-made one) is cleared, never
    // adopted — and never the home the tenant lives in now (a stalled executor waking up late).
    await ctx.confirmLease();
    await this.assertNotLive(move, to);
    await this.moves.supersedeRetainedSource(tenant.id, move.toPoolId, move.toSchema, move.toDatabase);
    const driver = this.drivers.of(move.toTier);
    await driver.drop(to, tenant.id);
    await driver.provision(to);
    // Fenced from the start: an instance still routed to this home by a placement from an earlier
    // move (the tenant lived here before) must fail closed, not be served half a copy.
    await ctx.copier.retireTarget();
    await ctx.copier.startCapture();
  }

  private async cutover(move: TenantMoveRecord, ctx: MoveContext, assertLease: () => void): Promise<TenantMoveRecord> {
    const { copier, tenant } = ctx;
    const fromEpoch = move.checkpoint.fromEpoch ?? tenant.placementEpoch;
    let pauseStarted: number | undefined;
    let pausedBeforeMs: number | null = null;
    let drained: number | undefined;
    const flippedAlready = await this.flipped(move, fromEpoch);
    if (!flippedAlready) pausedBeforeMs = await copier.sourceRetiredAgoMs();
    if (!flippedAlready && pausedBeforeMs === null) {
      // The tenant must still live where this move started: never retire a home it has since come back to.
      await this.assertStillAtSource(move, fromEpoch);
      // Shrink what is left for the fence. A cutover resumed here announces the target now (a
      // verification in this process already did).
      await Promise.all([copier.catchUpRound(), this.announceTarget(move, ctx)]);
      assertLease();
      await this.step('cutover:before-lock', move);
      pauseStarted = performance.now();
      ({ drained } = await copier.fencedDrain(this.config.moveCutoverLockTimeoutMs));
      await this.step('cutover:retired', move);
    }
    // Only now, with the source retired and drained, may the target serve (also on a resumed cutover);
    // units that hit either home meanwhile wait for the flip and follow it.
    if (!flippedAlready) await copier.reviveTarget();
    await this.flip(move, fromEpoch);
    // A resumed cutover counts the pause from when the earlier attempt retired the source.
    const pauseMs =
      pauseStarted !== undefined ? Math.round(performance.now() - pauseStarted) : pausedBeforeMs !== null ? pausedBeforeMs : undefined;
    // Recorded after the flip: units held by the fence wait for it, not for the bookkeeping.
    if (pauseMs !== undefined || drained !== undefined) {
      await this.moves.progress(move.id, this.owner, {
        ...(pauseMs !== undefined ? { pauseMs } : {}),
        ...(drained !== undefined ? { lagRows: 0, checkpoint: { drainedInFence: drained } } : {}),
      });
    }
    await this.step('cutover:flipped', move);
    const done = await this.moves.finish(move.id, this.owner, 'done', null, this.config.moveSourceRetentionMs);
    if (done) await this.recordFinished(done, null);
    // Housekeeping only; the move is done. Triggers left by a failure here are dropped with the source.
    await copier.stopCapture().catch((err: unknown) => this.logger.warn(`move ${move.id}: dropping capture triggers failed: ${(err as Error).message}`));
    await this.silos.evictTenant(tenant.id, siloLeaseKey(tenant.id, dataAddressOf(ctx.to))).catch(() => undefined);
    this.logger.log(`move ${move.id}: tenant ${tenant.id} now on ${move.toTier}/${move.toPoolId}${pauseMs !== undefined ? `, writes paused ${pauseMs} ms` : ''}`);
    return done ?? move;
  }

  /**
   * Opens the target's connections before the flip, so writes held by the fence do not also wait
   * for new connections after it (a new silo database has none): a move hint to every process that
   * serves the tenant (PlacementWarmer), then this process's own warm, best effort. Done once per
   * execution, at the start of `verifying` — after the target's ANALYZE, whose new statistics would
   * invalidate what the warmed backends cached, and ~0.3–1 s before the fence: announced right
   * before the fence (as until 2026-12-06), the instances' warms (a backend start and a touch of
   * every table, up to SILO_POOL_MAX connections each) were still running on the same cores when
   * the fence began, and a pool → silo cutover paused writes 56 ms where the other directions
   * paused 15–19 ms.
   */
  private announceTarget(move: TenantMoveRecord, ctx: MoveContext): Promise<void> {
    ctx.announced ??= (async () => {
      const { tenant } = ctx;
      await this.changes?.publishTenantMoving({
        tenantId: tenant.id,
        slug: tenant.slug,
        tier: move.toTier,
        poolId: move.toPoolId,
        schemaName: move.toSchema,
        databaseName: move.toDatabase,
      });
      await this.warmTarget(move, tenant);
    })();
    return ctx.announced;
  }

  /** Best effort: this process's own connections to the target (see announceTarget). */
  private async warmTarget(move: TenantMoveRecord, tenant: TenantEntity): Promise<void> {
    try {
      const target = { ...placementOf(tenant), tier: move.toTier, poolId: move.toPoolId, schemaName: move.toSchema, databaseName: move.toDatabase };
      await this.warmer.warm(target, WARM_CONNECTIONS);
    } catch (err) {
      this.logger.warn(`move ${move.id}: warming the target's connections failed: ${(err as Error).message}`);
    }
  }

  /** Refuses to touch `home` when it is where the tenant lives now. */
  private async assertNotLive(move: TenantMoveRecord, home: TenantHome): Promise<void> {
    const t = await this.control.getRepository(TenantEntity).findOneBy({ id: move.tenantId });
    if (t && t.poolId === home.poolId && t.schemaName === home.schema && t.databaseName === (move.toTier === 'silo' ? home.database : null)) {
      throw new FatalMoveError(`the target home is where tenant ${move.tenantId} lives now; refusing to clear it`);
    }
  }

  /** The tenant is still placed where the move started (same pool, home and epoch). */
  private async assertStillAtSource(move: TenantMoveRecord, fromEpoch: number): Promise<void> {
    const t = await this.control.getRepository(TenantEntity).findOneBy({ id: move.tenantId });
    const there = t && t.placementEpoch === fromEpoch && t.poolId === move.fromPoolId && t.schemaName === move.fromSchema && t.databaseName === move.fromDatabase;
    if (!there) throw new FatalMoveError(`tenant ${move.tenantId} is no longer where this move started (epoch ${fromEpoch}); the move is stale`);
  }

  /** Whether the control plane already shows the target placement (a cutover that flipped, then lost its executor). */
  private async flipped(move: TenantMoveRecord, fromEpoch: number): Promise<boolean> {
    const t = await this.control.getRepository(TenantEntity).findOneBy({ id: move.tenantId });
    return !!t && t.placementEpoch > fromEpoch && t.poolId === move.toPoolId && t.schemaName === move.toSchema && t.databaseName === move.toDatabase;
  }

  /** The placement flip: one row, conditional on the epoch the move started from, then every instance is told. */
  private async flip(move: TenantMoveRecord, fromEpoch: number): Promise<void> {
    const rows: unknown[] = await this.control.query(
      `UPDATE control.tenants
          SET tier = $2, pool_id = $3, schema_name = $4, database_name = $5, schema_version = $6,
              placement_epoch = placement_epoch + 1, updated_at = now()
        WHERE id = $1 AND placement_epoch = $7 RETURNING id`,
      [move.tenantId, move.toTier, move.toPoolId, move.toSchema, move.toDatabase, this.requiredVersion, fromEpoch],
    );
    if (!rows.length && !(await this.flipped(move, fromEpoch))) {
      throw new FatalMoveError(`tenant ${move.tenantId} changed placement under the move (epoch is no longer ${fromEpoch})`);
    }
    const tenant = await this.control.getRepository(TenantEntity).findOneByOrFail({ id: move.tenantId });
    this.registry.invalidateTenant(tenant);
    await this.changes?.publishTenantChanged(tenant);
  }

  private async onFailure(move: TenantMoveRecord, ctx: MoveContext | undefined, err: unknown): Promise<void> {
    const message = (err as Error)?.message ?? String(err);
    const current = (await this.moves.findById(move.id).catch(() => null)) ?? move;
    if (current.phase === 'cutover' && !(await this.cutoverUndoable(move, ctx, err))) {
      // Past the point of no return: a cutover is only ever finished, never undone. Back off, retry.
      this.logger.warn(`move ${move.id}: cutover attempt failed (${message}); retrying`);
      await this.moves.release(move.id, this.owner, 250, message).catch(() => undefined);
      return;
    }
    const cancelled = err instanceof CancelRequested;
    const fatal = cancelled || err instanceof FatalMoveError || current.attempts + 1 >= MAX_ATTEMPTS;
    if (!fatal) {
      this.logger.warn(`move ${move.id}: ${current.phase} failed (${message}); retrying`);
      await this.moves.release(move.id, this.owner, 500 * (current.attempts + 1), message).catch(() => undefined);
      return;
    }
    // Roll back: the tenant stays where it is; capture and the half-made target go — unless the
    // target is where the tenant lives now (then this move is stale and leaves everything alone).
    const targetLive = ctx ? await this.assertNotLive(move, ctx.to).then(() => false, () => true) : false;
    if (ctx && !targetLive) {
      await ctx.copier.stopCapture().catch((e: unknown) => this.logger.warn(`move ${move.id}: removing capture failed: ${(e as Error).message}`));
      await this.drivers
        .of(move.toTier)
        .drop(ctx.to, move.tenantId)
        .catch((e: unknown) => this.logger.warn(`move ${move.id}: dropping the target failed: ${(e as Error).message}`));
    }
    const finished = await this.moves.finish(move.id, this.owner, cancelled ? 'cancelled' : 'failed', cancelled ? null : message, 0);
    if (finished) await this.recordFinished(finished, cancelled ? null : message);
    if (cancelled) this.logger.log(`move ${move.id}: cancelled and rolled back`);
    else this.logger.error(`move ${move.id}: failed and rolled back: ${message}`);
  }

  /**
   * Whether a failed cutover attempt left nothing to finish, so the move may fail and roll back like
   * one in an earlier phase: the source is not retired by this move and the placement not flipped —
   * known for sure, not guessed (a source that cannot be asked counts as retired). The point of no
   * return is the fence's COMMIT, not the phase's start: a drain that can never be applied (a swap
   * of unique values on the target, a target that lost a table) retried without end before, the
   * move stuck in `cutover` and not cancellable. A fence lock not granted in time
   * (MOVE_CUTOVER_LOCK_TIMEOUT_MS: a long write unit of the tenant) is retried as before.
   */
  private async cutoverUndoable(move: TenantMoveRecord, ctx: MoveContext | undefined, err: unknown): Promise<boolean> {
    if (!ctx || (err as { code?: string })?.code === LOCK_NOT_AVAILABLE || err instanceof LeaseLost) return false;
    try {
      const fromEpoch = move.checkpoint.fromEpoch ?? ctx.tenant.placementEpoch;
      if (await this.flipped(move, fromEpoch)) return false;
      return (await ctx.copier.sourceRetiredAgoMs()) === null;
    } catch {
      return false;
    }
  }

  /**
   * Only the executor that finished the move (held the lease) records it, once. After the fact: the
   * move's outcome stands whether or not its entry could be written, so a failure is logged loudly.
   */
  private async recordFinished(move: TenantMoveRecord, error: string | null): Promise<void> {
    await this.audit
      .record({
        action: 'move.finished',
        tenantId: move.tenantId,
        actor: { type: 'system', id: this.owner },
        details: { moveId: move.id, outcome: move.phase, fromTier: move.fromTier, toTier: move.toTier, toPoolId: move.toPoolId, ...(error ? { error } : {}) },
      })
      .catch((err: unknown) => this.logger.error(`move ${move.id}: its audit entry (move.finished) was not written: ${(err as Error).message}`));
  }

  private async contextOf(move: TenantMoveRecord, confirmLease: () => Promise<void>): Promise<MoveContext> {
    const tenant = await this.control.getRepository(TenantEntity).findOneBy({ id: move.tenantId });
    if (!tenant) throw new FatalMoveError(`tenant ${move.tenantId} is gone`);
    const [fromPool, toPool] = await Promise.all([this.pool(move.fromPoolId), this.pool(move.toPoolId)]);
    const from = this.drivers.of(move.fromTier).homeOf({ schemaName: move.fromSchema, databaseName: move.fromDatabase }, fromPool);
    const to = this.drivers.of(move.toTier).homeOf({ schemaName: move.toSchema, databaseName: move.toDatabase }, toPool);
    const sameHome = from.host === to.host && from.port === to.port && from.database === to.database && from.schema === to.schema;
    if (sameHome) throw new FatalMoveError('source and target are the same home');
    const throttle = new DutyCycle(this.config.moveCopyRestRatio);
    return { tenant, from, to, confirmLease, copier: new HomeCopier(this.owners, from, to, tenant.id, move.id, confirmLease, throttle) };
  }

  private async pool(id: string): Promise<PoolEntity> {
    const pool = await this.control.getRepository(PoolEntity).findOneBy({ id });
    if (!pool) throw new FatalMoveError(`pool ${id} is not registered`);
    return pool;
  }

  private async step(step: MoveStep, move: TenantMoveRecord): Promise<void> {
    await this.hooks?.onStep?.(step, move);
  }

  /** Old homes whose retention ran out: dropped (or, on a shared home, the tenant's rows deleted). */
  private async dropDueSources(): Promise<void> {
    const due = await this.moves.dueSourceDrops().catch(() => []);
    for (const move of due) {
      if (this.poll.stopped || !(await this.moves.claimSourceDrop(move.id))) continue;
      try {
        const tenant = await this.control.getRepository(TenantEntity).findOneBy({ id: move.tenantId });
        const live = tenant && tenant.poolId === move.fromPoolId && tenant.schemaName === move.fromSchema && tenant.databaseName === move.fromDatabase;
        if (!live) {
          const pool = await this.pool(move.fromPoolId);
          const home = this.drivers.of(move.fromTier).homeOf({ schemaName: move.fromSchema, databaseName: move.fromDatabase }, pool);
          await this.drivers.of(move.fromTier).drop(home, move.tenantId);
        }
        await this.moves.markSourceDropped(move.id);
      } catch (err) {
        this.logger.warn(`move ${move.id}: dropping the old home failed (${(err as Error).message}); retried later`);
      }
    }
  }
}
