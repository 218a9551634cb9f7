import { ApiException, type ApiErrorMap } from '#strata/common';

/** Every error code the audit routes answer, in one place (OpenAPI and tests list them from here). */
export const AuditErrorCode = {
  /** 400: `from` is not before `to`. */
  invalidTimeRange: 'invalid_time_range',
} as const;
export type AuditErrorCode = (typeof AuditErrorCode)[keyof typeof AuditErrorCode];

const STATUS: Record<AuditErrorCode, number> = {
  invalid_time_range: 400,
};

export function auditError(code: AuditErrorCode, message: string): ApiException {
  return new ApiException(STATUS[code], code, message);
}

/** `@ApiErrors(auditErrors(…))`: the codes under their statuses, as the OpenAPI document lists them. */
export function auditErrors(...codes: AuditErrorCode[]): ApiErrorMap {
  const map: Record<number, AuditErrorCode[]> = {};
  for (const code of codes) (map[STATUS[code]] ??= []).push(code);
  return map;
}
