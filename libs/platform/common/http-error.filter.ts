import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { ApiException, type ApiErrorBody } from './api.exception';
import { JsonBodyShapeError } from './json-body.reviver';
import { faultReason, isHomeBusy, isHomeUnreachable } from './database-fault.classifier';

const STATUS_CODES: Record<number, string> = {
  400: 'bad_request',
  401: 'unauthenticated',
  403: 'forbidden',
  404: 'not_found',
  405: 'method_not_allowed',
  409: 'conflict',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  429: 'too_many_requests',
  503: 'unavailable',
};

// Postgres SQLSTATEs that a client's input can cause; anything else is our fault (500).
const PG_ERRORS: Record<string, [number, string, string]> = {
  '23505': [409, 'conflict', 'a resource with these unique fields already exists'],
  '23503': [404, 'not_found', 'a referenced resource does not exist'],
  '23514': [400, 'validation_failed', 'a value is outside its allowed range'],
  '22P02': [400, 'validation_failed', 'a value has an invalid format'],
  '22001': [400, 'validation_failed', 'a value is too long'],
  '22003': [400, 'validation_failed', 'a number is out of range'],
  '23502': [400, 'validation_failed', 'a required value is missing'],
  '22021': [400, 'validation_failed', 'a value contains bytes that are not valid text'],
  '22007': [400, 'validation_failed', 'a date or time has an invalid format'],
  '22008': [400, 'validation_failed', 'a date or time is out of range'],
};

/**
 * body-parser's strict mode refuses a top-level string, number or null as a parse error; that body is
 * valid JSON, just not an object, and a client is told so (`raw` is the text body-parser kept).
 */
function notAnObject(raw: unknown): boolean {
  if (typeof raw !== 'string' || /^\s*[[{]/.test(raw)) return false;
  try {
    JSON.parse(raw);
    return true;
  } catch {
    return false;
  }
}
const BODY_NOT_OBJECT: ApiErrorBody = { statusCode: 400, error: 'body_not_object', message: 'the request body must be a JSON object' };

/** Turns every error into `{statusCode, error, message}`; never leaks internals, never 500s on bad input. */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse();
    const [body, headers] = this.toBody(exception);
    // Deliberate answers (503 tenant_migrating, tenant_capacity, …) are not faults: no stack traces.
    if (body.statusCode >= 500 && !(exception instanceof ApiException)) {
      // An outage is one line per request, not a stack trace per request.
      if (body.statusCode === 503) this.logger.warn(`503 ${body.error}: ${faultReason(exception)}`);
      else this.logger.error(exception instanceof Error ? exception.stack : String(exception));
    }
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    res.status(body.statusCode).json(body);
  }

  private toBody(exception: unknown): [ApiErrorBody, Record<string, string>] {
    // The body parser's reviver refused the body; Nest hands it on as the cause of a 400.
    const shape = exception instanceof JsonBodyShapeError ? exception : (exception as { cause?: unknown } | undefined)?.cause;
    if (shape instanceof JsonBodyShapeError) return [{ statusCode: 400, error: shape.code, message: shape.message }, {}];
    if (exception instanceof ApiException) {
      return [exception.getResponse() as ApiErrorBody, exception.headers];
    }
    if (exception instanceof HttpException) {
      const status = exception.getStatus();
      const response = exception.getResponse();
      const raw = typeof response === 'string' ? response : (response as { message?: unknown }).message;
      const message = Array.isArray(raw) ? raw.join('; ') : String(raw ?? exception.message);
      const type = (exception as { type?: string }).type ?? (exception.cause as { type?: string } | undefined)?.type;
      let code = STATUS_CODES[status] ?? (status >= 500 ? 'internal_error' : 'bad_request');
      if (status === 400 && /JSON/i.test(message)) code = 'invalid_json';
      if (type === 'entity.parse.failed') code = 'invalid_json';
      if (code === 'invalid_json' && notAnObject((exception.cause as { body?: unknown } | undefined)?.body)) return [BODY_NOT_OBJECT, {}];
      return [{ statusCode: status, error: code, message: status >= 500 ? 'internal error' : message }, {}];
    }
    const bodyParserError = exception as { type?: string; status?: number; statusCode?: number };
    if (bodyParserError?.type === 'entity.parse.failed') {
      if (notAnObject((exception as { body?: unknown }).body)) return [BODY_NOT_OBJECT, {}];
      return [{ statusCode: 400, error: 'invalid_json', message: 'request body is not valid JSON' }, {}];
    }
    if (bodyParserError?.type === 'entity.too.large') {
      return [{ statusCode: 413, error: 'payload_too_large', message: 'request body is too large' }, {}];
    }
    if (exception instanceof QueryFailedError) {
      const code = (exception as QueryFailedError & { driverError?: { code?: string } }).driverError?.code;
      const mapped = code ? PG_ERRORS[code] : undefined;
      if (mapped) return [{ statusCode: mapped[0], error: mapped[1], message: mapped[2] }, {}];
    }
    // The control plane (or any database outside a tenant unit) is down, restarting or timed out: retryable, not our bug.
    if (isHomeUnreachable(exception) || isHomeBusy(exception)) {
      return [{ statusCode: 503, error: 'unavailable', message: 'a database this request needs cannot be reached right now; retry shortly' }, { 'Retry-After': '1' }];
    }
    return [{ statusCode: 500, error: 'internal_error', message: 'internal error' }, {}];
  }
}
