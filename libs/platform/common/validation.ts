import { ParseUUIDPipe, ValidationPipe, type ValidationError } from '@nestjs/common';
import { ApiException } from './api.exception';

function flatten(errors: ValidationError[], prefix = ''): string[] {
  return errors.flatMap((e) => [
    ...Object.values(e.constraints ?? {}).map((m) => (prefix ? `${prefix}.${m}` : m)),
    ...flatten(e.children ?? [], prefix ? `${prefix}.${e.property}` : e.property),
  ]);
}

/** Whitelisting ValidationPipe whose failures carry the stable code `validation_failed`. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => new ApiException(400, 'validation_failed', flatten(errors).join('; ') || 'invalid input'),
  });
}

/** `@Param('id', UuidPipe)`: a malformed id is 400 `invalid_id`, never a database error. */
export const UuidPipe = new ParseUUIDPipe({
  exceptionFactory: () => new ApiException(400, 'invalid_id', 'id must be a UUID'),
});
