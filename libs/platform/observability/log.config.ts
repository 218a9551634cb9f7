import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Params } from 'nestjs-pino';
import type { Options } from 'pino-http';
import { CLS_ID } from 'nestjs-cls';
import { REQUEST_CLS_STORE, type WithClsStore } from './http-observation.keys';
import { logLevelFrom, type ObservabilityOptions } from './observability.options';
import { currentClsStore, tenantLogFields } from './tenant-log.fields';

/**
 * Credentials and personal data never reach a log line, wherever they appear in a logged object.
 * Tenant names are not in the scope at all; emails and passwords are caught here by key.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'req.headers["proxy-authorization"]',
  'res.headers["set-cookie"]',
  'email',
  'password',
  'access_token',
  '*.email',
  '*.password',
  '*.access_token',
  '*.*.email',
  '*.*.password',
];

type SerializedReq = {
  id?: unknown;
  method?: string;
  url?: string;
  headers?: Record<string, unknown>;
  remoteAddress?: string;
  remotePort?: number;
};

/**
 * Request headers a log line keeps. An allowlist, not a denylist: credentials travel in headers
 * nobody thought to list (`x-auth-token`, a partner's custom key), and the tenant, user and
 * request id are already fields of their own. Redaction (REDACTED_PATHS) stays as the second line.
 */
export const LOGGED_REQUEST_HEADERS = ['user-agent', 'content-type', 'content-length'] as const;

/**
 * The request as a log line shows it: method, path without its query string (a query may carry
 * personal data, ?email=…), the allowlisted headers, the peer. Express's route params are left
 * out: at logging time they are the middleware's wildcard split of the path, not the route's.
 */
export function serializeRequest(req: SerializedReq): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  const given = req.headers ?? {};
  for (const name of LOGGED_REQUEST_HEADERS) if (given[name] !== undefined) headers[name] = given[name];
  return {
    id: req.id,
    method: req.method,
    url: typeof req.url === 'string' ? req.url.split('?')[0] : req.url,
    headers,
    remoteAddress: req.remoteAddress,
    remotePort: req.remotePort,
  };
}

/**
 * Tenant fields are added by a mixin at write time, not bound into the request's child logger:
 * the child is made by pino-http before the guard resolves the tenant. For the request-completed
 * line (written on 'finish'/'close') the store pinned on the response is used; everything else
 * (controllers, services, jobs, cron) reads whatever CLS context it runs in.
 */
export function tenantMixin(mergeObject: object): object {
  const res = (mergeObject as { res?: WithClsStore }).res;
  const pinned = res && typeof res === 'object' ? res[REQUEST_CLS_STORE] : undefined;
  return tenantLogFields(pinned ?? currentClsStore());
}

export function loggerParams(options: ObservabilityOptions): Params {
  const http: Options<IncomingMessage, ServerResponse> = {
    level: options.level ?? logLevelFrom(),
    mixin: tenantMixin,
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    // The CLS request id (from a valid X-Request-Id or generated) so `req.id` and `requestId` agree.
    genReqId: (_req, res) => {
      const id = currentClsStore()?.[CLS_ID] ?? res.getHeader('x-request-id');
      return typeof id === 'string' ? id : randomUUID();
    },
    serializers: { req: serializeRequest },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : res.statusCode >= 400 ? 'warn' : 'info'),
    // Scrapes every few seconds would drown the request log.
    autoLogging: { ignore: (req) => ((req as { originalUrl?: string }).originalUrl ?? req.url)?.split('?')[0] === '/metrics' },
  };
  return { pinoHttp: options.destination ? [http, options.destination] : http };
}
