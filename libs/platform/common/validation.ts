import { ParseUUIDPipe, ValidationPipe, type ArgumentMetadata, type ValidationError } from '@nestjs/common';
import { ApiException, type ApiErrorDetail } from './api.exception';
import { CommonErrorCode } from './common.errors';

/**
 * At most this many fields are named (details and message), each message cut to this many characters:
 * whitelisting reports every unknown property by name, so a body of 20,000 keys would otherwise come
 * back as an error larger than the request.
 */
export const MAX_LISTED_PROBLEMS = 20;
export const MAX_PROBLEM_LENGTH = 200;

// class-validator's name for "not in the DTO" (forbidNonWhitelisted); a form shows it as its own code.
const WHITELIST = 'whitelistValidation';
const UNKNOWN_FIELD = 'unknown_field';

const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').replace(/[^A-Za-z0-9]+/g, '_').toLowerCase();
const cut = (p: string) => (p.length > MAX_PROBLEM_LENGTH ? `${p.slice(0, MAX_PROBLEM_LENGTH).replace(/[\ud800-\udbff]$/, '')}…` : p);

/**
 * One detail per failing field, depth first, `field` a dotted path (`items.0.name`). Only one rule per
 * field, the first one written that failed: a form shows one message per field. class-validator
 * runs stacked decorators bottom-up, so that is the last constraint it reports (`@IsString()
 * @MaxLength(5)` on 123 says is_string, not max_length); stopAtFirstError would keep the other one.
 */
export function validationDetails(errors: ValidationError[], prefix = ''): ApiErrorDetail[] {
  return errors.flatMap((e) => {
    const field = cut(prefix ? `${prefix}.${e.property}` : e.property);
    const [name, message] = Object.entries(e.constraints ?? {}).at(-1) ?? [];
    const own: ApiErrorDetail[] = name ? [{ field, code: name === WHITELIST ? UNKNOWN_FIELD : snake(name), message: cut(message ?? '') }] : [];
    return [...own, ...validationDetails(e.children ?? [], field)];
  });
}

function summary(details: ApiErrorDetail[]): string {
  const shown = details.slice(0, MAX_LISTED_PROBLEMS).map((d) => d.message);
  const more = details.length - shown.length;
  return `${shown.join('; ')}${more > 0 ? `; and ${more} more` : ''}` || 'invalid input';
}

const notObject = (value: unknown) => (Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`);

/**
 * The app's ValidationPipe with the answers a form and a typed client need: `details` per field, a
 * non-object body refused as such (an array was validated element by element as unknown properties),
 * and an unknown query parameter named as one rather than as a generic validation failure.
 */
class StrataValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const dto = Boolean(metadata.metatype) && this.toValidate(metadata);
    // undefined: no body was sent; the DTO then reports each required field.
    if (metadata.type === 'body' && metadata.data === undefined && dto && value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
      throw new ApiException(400, CommonErrorCode.bodyNotObject, `the request body must be a JSON object, not ${notObject(value)}`);
    }
    try {
      return await super.transform(value, metadata);
    } catch (err) {
      if (metadata.type === 'query' && err instanceof ApiException) {
        const unknown = ((err.getResponse() as { details?: ApiErrorDetail[] }).details ?? []).filter((d) => d.code === UNKNOWN_FIELD);
        if (unknown.length) throw unknownQueryParameters(unknown.map((d) => d.field));
      }
      throw err;
    }
  }
}

export const unknownQueryParameters = (names: string[]) =>
  new ApiException(
    400,
    CommonErrorCode.unknownQueryParameter,
    `unknown query parameter${names.length > 1 ? 's' : ''} ${names.slice(0, MAX_LISTED_PROBLEMS).map((n) => `"${cut(n)}"`).join(', ')}: this route does not take ${names.length > 1 ? 'them' : 'it'}`,
  );

/** Whitelisting ValidationPipe whose failures carry the stable code `validation_failed` and per-field `details`. */
export function createValidationPipe(): ValidationPipe {
  return new StrataValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: (errors) => {
      const details = validationDetails(errors);
      return new ApiException(400, CommonErrorCode.validationFailed, summary(details), {}, details.slice(0, MAX_LISTED_PROBLEMS));
    },
  });
}

/** `@Param('id', UuidPipe)`: a malformed id is 400 `invalid_id`, never a database error. */
export const UuidPipe = new ParseUUIDPipe({
  exceptionFactory: () => new ApiException(400, 'invalid_id', 'id must be a UUID'),
});
