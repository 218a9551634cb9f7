export { STRATA_CONFIG, loadStrataConfig, type StrataConfig } from './strata.config';
export { StrataConfigModule } from './strata-config.module';
export {
  ApiException,
  type ApiErrorBody,
  notFound,
  badRequest,
  conflict,
  unauthorized,
  forbidden,
  unavailable,
} from './api.exception';
export { HttpErrorFilter } from './http-error.filter';
export { strictJsonReviver, MAX_JSON_DEPTH } from './json-body.reviver';
export { createValidationPipe, UuidPipe } from './validation';
export {
  PageQuery,
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
  encodeCursor,
  decodeCursor,
  keysetWindow,
  toPage,
  applyKeysetWindow,
  type KeysetPosition,
  type KeysetWindow,
  type Page,
} from './keyset-cursor';
export { safeIntegerTransformer } from './safe-integer.transformer';
