import { Inject, Injectable, Logger } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { escapeIdentifier, escapeLiteral, type PoolClient } from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantRegistry } from '#strata/control-plane';
import { TenantContext } from './tenant.context';
import { PlacementResolver, TierDrivers } from './tiers/tier.drivers';
import type { TierDriver, TierLease } from './tiers/tier.driver';
import { TenantPgClient, type TenantReadScope } from './tenant-pg.client';
import { placementOf, type TenantPlacement } from './tenant.types';
import { FENCE_CHECK_SQL, FENCE_CHECK_STATEMENT, FENCE_LOCK_CLASS, isHomeGone, isRetiredHome } from './placement.fence';
import { ReadUnitTransactionError, RetiredHomeError, TenantMovingError, TenantUnavailableError, TransactionRolledBackError } from './tenancy.errors';

// CLS key of the open unit of work; private to this class so no one can hand domain code another manager.
const OPEN_MANAGER = Symbol('strata:open-tenant-manager');
// Set (to true) in the CLS context of an open read unit, so a write unit is not opened inside it.
const OPEN_READ = Symbol('strata:open-tenant-read');
const AFTER_COMMIT = Symbol('strata:after-commit');

/** What an open unit of work keeps in its (child) CLS context. */
interface UnitEntries {
  [OPEN_MANAGER]?: EntityManager;
  [OPEN_READ]?: true;
  [AFTER_COMMIT]?: Array<() => Promise<void> | void>;
}
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SCHEMA = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * The statements that enter a tenant: open the transaction, set search_path and app.tenant_id for
 * it only (is_local = true), and — with the placement fence — take the tenant's shared fence lock.
 * The fence's check follows as a statement of its own (FENCE_CHECK_SQL: a fresh READ COMMITTED
 * snapshot, after the lock was granted). Values are inlined because a multi-statement string
 * cannot bind parameters; both come from the registry and are checked against strict patterns
 * here, then quoted, so no request input can reach this string.
 */
export function tenantSetupSql(tenant: Pick<TenantPlacement, 'id' | 'schemaName'>, fence = true): string {
  const scope = tenantReadScope(tenant);
  const id = escapeLiteral(scope.tenantId);
  const enter = `BEGIN; SELECT set_config('search_path', ${escapeLiteral(scope.searchPath)}, true), set_config('app.tenant_id', ${id}, true)`;
  return fence ? `${enter}, pg_advisory_xact_lock_shared(${FENCE_LOCK_CLASS}, hashtext(${id}))` : enter;
}

// Read scopes by tenant id and schema: one object per placement, so TenantPgClient can keep the
// setup's wire bytes with it. Bounded; a placement that drops out is rebuilt on its next read.
const READ_SCOPES_MAX = 10_000;
const readScopes = new Map<string, TenantReadScope>();

/** The bound values of a read unit's per-statement setup; the same checks as tenantSetupSql. */
export function tenantReadScope(tenant: Pick<TenantPlacement, 'id' | 'schemaName'>): TenantReadScope {
  const key = `${tenant.id}\u0000${tenant.schemaName}`;
  const known = readScopes.get(key);
  if (known) return known;
  if (!UUID.test(tenant.id)) throw new Error(`refusing tenant id ${JSON.stringify(tenant.id)}: not a UUID`);
  if (!SCHEMA.test(tenant.schemaName)) throw new Error(`refusing schema ${JSON.stringify(tenant.schemaName)}`);
  const scope: TenantReadScope = Object.freeze({ searchPath: escapeIdentifier(tenant.schemaName), tenantId: tenant.id, schema: tenant.schemaName });
  if (readScopes.size >= READ_SCOPES_MAX) readScopes.delete(readScopes.keys().next().value as string);
  readScopes.set(key, scope);
  return scope;
}

// TypeORM keeps its transaction state in these fields; we open the transaction ourselves (in the
// same round trip as the tenant setup) and tell TypeORM so, exactly as startTransaction() would.
type OpenableQueryRunner = Omit<QueryRunner, 'isTransactionActive'> & {
  isTransactionActive: boolean;
  transactionDepth: number;
  releasePostgresConnection?: (err?: unknown) => Promise<void>;
};

/**
 * Gives a unit's connection back to the pool only when the backend is idle: one left in a
 * transaction (open or aborted) would carry a tenant's settings, or its failure, to the next unit of
 * any tenant. Such a connection is destroyed instead, and the pool opens a fresh one.
 */
async function releaseClean(qr: OpenableQueryRunner | QueryRunner, client: TenantPgClient | undefined): Promise<void> {
  const runner = qr as OpenableQueryRunner;
  if (client instanceof TenantPgClient && !client.idle && runner.releasePostgresConnection) {
    await runner.releasePostgresConnection(new Error(`connection left in transaction status ${client.transactionStatus}; destroyed`));
    return;
  }
  await qr.release();
}


/** qr.connect(), with pg-pool's acquire timeout answered as a 503 rather than a 500. */
async function acquire(qr: QueryRunner | OpenableQueryRunner): Promise<unknown> {
  try {
    return await (qr as QueryRunner).connect();
  } catch (err) {
    if (/timeout exceeded when trying to connect|Connection terminated due to connection timeout/i.test(String((err as Error)?.message))) {
      throw new TenantUnavailableError();
    }
    throw err;
  }
}


// How long a unit that found its home retired waits for the control plane to show the new one.
const MOVE_WAIT_MS = 5000;
// Short: the flip follows the retirement within milliseconds, and every poll is a write held up.
const MOVE_POLL_MS = 5;

/**
 * Hands domain code a tenant-scoped transaction. Reads the tenant from context (fails closed
 * without one), lets the tenant's tier driver pick the DataSource, enters the tenant with one pipelined
 * statement, and joins an already open unit of work instead of nesting a second connection.
 * A unit that lands on a home its tenant has moved out of (placement fence) is rolled back and run
 * once more on the new placement, transparently to the caller.
 */
@Injectable()
export class TenantConnectionManager {
  private readonly logger = new Logger('TenantConnectionManager');
  private readonly fence: boolean;
  private readonly prepared: boolean;

  constructor(
    private readonly context: TenantContext,
    private readonly cls: ClsService,
    private readonly drivers: TierDrivers,
    private readonly placements: PlacementResolver,
    private readonly registry: TenantRegistry,
    @Inject(STRATA_CONFIG) config: StrataConfig,
  ) {
    this.fence = config.placementFence;
    this.prepared = config.tenantSetupPrepared;
  }

  /** Runs `work` in one transaction on the current tenant's data; commits on success, rolls back on error. */
  async transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const unit = this.unit();
    const open = unit?.[OPEN_MANAGER];
    if (open) {
      if (unit[OPEN_READ]) {
        throw new Error('cannot open a tenant transaction inside tenantConnectionManager.read(): use transaction() for the whole unit');
      }
      return work(open);
    }
    const { tenant } = this.context.requireTenant('a tenant database transaction', 'tenant data');
    try {
      return await this.transactionOn(tenant, work);
    } catch (err) {
      // Rolled back on the old home: nothing of it was written. Once more where the tenant lives now.
      const moved = await this.movedAfter(tenant, err);
      return this.transactionOn(moved, work);
    }
  }

  /**
   * Runs `work` as a read-only unit on the current tenant's data, without BEGIN/COMMIT: each
   * statement goes out with the tenant's transaction-local setup under one Sync, so it runs in its
   * own implicit transaction (one round trip per statement, none for setup or commit). Under READ
   * COMMITTED that is what a transaction would give reads anyway: every statement sees its own
   * snapshot. Writes fail (the implicit transaction is read-only); so do `transaction()` and
   * `afterCommit()` inside it. Inside an open `transaction()` it joins that transaction instead.
   */
  async read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const open = this.openManager();
    if (open) return work(open);
    const { tenant } = this.context.requireTenant('a tenant database read', 'tenant data');
    try {
      return await this.readOn(tenant, work);
    } catch (err) {
      return this.readOn(await this.movedAfter(tenant, err), work);
    }
  }

  private async transactionOn<T>(tenant: TenantPlacement, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    // Built (and validated) before a connection is taken: a bad placement never touches one.
    const setup = tenantSetupSql(tenant, this.fence);
    const { driver, lease } = await this.enter(tenant);
    const afterCommit: Array<() => Promise<void> | void> = [];
    let result: T;
    try {
      result = await this.runEntered(lease.dataSource, tenant, setup, work, afterCommit);
    } finally {
      driver.leave(lease);
    }
    for (const callback of afterCommit) {
      try {
        await callback();
      } catch (err) {
        this.logger.error(`after-commit callback failed (the transaction is committed): ${String((err as Error)?.stack ?? err)}`);
      }
    }
    return result;
  }

  private async readOn<T>(tenant: TenantPlacement, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const scope = tenantReadScope(tenant);
    const { driver, lease } = await this.enter(tenant);
    try {
      const qr = lease.dataSource.createQueryRunner('master');
      let client: TenantPgClient | undefined;
      try {
        const connected: unknown = await acquire(qr);
        if (!(connected instanceof TenantPgClient)) {
          throw new Error('tenant DataSources must use TenantPgClient (createTenantDataSource sets it)');
        }
        client = connected;
        client.enterReadScope(scope);
        let result: T;
        try {
          const manager = qr.manager;
          result = await this.runInUnit({ [OPEN_MANAGER]: manager, [OPEN_READ]: true }, () => work(manager));
        } catch (err) {
          // The work may have wrapped or swallowed the fence's error; the client saw it either way.
          if (connected.retiredHomeSeen) throw new RetiredHomeError(tenant.id, tenant.schemaName);
          // TypeORM wraps the refusal in a QueryFailedError; the refusal itself says what to do.
          const cause = (err as { driverError?: unknown }).driverError;
          throw cause instanceof ReadUnitTransactionError ? cause : err;
        } finally {
          connected.leaveReadScope();
        }
        // A statement the work caught and ignored must not let old-home reads through either.
        if (connected.retiredHomeSeen) throw new RetiredHomeError(tenant.id, tenant.schemaName);
        return result;
      } finally {
        await releaseClean(qr, client);
      }
    } finally {
      driver.leave(lease);
    }
  }

  /** The fence check of a write unit, prepared per connection unless TENANT_SETUP_PREPARED is off (PgBouncer < 1.21). */
  private fenceCheck(tenant: TenantPlacement): { name?: string; text: string; values: string[] } {
    const values = [tenant.id, tenant.schemaName];
    return this.prepared ? { name: FENCE_CHECK_STATEMENT, text: FENCE_CHECK_SQL, values } : { text: FENCE_CHECK_SQL, values };
  }

  private async enter(tenant: TenantPlacement): Promise<{ driver: TierDriver; lease: TierLease }> {
    const driver = this.drivers.of(tenant.tier);
    const pool = await this.placements.poolOf(tenant);
    return { driver, lease: await driver.enter(tenant, pool) };
  }

  /**
   * Where the tenant lives now, when `err` says its unit landed on a home it left: a retired home
   * (wait for the flip), or a home already dropped after its retention (look once). Otherwise `err`.
   */
  private async movedAfter(tenant: TenantPlacement, err: unknown): Promise<TenantPlacement> {
    if (isRetiredHome(err)) return this.followMove(tenant);
    if (isHomeGone(err)) {
      this.registry.forgetTenantRecord(tenant);
      const record = await this.registry.findById(tenant.id);
      if (record && record.status === 'active' && record.placementEpoch > tenant.placementEpoch) {
        const moved = placementOf(record);
        this.context.followPlacement(moved);
        return moved;
      }
    }
    throw err;
  }

  /**
   * The unit found the tenant's home retired: its registry entry is stale. Reload the tenant from
   * the control plane (and drop this instance's cached answer) until it shows a newer placement —
   * the mover flips it right after retiring the home — then carry on with it in this context.
   */
  private async followMove(stale: TenantPlacement): Promise<TenantPlacement> {
    const deadline = Date.now() + MOVE_WAIT_MS;
    for (;;) {
      this.registry.forgetTenantRecord(stale);
      const record = await this.registry.findById(stale.id);
      if (record && record.status === 'active' && record.placementEpoch > stale.placementEpoch) {
        const moved = placementOf(record);
        this.context.followPlacement(moved);
        return moved;
      }
      if (Date.now() >= deadline) throw new TenantMovingError();
      await new Promise((r) => setTimeout(r, MOVE_POLL_MS));
    }
  }

  /** The EntityManager of the open unit of work; repositories use it. */
  get manager(): EntityManager {
    const open = this.openManager();
    if (!open) {
      this.context.require('a tenant repository');
      throw new Error('no open tenant transaction: call repositories inside tenantConnectionManager.transaction(() => …)');
    }
    return open;
  }

  /**
   * Runs `callback` once the open unit of work has committed and its connection is back in the
   * pool, in the same tenant context; never when it rolls back. For side effects that must not
   * happen for data that was never written (enqueueing a job about a new row, say). A callback
   * that fails is logged, not thrown: the data is committed and the caller must learn that.
   */
  afterCommit(callback: () => Promise<void> | void): void {
    const unit = this.unit();
    const open = unit?.[OPEN_MANAGER];
    const callbacks = unit?.[AFTER_COMMIT];
    if (open && unit[OPEN_READ]) {
      throw new Error('afterCommit() inside tenantConnectionManager.read(): a read unit commits nothing; use transaction()');
    }
    if (!open || !callbacks) {
      this.context.require('an after-commit callback');
      throw new Error('no open tenant transaction: call afterCommit() inside tenantConnectionManager.transaction(() => …)');
    }
    callbacks.push(callback);
  }

  private openManager(): EntityManager | undefined {
    return this.unit()?.[OPEN_MANAGER];
  }

  // The whole store in one lookup (ClsService's keyed get() reads the store again on every call).
  private unit(): UnitEntries | undefined {
    return this.cls.get() as UnitEntries | undefined;
  }

  /**
   * Runs `fn` in a child context holding the open unit: the caller's store copied (as
   * run({ ifNested: 'inherit' }) would) plus `entries`, so nested units join it and siblings don't see it.
   */
  private runInUnit<T>(entries: UnitEntries, fn: () => T): T {
    return this.cls.runWith({ ...this.cls.get(), ...entries }, fn);
  }

  private async runEntered<T>(
    ds: DataSource,
    tenant: TenantPlacement,
    setup: string,
    work: (m: EntityManager) => Promise<T>,
    afterCommit: Array<() => Promise<void> | void>,
  ): Promise<T> {
    const qr = ds.createQueryRunner('master') as unknown as OpenableQueryRunner;
    const client = (await acquire(qr)) as PoolClient;
    let broken: unknown;
    // Corked until the event loop turns: the setup and the unit's first statement leave in one
    // socket write (the bench measured separate writes at ~150 µs of CPU per request here).
    const stream = (client as unknown as { connection?: { stream?: { cork?(): void; uncork?(): void } } }).connection?.stream;
    let corked = false;
    try {
      // Not awaited: with pipelining the work's first statement follows on the same round trip.
      // If setup fails, the transaction is aborted and every later statement fails with it.
      stream?.cork?.();
      corked = true;
      setImmediate(() => {
        if (corked) stream?.uncork?.();
        corked = false;
      });
      const entered = client.query(setup);
      const checked = this.fence ? client.query(this.fenceCheck(tenant)) : undefined;
      // The first failure of the two (a retired home raises in the check); handled either way.
      const setupFailure = Promise.all([entered, checked]).then(
        () => undefined,
        (err: unknown) => err,
      );
      qr.isTransactionActive = true;
      qr.transactionDepth = 1;
      try {
        const result = await this.runInUnit({ [OPEN_MANAGER]: qr.manager, [AFTER_COMMIT]: afterCommit }, () => work(qr.manager));
        await entered;
        await checked;
        // COMMIT ourselves to read its command tag: a transaction in which a statement failed (and the
        // work caught it and went on) answers COMMIT with ROLLBACK. TypeORM's commitTransaction()
        // resolves either way, so the caller would be told its data is stored when none of it is.
        const committed = (await client.query('COMMIT')) as unknown as { command?: string };
        qr.isTransactionActive = false;
        qr.transactionDepth = 0;
        if (committed.command === 'ROLLBACK') throw new TransactionRolledBackError();
        return result;
      } catch (err) {
        try {
          if (qr.isTransactionActive) await qr.rollbackTransaction();
        } catch (rollbackErr) {
          broken = rollbackErr;
        }
        // The fence refused the home: whatever the work made of its aborted statements, the cause is the move.
        const failedSetup = await setupFailure;
        if (failedSetup && isRetiredHome(failedSetup)) throw new RetiredHomeError(tenant.id, tenant.schemaName);
        throw err;
      }
    } finally {
      // Never hand a corked connection back to the pool (a throw before the event loop turned).
      if (corked) stream?.uncork?.();
      corked = false;
      // A connection whose rollback failed may still hold the tenant's transaction: destroy it.
      if (broken && qr.releasePostgresConnection) await qr.releasePostgresConnection(broken);
      else await releaseClean(qr, client as unknown as TenantPgClient);
    }
  }
}
