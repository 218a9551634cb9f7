import { applyDecorators, UseInterceptors } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import { ApiErrors } from '#strata/common';
import { IdempotencyErrorCode } from './idempotency.errors';
import { IdempotencyInterceptor } from './idempotency.interceptor';

/**
 * Marks a tenant create route as honouring `Idempotency-Key` (the module declaring the controller
 * imports IdempotencyModule). With the header, the whole handler becomes one tenant unit of work
 * opened before the handler runs, so use it on handlers whose work is the database plus, at most,
 * short I/O that may sit inside a transaction.
 *
 * Put it ABOVE any @UseInterceptors() of the same handler (decorators apply bottom-up, so it then
 * runs after them): after FileInterceptor the upload is already parsed — its bytes are part of the
 * request's fingerprint, and no connection is held while a client sends them.
 */
export const Idempotent = (): MethodDecorator =>
  applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    // Documented here so every idempotent route says so in the OpenAPI document (libs/platform/api-docs
    // adds `Idempotent-Replayed` to its success answers when it sees this header).
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'one key per logical operation, reused by its retries: the same request answers its first answer again (`Idempotent-Replayed: true`); 1–255 printable ASCII characters, e.g. a UUID',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x20-\\x7e]+$' },
    }),
    ApiErrors({
      400: [IdempotencyErrorCode.invalidIdempotencyKey],
      409: [IdempotencyErrorCode.idempotencyKeyInUse],
      422: [IdempotencyErrorCode.idempotencyKeyReused],
    }),
  );
