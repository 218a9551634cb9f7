import { errorCatalogue } from '#strata/common';

/**
 * Every error code onboarding answers (libs/platform/onboarding), in one place. The admin API's
 * onboarding codes are the same strings (admin.errors.ts documents them for its routes).
 */
export const OnboardingErrorCode = {
  /** 400: no pool of the tier with that id (or no default one). */
  invalidPool: 'invalid_pool',
  /** 400: no plan of that id (GET /admin/plans lists them). */
  invalidPlan: 'invalid_plan',
  /** 409 (admin): the slug belongs to another tenant. */
  tenantSlugTaken: 'tenant_slug_taken',
  /** 409 (admin): a schema or database named after the slug exists and this onboarding did not create it; it was left untouched. */
  tenantHomeExists: 'tenant_home_exists',
  /** 503 (admin): a step kept failing; the tenant is `failed` (see its steps) and never served. */
  provisioningFailed: 'provisioning_failed',
  /** 409 (signup): the slug is not available (another tenant, or a home of that name exists). */
  slugTaken: 'slug_taken',
  /** 409 (signup): the email belongs to a user whose password is not the one sent. */
  emailTaken: 'email_taken',
  /** 404: signup is switched off (SIGNUP_ENABLED), or no onboarding has that id. */
  signupNotFound: 'signup_not_found',
  /** 429: too many signups from this address; Retry-After says when to try again. */
  signupRateLimited: 'signup_rate_limited',
  /** 503 (signup): a step kept failing; nothing is served for the slug. */
  signupFailed: 'signup_failed',
} as const;
export type OnboardingErrorCode = (typeof OnboardingErrorCode)[keyof typeof OnboardingErrorCode];

const STATUS: Record<OnboardingErrorCode, number> = {
  invalid_pool: 400,
  invalid_plan: 400,
  tenant_slug_taken: 409,
  tenant_home_exists: 409,
  provisioning_failed: 503,
  slug_taken: 409,
  email_taken: 409,
  signup_not_found: 404,
  signup_rate_limited: 429,
  signup_failed: 503,
};

const catalogue = errorCatalogue(STATUS);
/** Raises one of the codes above with its status. */
export const onboardingError = catalogue.error;
/** `@ApiErrors(onboardingErrors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
export const onboardingErrors = catalogue.errors;
