import { errorCatalogue } from '#strata/common';

/** Every error code the moves API answers, in one place (OpenAPI and tests list them from here). */
export const MoveErrorCode = {
  tenantNotFound: 'tenant_not_found',
  moveNotFound: 'move_not_found',
  poolNotFound: 'pool_not_found',
  moveNoop: 'move_noop',
  poolKindMismatch: 'pool_kind_mismatch',
  moveInProgress: 'move_in_progress',
  tenantNotActive: 'tenant_not_active',
  tenantMigrating: 'tenant_migrating',
  moveNotCancellable: 'move_not_cancellable',
} as const;
export type MoveErrorCode = (typeof MoveErrorCode)[keyof typeof MoveErrorCode];

const STATUS: Record<MoveErrorCode, number> = {
  tenant_not_found: 404,
  move_not_found: 404,
  pool_not_found: 404,
  move_noop: 400,
  pool_kind_mismatch: 409,
  move_in_progress: 409,
  tenant_not_active: 409,
  tenant_migrating: 409,
  move_not_cancellable: 409,
};

const catalogue = errorCatalogue(STATUS);
/** Raises one of the codes above with its status. */
export const moveError = catalogue.error;
/** `@ApiErrors(moveErrors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
export const moveErrors = catalogue.errors;
