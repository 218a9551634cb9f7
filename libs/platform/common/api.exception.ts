import { HttpException } from '@nestjs/common';

/** The only error shape the API emits: `{statusCode, error, message}` with a stable `error` code. */
export interface ApiErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

export class ApiException extends HttpException {
  constructor(status: number, readonly code: string, message: string, readonly headers: Record<string, string> = {}) {
    super({ statusCode: status, error: code, message } satisfies ApiErrorBody, status);
  }
}

export const notFound = (code: string, message: string) => new ApiException(404, code, message);
export const badRequest = (code: string, message: string) => new ApiException(400, code, message);
export const conflict = (code: string, message: string) => new ApiException(409, code, message);
export const unauthorized = (code: string, message: string) => new ApiException(401, code, message);
export const forbidden = (code: string, message: string) => new ApiException(403, code, message);
export const unavailable = (code: string, message: string, retryAfterSeconds?: number) =>
  new ApiException(503, code, message, retryAfterSeconds ? { 'Retry-After': String(retryAfterSeconds) } : {});
