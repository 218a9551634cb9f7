import { errorCatalogue } from '#strata/common';

/** Every error code the rate limits answer (libs/platform/rate-limits). */
export const RateLimitsErrorCode = {
  /**
   * 429: a limit is spent — the tenant's (its plan's rate), the user's, the client address's on an
   * anonymous route, an account's lockout for this address, or the password hashing queue.
   * `Retry-After` says when to try again; tenant routes also carry the `RateLimit-*` headers.
   */
  rateLimited: 'rate_limited',
} as const;
export type RateLimitsErrorCode = (typeof RateLimitsErrorCode)[keyof typeof RateLimitsErrorCode];

const STATUS: Record<RateLimitsErrorCode, number> = { rate_limited: 429 };

const catalogue = errorCatalogue(STATUS);
/** Raises one of the codes above with its status. */
export const rateLimitsError = catalogue.error;
/** `@ApiErrors(rateLimitsErrors(…))`: the codes under their statuses, for the OpenAPI document. */
export const rateLimitsErrors = catalogue.errors;
