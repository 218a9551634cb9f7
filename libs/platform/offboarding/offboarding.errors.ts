import { errorCatalogue } from '#strata/common';

/** Every error code the offboarding API answers, in one place (OpenAPI and tests list them from here). */
export const OffboardingErrorCode = {
  /** 404: no tenant with that id (or its record was never there). */
  tenantNotFound: 'tenant_not_found',
  /** 404: the tenant exists, but nobody asked to delete it. */
  deletionNotFound: 'deletion_not_found',
  /** 409: the tenant is still being onboarded (`provisioning`): let onboarding finish (or fail) first; a `failed` one can be deleted. */
  tenantStateConflict: 'tenant_state_conflict',
  /** 409: a move of the tenant is under way: cancel it or let it finish, then delete. */
  moveInProgress: 'move_in_progress',
} as const;
export type OffboardingErrorCode = (typeof OffboardingErrorCode)[keyof typeof OffboardingErrorCode];

const STATUS: Record<OffboardingErrorCode, number> = {
  tenant_not_found: 404,
  deletion_not_found: 404,
  tenant_state_conflict: 409,
  move_in_progress: 409,
};

const catalogue = errorCatalogue(STATUS);
/** Raises one of the codes above with its status. */
export const offboardingError = catalogue.error;
/** `@ApiErrors(offboardingErrors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
export const offboardingErrors = catalogue.errors;
