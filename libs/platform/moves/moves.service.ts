import { Inject, Injectable } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { AUDIT_LOG, CONTROL_DATA_SOURCE, PoolEntity, TenantEntity, type AuditTrail, type Tier } from '#strata/control-plane';
import { TENANT_SCHEMA_VERSION, TierDrivers, type TenantHome } from '#strata/tenancy/platform';
import { MoveExecutor } from './move.executor';
import { moveError, MoveErrorCode } from './moves.errors';
import { MoveInProgressError, TenantMovesRepository } from './tenant-moves.repository';
import { CANCELLABLE_PHASES, moveView, type TenantMoveView } from './tenant-move.types';

const sameHome = (a: TenantHome, b: TenantHome) => a.host === b.host && a.port === b.port && a.database === b.database && a.schema === b.schema;

/** What operators ask of moves (admin API and CLI): request, follow, cancel. The executor does the work. */
@Injectable()
export class MovesService {
  constructor(
    @Inject(CONTROL_DATA_SOURCE) private readonly db: DataSource,
    private readonly moves: TenantMovesRepository,
    private readonly drivers: TierDrivers,
    private readonly executor: MoveExecutor,
    @Inject(TENANT_SCHEMA_VERSION) private readonly requiredVersion: string,
    @Inject(AUDIT_LOG) private readonly audit: AuditTrail,
  ) {}

  async request(tenantId: string, target: { toTier: Tier; toPoolId?: string }, requestedBy: string): Promise<TenantMoveView> {
    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id: tenantId });
    if (!tenant || tenant.status === 'deleted') throw moveError(MoveErrorCode.tenantNotFound, 'tenant not found');
    if (tenant.status !== 'active') throw moveError(MoveErrorCode.tenantNotActive, `a ${tenant.status} tenant cannot move; activate it first`);
    const pools = this.db.getRepository(PoolEntity);
    const toPool = target.toPoolId ? await pools.findOneBy({ id: target.toPoolId }) : await pools.findOneBy({ kind: target.toTier, isDefault: true });
    if (!toPool) throw moveError(MoveErrorCode.poolNotFound, `no ${target.toTier} pool ${target.toPoolId ?? '(default)'} is registered`);
    if (toPool.kind !== target.toTier) {
      throw moveError(MoveErrorCode.poolKindMismatch, `pool ${toPool.id} hosts ${toPool.kind} tenants, not ${target.toTier}`);
    }
    const fromPool = await pools.findOneByOrFail({ id: tenant.poolId });
    const fromDriver = this.drivers.of(tenant.tier);
    const toDriver = this.drivers.of(target.toTier);
    const names = target.toTier === tenant.tier && toPool.id === tenant.poolId ? tenant : toDriver.placementFor(tenant.slug);
    const from = fromDriver.homeOf(tenant, fromPool);
    const to = toDriver.homeOf(names, toPool);
    if ((tenant.tier === target.toTier && tenant.poolId === toPool.id) || sameHome(from, to)) {
      throw moveError(MoveErrorCode.moveNoop, `the tenant already lives there (tier ${target.toTier}, pool ${toPool.id})`);
    }
    const has = fromDriver.schemaVersionOf(tenant, fromPool);
    const targetHas = target.toTier === 'pool' ? toPool.schemaVersion : this.requiredVersion;
    if (has !== this.requiredVersion || targetHas !== this.requiredVersion) {
      throw moveError(MoveErrorCode.tenantMigrating, `a fleet migration is under way (source at ${has}, target at ${targetHas}, release needs ${this.requiredVersion}); move after it`);
    }
    try {
      const move = await this.moves.insert({
        tenantId: tenant.id,
        fromTier: tenant.tier,
        fromPoolId: tenant.poolId,
        fromSchema: tenant.schemaName,
        fromDatabase: tenant.databaseName,
        toTier: target.toTier,
        toPoolId: toPool.id,
        toSchema: names.schemaName,
        toDatabase: names.databaseName,
        requestedBy,
        fromEpoch: tenant.placementEpoch,
      });
      await this.audit.record({
        action: 'move.requested',
        tenantId: tenant.id,
        actor: { type: 'operator', id: requestedBy },
        details: { moveId: move.id, fromTier: tenant.tier, fromPoolId: tenant.poolId, toTier: target.toTier, toPoolId: toPool.id },
      });
      this.executor.nudge();
      return moveView(move);
    } catch (err) {
      if (err instanceof MoveInProgressError) throw moveError(MoveErrorCode.moveInProgress, 'this tenant is already moving; cancel or wait for that move');
      throw err;
    }
  }

  async get(id: string): Promise<TenantMoveView> {
    const move = await this.moves.findById(id);
    if (!move) throw moveError(MoveErrorCode.moveNotFound, 'move not found');
    return moveView(move);
  }

  async listForTenant(tenantId: string): Promise<TenantMoveView[]> {
    const tenant = await this.db.getRepository(TenantEntity).findOneBy({ id: tenantId });
    if (!tenant || tenant.status === 'deleted') throw moveError(MoveErrorCode.tenantNotFound, 'tenant not found');
    return (await this.moves.listByTenant(tenantId)).map(moveView);
  }

  /** Asks the executor to roll the move back; the tenant stays on its source and the target is dropped. */
  async cancel(id: string, operator: string): Promise<TenantMoveView> {
    const asked = await this.moves.requestCancel(id);
    if (asked) {
      await this.audit.record({ action: 'move.cancel_requested', tenantId: asked.tenantId, actor: { type: 'operator', id: operator }, details: { moveId: id, phase: asked.phase } });
      this.executor.nudge();
      return moveView(asked);
    }
    const move = await this.moves.findById(id);
    if (!move) throw moveError(MoveErrorCode.moveNotFound, 'move not found');
    if (CANCELLABLE_PHASES.includes(move.phase)) return moveView(move);
    throw moveError(MoveErrorCode.moveNotCancellable, `a move in phase ${move.phase} can no longer be cancelled`);
  }
}
