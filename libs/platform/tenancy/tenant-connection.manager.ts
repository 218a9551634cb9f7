import { Inject, Injectable, Logger, Optional } from '@nestjs/common';
import { ClsService } from 'nestjs-cls';
import { escapeIdentifier, escapeLiteral, type PoolClient } from 'pg';
import type { DataSource, EntityManager, QueryRunner } from 'typeorm';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantRegistry, type TenantEntity } from '#strata/control-plane';
import { TenantContext } from './tenant.context';
import { PlacementResolver, TierDrivers } from './tiers/tier.drivers';
import { dataAddressOf, type TierDriver, type TierLease } from './tiers/tier.driver';
import { TenantPgClient, type ReadBudgets, type TenantReadScope } from './tenant-pg.client';
import { placementOf, type TenantPlacement } from './tenant.types';
import { FENCE_CHECK_SQL, FENCE_CHECK_STATEMENT, FENCE_LOCK_CLASS, isHomeGone, isRetiredHome } from './placement.fence';
import {
  ClientClosedRequestError,
  HomeConnectionLostError,
  PreparedFenceCheckMismatch,
  ReadUnitTransactionError,
  RetiredHomeError,
  TenantBusyError,
  TenantMovingError,
  TenantUnavailableError,
  TransactionRolledBackError,
} from './tenancy.errors';
import { HomeCircuits } from './home.circuit';
import { faultReason, isHomeBusy, isHomeUnreachable } from '#strata/common';
import { cancelBackend, type UnitCancellation } from './backend.cancel';
import { serverKey } from './tenant-data-source.factory';
import { isPreparedStatementMismatch, preparedStatementRecoveries } from './prepared-statements';

// CLS key of the open unit of work; private to this class so no one can hand domain code another manager.
const OPEN_MANAGER = Symbol('strata:open-tenant-manager');
// Set (to true) in the CLS context of an open read unit, so a write unit is not opened inside it.
const OPEN_READ = Symbol('strata:open-tenant-read');
const AFTER_COMMIT = Symbol('strata:after-commit');
const BEFORE_COMMIT = Symbol('strata:before-commit');

/** 503 tenant_unavailable from a unit that hit the fault itself; movedAfter() looks once for a move behind it. */
class HomeFaultError extends TenantUnavailableError {
  constructor() {
    super("this tenant's database cannot be reached right now; retry shortly");
  }
}

/** A statement a unit runs last, just before its COMMIT, on the unit's own connection. */
export type BeforeCommitHook = (manager: EntityManager) => Promise<void>;

/**
 * A statement sent in the same round trip as the unit's COMMIT (see commitWith()). It must signal
 * a refusal by raising, not by its answer: its answer is read only after the COMMIT was sent.
 */
export interface CommitStatement {
  sql: string;
  params?: unknown[];
  /** The unit's error when this statement fails (e.g. a quota refusal's SQLSTATE); undefined: the driver's. */
  failure?(err: unknown): Error | undefined;
  /** The statement's rows, once the unit has committed (before its after-commit callbacks run). */
  committed?(rows: Array<Record<string, unknown>>): void;
}
/** Called once, after the work and the before-commit hooks: the statements to send with the COMMIT. */
export type CommitStatements = () => CommitStatement[];
const COMMIT_WITH = Symbol('strata:commit-with');

/** What an open unit of work keeps in its (child) CLS context. */
interface UnitEntries {
  [OPEN_MANAGER]?: EntityManager;
  [OPEN_READ]?: true;
  [AFTER_COMMIT]?: Array<() => Promise<void> | void>;
  [BEFORE_COMMIT]?: BeforeCommitHook[];
  [COMMIT_WITH]?: CommitStatements[];
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
export function tenantSetupSql(tenant: Pick<TenantPlacement, 'id' | 'schemaName'>, fence = true, budgets?: UnitBudgets): string {
  const scope = tenantReadScope(tenant);
  const id = escapeLiteral(scope.tenantId);
  let enter = `BEGIN; SELECT set_config('search_path', ${escapeLiteral(scope.searchPath)}, true), set_config('app.tenant_id', ${id}, true)`;
  // Before the fence lock: the lock wait itself is bounded by lock_timeout.
  const budget = budgets ? budgetSql(budgets) : '';
  if (budget) enter += `, ${budget}`;
  return fence ? `${enter}, pg_advisory_xact_lock_shared(${FENCE_LOCK_CLASS}, hashtext(${id}))` : enter;
}

/**
 * How long one unit of work may wait on a lock and run one statement (DATA_LOCK_TIMEOUT_MS,
 * DATA_STATEMENT_TIMEOUT_MS), and how long a write unit may sit idle inside its open transaction
 * (DATA_IDLE_IN_TRANSACTION_TIMEOUT_MS: the server ends such a session, freeing its locks and its
 * connection), set for its transaction only, so a pooled connection (or PgBouncer's server
 * connection) carries nothing of it to the next unit. 0 (or absent) leaves the role's default.
 */
export interface UnitBudgets {
  statementTimeoutMs: number;
  lockTimeoutMs: number;
  idleInTransactionTimeoutMs?: number;
}

/**
 * Where a write unit's budgets come from when they depend on the tenant's plan (libs/platform/capacity
 * provides it). Called once per write unit, synchronously: it must answer from memory. No provider,
 * or `undefined`: the instance's DATA_* budgets.
 */
export const UNIT_BUDGET_POLICY = Symbol('UNIT_BUDGET_POLICY');
export interface UnitBudgetPolicy {
  writeBudgetsOf(plan: string | undefined): UnitBudgets | undefined;
  /**
   * A read unit's statement and lock budgets, only when they differ from the instance's (undefined
   * otherwise): each differing plan costs every connection one more prepared setup.
   */
  readBudgetsOf(plan: string | undefined): ReadBudgets | undefined;
}

function budgetSql(budgets: UnitBudgets): string {
  const ms = (n: number) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`refusing unit budget ${n}: not a non-negative integer of milliseconds`);
    return `'${n}'`;
  };
  const parts: string[] = [];
  if (budgets.statementTimeoutMs > 0) parts.push(`set_config('statement_timeout', ${ms(budgets.statementTimeoutMs)}, true)`);
  if (budgets.lockTimeoutMs > 0) parts.push(`set_config('lock_timeout', ${ms(budgets.lockTimeoutMs)}, true)`);
  const idle = budgets.idleInTransactionTimeoutMs ?? 0;
  if (idle > 0) parts.push(`set_config('idle_in_transaction_session_timeout', ${ms(idle)}, true)`);
  return parts.join(', ');
}

// Read scopes by tenant id and schema: one object per placement, so TenantPgClient can keep the
// setup's wire bytes with it. Bounded; a placement that drops out is rebuilt on its next read.
const READ_SCOPES_MAX = 10_000;
const readScopes = new Map<string, TenantReadScope>();

/**
 * The bound values of a read unit's per-statement setup; the same checks as tenantSetupSql.
 * `budgets`: a plan's own statement and lock budgets (UnitBudgetPolicy.readBudgetsOf), when they
 * differ from the instance's.
 */
export function tenantReadScope(tenant: Pick<TenantPlacement, 'id' | 'schemaName'>, budgets?: ReadBudgets): TenantReadScope {
  const key = budgets
    ? `${tenant.id}\u0000${tenant.schemaName}\u0000${budgets.statementTimeoutMs}\u0000${budgets.lockTimeoutMs}`
    : `${tenant.id}\u0000${tenant.schemaName}`;
  const known = readScopes.get(key);
  // The budgets object too: the client finds the setup of a scope's budgets by that object.
  if (known && known.budgets === budgets) return known;
  if (!UUID.test(tenant.id)) throw new Error(`refusing tenant id ${JSON.stringify(tenant.id)}: not a UUID`);
  if (!SCHEMA.test(tenant.schemaName)) throw new Error(`refusing schema ${JSON.stringify(tenant.schemaName)}`);
  const scope: TenantReadScope = Object.freeze({
    searchPath: escapeIdentifier(tenant.schemaName),
    tenantId: tenant.id,
    schema: tenant.schemaName,
    ...(budgets ? { budgets } : {}),
  });
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
async function releaseClean(qr: OpenableQueryRunner | QueryRunner, client: TenantPgClient | undefined, cancelSent = false): Promise<void> {
  const runner = qr as OpenableQueryRunner;
  if (cancelSent && runner.releasePostgresConnection) {
    // The cancel request travels on its own connection and may land after the unit ended.
    await runner.releasePostgresConnection(new Error('a cancel request was sent to this backend; destroyed'));
    return;
  }
  if (client instanceof TenantPgClient && !client.idle && runner.releasePostgresConnection) {
    await runner.releasePostgresConnection(new Error(`connection left in transaction status ${client.transactionStatus}; destroyed`));
    return;
  }
  await qr.release();
}


/**
 * True when TypeORM let go of the unit's QueryRunner itself (its connection emitted 'error') while
 * the unit still ran: only the unit's own finally releases it otherwise.
 */
function lostConnection(qr: QueryRunner | OpenableQueryRunner, err: unknown): boolean {
  // The query runner's own statements and EntityManager.query() name it differently.
  return (qr as QueryRunner).isReleased && RELEASED_RUNNER_ERRORS.has((err as Error)?.name);
}
const RELEASED_RUNNER_ERRORS = new Set(['QueryRunnerAlreadyReleasedError', 'QueryRunnerProviderAlreadyReleasedError']);

/**
 * qr.connect(), with pg-pool's acquire timeout answered as a 503 rather than a 500. A client that
 * left while the unit waited for a connection gets it released at once and the unit refused: the
 * wait itself is not abandoned, because a QueryRunner released before its connect() settles is
 * marked released and would never hand the connection back (a leak per abandoned request).
 */
async function acquire(qr: QueryRunner | OpenableQueryRunner, cancellation?: UnitCancellation): Promise<unknown> {
  let connected: unknown;
  try {
    connected = await (qr as QueryRunner).connect();
  } catch (err) {
    // pg-pool's wait for a free connection ran out (a full pool, not a dead server: no circuit).
    if (/timeout exceeded when trying to connect/i.test(String((err as Error)?.message))) throw new TenantUnavailableError();
    throw err;
  }
  if (cancellation?.cancelled) {
    await (qr as QueryRunner).release();
    throw new ClientClosedRequestError();
  }
  return connected;
}

/**
 * While a unit holds `client`, a client of the request that leaves cancels the backend's statement
 * on the server (a lock wait ends at once instead of committing after the client gave up). Returns
 * whether a cancel was sent: such a connection must be destroyed, not pooled.
 */
function cancelOnLeave(client: unknown, cancellation: UnitCancellation | undefined): () => boolean {
  if (!cancellation) return () => false;
  let sent = false;
  const stop = cancellation.onCancel(() => {
    sent = true;
    void cancelBackend(client as Parameters<typeof cancelBackend>[0]);
  });
  return () => {
    stop();
    return sent;
  };
}

/** SQLSTATE idle_in_transaction_session_timeout: the server ended a session left idle inside its transaction. */
const IDLE_IN_TRANSACTION_TIMEOUT = '25P03';

/** The SQLSTATE of a pg error, or of the driver error TypeORM wrapped. */
function sqlState(err: unknown): string | undefined {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | null | undefined;
  const code = e?.driverError?.code ?? e?.code;
  return typeof code === 'string' ? code : undefined;
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
  private readonly budgets: UnitBudgets;
  /** Units that found the tenant's home retired, by tenant and epoch: one control-plane poll for all of them. */
  private readonly awaitingFlip = new Map<string, Promise<TenantEntity>>();

  constructor(
    private readonly context: TenantContext,
    private readonly cls: ClsService,
    private readonly drivers: TierDrivers,
    private readonly placements: PlacementResolver,
    private readonly registry: TenantRegistry,
    private readonly circuits: HomeCircuits,
    @Inject(STRATA_CONFIG) config: StrataConfig,
    @Optional() @Inject(UNIT_BUDGET_POLICY) private readonly budgetPolicy?: UnitBudgetPolicy,
  ) {
    this.fence = config.placementFence;
    this.prepared = config.tenantSetupPrepared;
    this.budgets = {
      statementTimeoutMs: config.dataStatementTimeoutMs,
      lockTimeoutMs: config.dataLockTimeoutMs,
      idleInTransactionTimeoutMs: config.dataIdleInTransactionTimeoutMs ?? 0,
    };
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
      return await this.onHome(tenant, (at, cancellation) => this.transactionPrepared(at, work, cancellation));
    } catch (err) {
      // Rolled back on the old home: nothing of it was written. Once more where the tenant lives now.
      const moved = await this.movedAfter(tenant, err);
      return this.onHome(moved, (at, cancellation) => this.transactionPrepared(at, work, cancellation));
    }
  }

  /**
   * transactionOn, again when the server connection disagreed about the fence check's prepared
   * statement (a pooler without prepared-statement support, prepared-statements.ts): prepared as the
   * server's answer said, then unprepared. The check failed right after BEGIN, so the transaction was
   * aborted before any of the work's statements ran and nothing of it was committed — the same reason
   * a retired home's unit may run again.
   */
  private async transactionPrepared<T>(tenant: TenantPlacement, work: (manager: EntityManager) => Promise<T>, cancellation?: UnitCancellation): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.transactionOn(tenant, work, cancellation, this.prepared && attempt < 3);
      } catch (err) {
        if (!(err instanceof PreparedFenceCheckMismatch) || attempt >= 3) throw err;
        preparedStatementRecoveries.writes++;
      }
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
      return await this.onHome(tenant, (at, cancellation) => this.readOn(at, work, cancellation));
    } catch (err) {
      const moved = await this.movedAfter(tenant, err);
      return this.onHome(moved, (at, cancellation) => this.readOn(at, work, cancellation));
    }
  }

  /**
   * Runs one unit on `tenant`'s home and turns the home's faults into answers: a server that cannot
   * be reached opens the home's circuit (home.circuit.ts) and answers 503 tenant_unavailable, fast,
   * until a trial unit gets through; a lock or statement that outlasted the unit's budget answers
   * 503 tenant_busy; a unit whose client left answers 499. Closed circuits cost one property read.
   */
  private async onHome<T>(tenant: TenantPlacement, run: (at: TenantPlacement, cancellation?: UnitCancellation) => Promise<T>): Promise<T> {
    const cancellation = this.context.cancellation;
    if (cancellation?.cancelled) throw new ClientClosedRequestError();
    let home: string | undefined;
    let admitted: 'closed' | 'trial' = 'closed';
    if (this.circuits.anyOpen) {
      home = await this.homeKey(tenant);
      admitted = this.circuits.admit(home);
    }
    let reported = false;
    try {
      const result = await run(tenant, cancellation);
      if (home) {
        this.circuits.succeeded(home);
        reported = true;
      }
      return result;
    } catch (err) {
      if (cancellation?.cancelled) throw new ClientClosedRequestError();
      if (isHomeUnreachable(err)) {
        home ??= await this.homeKey(tenant).catch(() => undefined);
        if (home) {
          this.circuits.failed(home, faultReason(err), admitted);
          reported = true;
        }
        throw new HomeFaultError();
      }
      if (isHomeBusy(err)) throw new TenantBusyError(sqlState(err) === '55P03' ? 'lock_timeout' : 'statement_timeout', this.context.current()?.requestId);
      throw err;
    } finally {
      if (home && admitted === 'trial' && !reported) this.circuits.abandoned(home);
    }
  }

  /** The address of the database a tenant's units run in (a pooler's, when there is one): the key of its home's circuit. */
  private async homeKey(tenant: TenantPlacement): Promise<string> {
    const pool = await this.placements.poolOf(tenant);
    return serverKey(dataAddressOf(this.drivers.of(tenant.tier).homeOf(tenant, pool)));
  }

  private async transactionOn<T>(
    tenant: TenantPlacement,
    work: (manager: EntityManager) => Promise<T>,
    cancellation?: UnitCancellation,
    prepared = this.prepared,
  ): Promise<T> {
    // Built (and validated) before a connection is taken: a bad placement never touches one.
    const setup = tenantSetupSql(tenant, this.fence, this.budgetPolicy?.writeBudgetsOf(tenant.plan) ?? this.budgets);
    const { driver, lease } = await this.enter(tenant);
    const afterCommit: Array<() => Promise<void> | void> = [];
    const beforeCommit: BeforeCommitHook[] = [];
    const commitWith: CommitStatements[] = [];
    let result: T;
    try {
      result = await this.runEntered(lease.dataSource, tenant, setup, work, { afterCommit, beforeCommit, commitWith }, cancellation, prepared);
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

  private async readOn<T>(tenant: TenantPlacement, work: (manager: EntityManager) => Promise<T>, cancellation?: UnitCancellation): Promise<T> {
    const scope = tenantReadScope(tenant, this.budgetPolicy?.readBudgetsOf(tenant.plan));
    const { driver, lease } = await this.enter(tenant);
    try {
      const qr = lease.dataSource.createQueryRunner('master');
      let client: TenantPgClient | undefined;
      let stopCancel = () => false;
      try {
        const connected: unknown = await acquire(qr, cancellation);
        if (!(connected instanceof TenantPgClient)) {
          throw new Error('tenant DataSources must use TenantPgClient (createTenantDataSource sets it)');
        }
        client = connected;
        stopCancel = cancelOnLeave(client, cancellation);
        client.enterReadScope(scope);
        let result: T;
        try {
          const manager = qr.manager;
          result = await this.runInUnit({ [OPEN_MANAGER]: manager, [OPEN_READ]: true }, () => work(manager));
        } catch (err) {
          // The work may have wrapped or swallowed the fence's error; the client saw it either way.
          if (connected.retiredHomeSeen) throw new RetiredHomeError(tenant.id, tenant.schemaName);
          if (lostConnection(qr, err)) throw new HomeConnectionLostError(err);
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
        await releaseClean(qr, client, stopCancel());
      }
    } finally {
      driver.leave(lease);
    }
  }

  /** The fence check of a write unit, prepared per connection unless TENANT_SETUP_PREPARED is off (or this unit runs again after a mismatch). */
  private fenceCheck(tenant: TenantPlacement, prepared: boolean): { name?: string; text: string; values: string[] } {
    const values = [tenant.id, tenant.schemaName];
    return prepared ? { name: FENCE_CHECK_STATEMENT, text: FENCE_CHECK_SQL, values } : { text: FENCE_CHECK_SQL, values };
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
    // A unit whose own connection failed (not one refused by an open circuit): its home may have
    // been dropped under it after a move (DROP DATABASE … WITH (FORCE) terminates the session).
    // Only units that began before the cutover reach an old home this way, and the cutover drained
    // every one that committed, so running it once on the new placement doubles nothing.
    if (isHomeGone(err) || err instanceof HomeFaultError) {
      this.registry.forgetTenantRecord(tenant);
      // The control plane may be down too (one server): then the unit's own error is the answer.
      const record = await this.registry.findById(tenant.id).catch(() => null);
      if (record && record.status === 'active' && record.placementEpoch > tenant.placementEpoch) {
        const moved = placementOf(record);
        this.context.followPlacement(moved);
        return moved;
      }
    }
    throw err;
  }

  /**
   * The unit found the tenant's home retired: its registry entry is stale. Wait for the control
   * plane to show a newer placement — the mover flips it right after retiring the home — then
   * carry on with it in this context.
   */
  private async followMove(stale: TenantPlacement): Promise<TenantPlacement> {
    const moved = placementOf(await this.newerRecord(stale));
    this.context.followPlacement(moved);
    return moved;
  }

  /**
   * The tenant's record once its epoch is past `stale`'s, re-read from the control plane every
   * MOVE_POLL_MS (this instance's cached answer dropped each time). One poll per tenant and epoch
   * for every unit waiting: a cutover's fence releases all of the tenant's held writes at once, and
   * each polling on its own multiplied the control plane's reads (and this process's CPU) by them
   * just when they all run again.
   */
  private newerRecord(stale: TenantPlacement): Promise<TenantEntity> {
    const key = `${stale.id}:${stale.placementEpoch}`;
    let waiting = this.awaitingFlip.get(key);
    if (!waiting) {
      waiting = (async () => {
        const deadline = Date.now() + MOVE_WAIT_MS;
        for (;;) {
          this.registry.forgetTenantRecord(stale);
          const record = await this.registry.findById(stale.id);
          if (record && record.status === 'active' && record.placementEpoch > stale.placementEpoch) return record;
          if (Date.now() >= deadline) throw new TenantMovingError();
          await new Promise((r) => setTimeout(r, MOVE_POLL_MS));
        }
      })().finally(() => this.awaitingFlip.delete(key));
      this.awaitingFlip.set(key, waiting);
    }
    return waiting;
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
    this.openWriteUnit('afterCommit', 'an after-commit callback')[AFTER_COMMIT]!.push(callback);
  }

  /**
   * Runs `hook` as the open write unit's last statement(s), after all of its work and just before
   * its COMMIT, on its connection; a hook that throws rolls the unit back and its error is the
   * unit's. For a row lock that should be held only for the commit, not for the whole unit
   * (the plans lib's quota counters): taken last, it is released by the COMMIT that follows.
   */
  beforeCommit(hook: BeforeCommitHook): void {
    this.openWriteUnit('beforeCommit', 'a before-commit hook')[BEFORE_COMMIT]!.push(hook);
  }

  /**
   * Sends `statements()` with the open write unit's COMMIT, in one round trip (one socket write):
   * for the last statements of a unit that need no answer before it commits (the plans lib's quota
   * counters, whose refusal raises). A failing statement aborts the transaction, so the COMMIT
   * behind it answers ROLLBACK: nothing of the unit is kept and the statement's failure is the
   * unit's error. Saves the round trip (and the write) a before-commit hook costs on every create.
   */
  commitWith(statements: CommitStatements): void {
    this.openWriteUnit('commitWith', 'a commit statement')[COMMIT_WITH]!.push(statements);
  }

  /** The open write unit (its hook lists are set), or the actionable error for `api()` called elsewhere. */
  private openWriteUnit(api: string, what: string): UnitEntries {
    const unit = this.unit();
    const open = unit?.[OPEN_MANAGER];
    if (open && unit[OPEN_READ]) {
      throw new Error(`${api}() inside tenantConnectionManager.read(): a read unit commits nothing; use transaction()`);
    }
    if (!open || !unit[AFTER_COMMIT] || !unit[BEFORE_COMMIT] || !unit[COMMIT_WITH]) {
      this.context.require(what);
      throw new Error(`no open tenant transaction: call ${api}() inside tenantConnectionManager.transaction(() => …)`);
    }
    return unit;
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
    hooks: { afterCommit: Array<() => Promise<void> | void>; beforeCommit: BeforeCommitHook[]; commitWith: CommitStatements[] },
    cancellation: UnitCancellation | undefined,
    prepared: boolean,
  ): Promise<T> {
    const qr = ds.createQueryRunner('master') as unknown as OpenableQueryRunner;
    const client = (await acquire(qr, cancellation)) as PoolClient;
    const stopCancel = cancelOnLeave(client, cancellation);
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
      const checked = this.fence ? client.query(this.fenceCheck(tenant, prepared)) : undefined;
      // The first failure of the two (a retired home raises in the check); handled either way.
      const setupFailure = Promise.all([entered, checked]).then(
        () => undefined,
        (err: unknown) => err,
      );
      qr.isTransactionActive = true;
      qr.transactionDepth = 1;
      try {
        const result = await this.runInUnit({ [OPEN_MANAGER]: qr.manager, [AFTER_COMMIT]: hooks.afterCommit, [BEFORE_COMMIT]: hooks.beforeCommit, [COMMIT_WITH]: hooks.commitWith }, () =>
          work(qr.manager),
        );
        await entered;
        await checked;
        // In order, after all of the work: a hook that throws rolls the whole unit back like the work would.
        for (const hook of hooks.beforeCommit) await hook(qr.manager);
        // Nobody will learn the outcome: roll back rather than commit work its client gave up on.
        if (cancellation?.cancelled) throw new ClientClosedRequestError();
        // COMMIT ourselves to read its command tag: a transaction in which a statement failed (and the
        // work caught it and went on) answers COMMIT with ROLLBACK. TypeORM's commitTransaction()
        // resolves either way, so the caller would be told its data is stored when none of it is.
        const finals = hooks.commitWith.flatMap((produce) => produce());
        if (finals.length === 0) {
          const committed = (await client.query('COMMIT')) as unknown as { command?: string };
          qr.isTransactionActive = false;
          qr.transactionDepth = 0;
          if (committed.command === 'ROLLBACK') throw new TransactionRolledBackError();
          return result;
        }
        // Pipelined, in one socket write: the statements in order, then the COMMIT. A statement
        // that fails aborts the transaction, and the COMMIT behind it answers ROLLBACK.
        let sent: Array<Promise<unknown>>;
        let commit: Promise<{ command?: string }>;
        stream?.cork?.();
        try {
          sent = finals.map((f) => client.query(f.sql, f.params as unknown[]));
          commit = client.query('COMMIT') as unknown as Promise<{ command?: string }>;
        } finally {
          // Never left corked, even if a send threw: the connection goes back to the pool.
          stream?.uncork?.();
        }
        const outcomes = await Promise.allSettled(sent);
        const committed = await commit;
        qr.isTransactionActive = false;
        qr.transactionDepth = 0;
        const failed = outcomes.findIndex((o) => o.status === 'rejected');
        if (failed >= 0) {
          const reason = (outcomes[failed] as PromiseRejectedResult).reason;
          throw finals[failed].failure?.(reason) ?? reason;
        }
        if (committed.command === 'ROLLBACK') throw new TransactionRolledBackError();
        finals.forEach((f, i) => f.committed?.(((outcomes[i] as PromiseFulfilledResult<{ rows?: Array<Record<string, unknown>> }>).value?.rows ?? [])));
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
        if (failedSetup && isPreparedStatementMismatch(failedSetup, FENCE_CHECK_STATEMENT)) throw new PreparedFenceCheckMismatch(failedSetup);
        if (lostConnection(qr, err)) {
          // The server ended the session for sitting idle in the unit's transaction: the unit's own
          // budget ran out (503 tenant_busy), not the server (no circuit for its other tenants).
          const ended = (client as unknown as TenantPgClient).connectionError;
          if (ended?.code === IDLE_IN_TRANSACTION_TIMEOUT) throw new TenantBusyError('idle_in_transaction_timeout', this.context.current()?.requestId);
          throw new HomeConnectionLostError(err);
        }
        throw err;
      }
    } finally {
      // Never hand a corked connection back to the pool (a throw before the event loop turned).
      if (corked) stream?.uncork?.();
      corked = false;
      // A connection whose rollback failed may still hold the tenant's transaction: destroy it.
      const cancelSent = stopCancel();
      if (broken && qr.releasePostgresConnection) await qr.releasePostgresConnection(broken);
      else await releaseClean(qr, client as unknown as TenantPgClient, cancelSent);
    }
  }
}
