import { ApiException } from '#strata/common';

/**
 * Every error libs/tenancy raises, in one place. The ApiExceptions are answers a client may see
 * (their codes are in TenancyErrorCode); the plain Errors are programming or placement faults.
 */
export const TenancyErrorCode = {
  tenantMigrating: 'tenant_migrating',
  tenantMoving: 'tenant_moving',
  tenantUnavailable: 'tenant_unavailable',
  tenantCapacity: 'tenant_capacity',
} as const;
export type TenancyErrorCode = (typeof TenancyErrorCode)[keyof typeof TenancyErrorCode];

/** No data connection within DATA_ACQUIRE_TIMEOUT_MS (the pool is full, or the server does not answer): retry shortly. */
export class TenantUnavailableError extends ApiException {
  constructor() {
    super(503, TenancyErrorCode.tenantUnavailable, 'no database connection for this tenant became free in time; retry shortly', { 'Retry-After': '1' });
    this.name = 'TenantUnavailableError';
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
