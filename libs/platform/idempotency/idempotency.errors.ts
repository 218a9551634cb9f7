import { ApiException } from '#strata/common';

/** Every error code an Idempotency-Key can earn, in one place. */
export const IdempotencyErrorCode = {
  invalidIdempotencyKey: 'invalid_idempotency_key',
  idempotencyKeyReused: 'idempotency_key_reused',
  idempotencyKeyInUse: 'idempotency_key_in_use',
} as const;
export type IdempotencyErrorCode = (typeof IdempotencyErrorCode)[keyof typeof IdempotencyErrorCode];

/** The header is there but is not 1–255 printable ASCII characters (or was sent twice). */
export class InvalidIdempotencyKeyError extends ApiException {
  constructor(reason: string) {
    super(400, IdempotencyErrorCode.invalidIdempotencyKey, `Idempotency-Key ${reason}: send 1 to 255 printable ASCII characters, e.g. a UUID`);
    this.name = 'InvalidIdempotencyKeyError';
  }
}

/**
 * The key already answered a different request (another route, path id, query or body). Replaying
 * the stored answer would tell the client its new request was done when it never ran.
 */
export class IdempotencyKeyReusedError extends ApiException {
  constructor(route: string) {
    super(
      422,
      IdempotencyErrorCode.idempotencyKeyReused,
      `this Idempotency-Key was already used for a different request (${route}); use a new key for a new request`,
    );
    this.name = 'IdempotencyKeyReusedError';
  }
}

/**
 * A request with this key is still running and did not finish within the database's lock_timeout
 * while this one waited for it: retrying shortly gets its answer.
 */
export class IdempotencyKeyInUseError extends ApiException {
  constructor() {
    super(409, IdempotencyErrorCode.idempotencyKeyInUse, 'a request with this Idempotency-Key is still in progress; retry shortly', {
      'Retry-After': '1',
    });
    this.name = 'IdempotencyKeyInUseError';
  }
}
