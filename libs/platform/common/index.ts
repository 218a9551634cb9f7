export { STRATA_CONFIG, loadStrataConfig, type StrataConfig } from './strata.config';
export { StrataConfigModule } from './strata-config.module';
export {
  ApiException,
  type ApiErrorBody,
  type ApiErrorDetail,
  notFound,
  badRequest,
  conflict,
  unauthorized,
  forbidden,
  unavailable,
} from './api.exception';
export { HttpErrorFilter } from './http-error.filter';
export { corsOptionsOf, corsOriginAllowed, CORS_ALLOWED_HEADERS, CORS_EXPOSED_HEADERS } from './cors.policy';
export { answerClientErrorsAsJson } from './client-error.answer';
export { strictJsonReviver, MAX_JSON_DEPTH, MAX_JSON_MEMBERS, MAX_JSON_VALUES } from './json-body.reviver';
export { createValidationPipe, UuidPipe, validationDetails } from './validation';
export { RequestShapeInterceptor } from './request-shape.interceptor';
export {
  PageQuery,
  DEFAULT_PAGE_LIMIT,
  MAX_PAGE_LIMIT,
  encodeCursor,
  filterScope,
  decodeCursor,
  keysetWindow,
  toPage,
  applyKeysetWindow,
  type KeysetPosition,
  type KeysetWindow,
  type Page,
} from './keyset-cursor';
export { safeIntegerTransformer } from './safe-integer.transformer';
export { isHomeUnreachable, isHomeBusy, faultReason, LOCK_NOT_AVAILABLE } from './database-fault.classifier';
export { CommonErrorCode } from './common.errors';
export { errorCatalogue, type ErrorCatalogue } from './error-catalogue';
export { API_ERRORS, ApiErrors, ApiItemsResponse, ApiPageResponse, declaredApiErrors, mergeErrorMaps, type ApiErrorMap } from './openapi.decorators';
export { REQUEST_ID_RULE, requestIdMiddleware } from './request-id';
export { DutyCycle, FULL_SPEED } from './duty.cycle';
export { KeyedSlots, SlotWaitError, type KeyedSlotsOptions, type SlotWaitCancellation, type SlotWaitFailure } from './keyed.slots';
