import { ApiException } from '#strata/common';

/**
 * Every error libs/tenancy raises, in one place. The ApiExceptions are answers a client may see
 * (their codes are in TenancyErrorCode); the plain Errors are programming or placement faults.
 */
export const TenancyErrorCode = {
  // The wire's claim (resolveWireTenant): 400 none or several disagreeing, 404 no such (active) tenant.
  tenantRequired: 'tenant_required',
  tenantAmbiguous: 'tenant_ambiguous',
  tenantNotFound: 'tenant_not_found',
  tenantMigrating: 'tenant_migrating',
  tenantMoving: 'tenant_moving',
  tenantUnavailable: 'tenant_unavailable',
  tenantCapacity: 'tenant_capacity',
  // 503: the unit's own budget ran out, named by which one (the code a client or an operator greps
  // for); tenant_busy when the cause is not known.
  tenantBusy: 'tenant_busy',
  statementTimeout: 'statement_timeout',
  lockTimeout: 'lock_timeout',
  idleInTransactionTimeout: 'idle_in_transaction_timeout',
  // 429: the tenant already has its plan's share of requests in flight on this instance (libs/platform/capacity).
  concurrencyLimited: 'concurrency_limited',
  clientClosedRequest: 'client_closed_request',
} as const;
export type TenancyErrorCode = (typeof TenancyErrorCode)[keyof typeof TenancyErrorCode];

/**
 * The tenant's database cannot serve the unit now: no connection became free within
 * DATA_ACQUIRE_TIMEOUT_MS, or its server is down or restarting (the home's circuit is open). Retry
 * after `retryAfterSeconds`; other tenants are not affected.
 */
export class TenantUnavailableError extends ApiException {
  constructor(
    message = 'no database connection for this tenant became free in time; retry shortly',
    readonly retryAfterSeconds = 1,
  ) {
    super(503, TenancyErrorCode.tenantUnavailable, message, { 'Retry-After': String(retryAfterSeconds) });
    this.name = 'TenantUnavailableError';
  }
}

/**
 * The unit waited longer than its budget: on a lock another unit holds (DATA_LOCK_TIMEOUT_MS) or
 * on its own statement (DATA_STATEMENT_TIMEOUT_MS), or paused too long inside its transaction. It was
 * rolled back; nothing of it is stored. The code names the budget (`statement_timeout`,
 * `lock_timeout`, `idle_in_transaction_timeout`), `tenant_busy` when unknown.
 */
export class TenantBusyError extends ApiException {
  /**
   * `budget`: which one ran out, when known (`lock_timeout` or `statement_timeout`); `requestId` is
   * repeated in the message (it is in X-Request-Id too) so a pasted error names the request to look up.
   */
  constructor(readonly budget?: 'lock_timeout' | 'statement_timeout' | 'idle_in_transaction_timeout', requestId?: string) {
    const what =
      budget === 'lock_timeout'
        ? 'a lock wait'
        : budget === 'statement_timeout'
          ? 'a slow statement'
          : budget === 'idle_in_transaction_timeout'
            ? 'a pause inside its transaction'
            : 'a lock or a slow statement';
    super(
      503,
      budget ?? TenancyErrorCode.tenantBusy,
      `this tenant's data is busy (${what} outlasted the request's budget${budget ? `, ${budget}` : ''}); nothing was changed, retry shortly` +
        (requestId ? ` (request ${requestId})` : ''),
      { 'Retry-After': '1' },
    );
    this.name = 'TenantBusyError';
  }
}

/**
 * The tenant already had its plan's number of requests in flight on this instance, and this one
 * waited its bounded turn (or found the queue full): refused before it took any connection. Only
 * this tenant's excess is refused; retry after `Retry-After` seconds.
 */
export class TenantConcurrencyLimitedError extends ApiException {
  constructor(readonly limit: number, retryAfterSeconds: number) {
    super(
      429,
      TenancyErrorCode.concurrencyLimited,
      `this tenant already has ${limit} requests in flight (its plan's share of this instance); retry shortly`,
      { 'Retry-After': String(retryAfterSeconds) },
    );
    this.name = 'TenantConcurrencyLimitedError';
  }
}

/**
 * The client went away while its unit ran: the statement was cancelled on the server and the unit
 * rolled back, so a request abandoned during a lock wait never commits later. 499 as nginx logs it;
 * nobody reads the answer.
 */
export class ClientClosedRequestError extends ApiException {
  constructor() {
    super(499, TenancyErrorCode.clientClosedRequest, 'the client closed the request; its unit of work was cancelled and rolled back');
    this.name = 'ClientClosedRequestError';
  }
}

/** COMMIT answered ROLLBACK: a statement of the unit failed and the work went on; nothing was stored. */
export class TransactionRolledBackError extends Error {
  constructor() {
    super('the tenant transaction was rolled back, not committed: a statement in it failed and the work went on (do not catch database errors inside transaction())');
    this.name = 'TransactionRolledBackError';
  }
}

/** The unit landed on a home its tenant has left; TenantConnectionManager retries it on the new one. */
export class RetiredHomeError extends Error {
  constructor(readonly tenantId: string, readonly schema: string) {
    super(`tenant ${tenantId} no longer lives in schema ${schema} of that database (it moved)`);
    this.name = 'RetiredHomeError';
  }
}

/**
 * A write unit's prepared fence check met a server connection that disagreed about it (a pooler
 * without prepared-statement support: prepared-statements.ts); TenantConnectionManager runs the unit
 * again with the check unprepared. Never leaves libs/tenancy.
 */
export class PreparedFenceCheckMismatch extends Error {
  constructor(cause: unknown) {
    super(`the fence check's prepared statement: ${(cause as Error)?.message}`, { cause });
    this.name = 'PreparedFenceCheckMismatch';
  }
}

/** The tenant's home moved and the control plane did not show a newer placement in time: retry shortly. */
export class TenantMovingError extends ApiException {
  constructor() {
    super(503, TenancyErrorCode.tenantMoving, 'this tenant is moving to another home; retry shortly', { 'Retry-After': '1' });
    this.name = 'TenantMovingError';
  }
}

/** Every silo connection slot is busy: a 503 the client may retry, not a 500. */
export class SiloCapacityError extends ApiException {
  constructor(cap: number) {
    super(503, TenancyErrorCode.tenantCapacity, `all ${cap} silo connections are in use; retry shortly`, { 'Retry-After': '1' });
    this.name = 'SiloCapacityError';
  }
}

/**
 * This instance already holds DB_SERVER_MAX_CONNECTIONS connections to the tenant's database server
 * and none came free within DB_SERVER_ACQUIRE_TIMEOUT_MS: a 503 the client may retry, instead of
 * PostgreSQL's "too many clients" as a 500.
 */
export class ServerCapacityError extends ApiException {
  constructor(cap: number) {
    super(503, TenancyErrorCode.tenantCapacity, `all ${cap} connections this instance may open to the tenant's database server are in use; retry shortly`, {
      'Retry-After': '1',
    });
    this.name = 'ServerCapacityError';
  }
}

export class ReadUnitTransactionError extends Error {
  constructor() {
    super('a transaction was opened inside tenantConnectionManager.read() (save(), transaction() or a BEGIN): use transaction() for units that write');
    this.name = 'ReadUnitTransactionError';
  }
}

/** The tenant's home is behind the release: answer 503 with Retry-After instead of failing queries. */
export class TenantMigratingError extends ApiException {
  constructor(readonly has: string, readonly needs: string) {
    super(503, TenancyErrorCode.tenantMigrating, 'this tenant is being migrated; retry shortly', { 'Retry-After': '30' });
    this.name = 'TenantMigratingError';
  }
}

/** A tenant record that names no valid home (wrong pool kind, no database for a silo …): fails closed. */
export class TenantPlacementError extends Error {}

/**
 * The unit's connection broke under it (the server terminated it, the socket reset): TypeORM
 * releases a QueryRunner on its connection's 'error' event, so the unit's next statement fails
 * with QueryRunnerAlreadyReleasedError, which says nothing about the home. This restates it as
 * what it is, a connection failure (SQLSTATE class 08), so the unit answers 503 tenant_unavailable
 * and the home's circuit hears of it, instead of a 500.
 */
export class HomeConnectionLostError extends Error {
  readonly code = '08006';
  constructor(readonly cause: unknown) {
    super(`the connection to the tenant's database broke during the unit of work (${(cause as Error)?.message ?? String(cause)})`);
    this.name = 'HomeConnectionLostError';
  }
}

