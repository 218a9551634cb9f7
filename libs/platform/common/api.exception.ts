import { HttpException } from '@nestjs/common';

/** One field a form can mark: `field` a dotted path (`items.0.name`), `code` the first rule it broke. */
export interface ApiErrorDetail {
  field: string;
  code: string;
  message: string;
}

/**
 * The only error shape the API emits: `{statusCode, error, message}` with a stable `error` code;
 * `details` only on `validation_failed`, one entry per failing field.
 */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  message: string;
  details?: ApiErrorDetail[];
}

export class ApiException extends HttpException {
  constructor(
    status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    details?: ApiErrorDetail[],
  ) {
    super({ statusCode: status, error: code, message, ...(details ? { details } : {}) } satisfies ApiErrorBody, status);
  }
}

export const notFound = (code: string, message: string) => new ApiException(404, code, message);
export const badRequest = (code: string, message: string) => new ApiException(400, code, message);
export const conflict = (code: string, message: string) => new ApiException(409, code, message);
export const unauthorized = (code: string, message: string) => new ApiException(401, code, message);
export const forbidden = (code: string, message: string) => new ApiException(403, code, message);
export const unavailable = (code: string, message: string, retryAfterSeconds?: number) =>
  new ApiException(503, code, message, retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {});
