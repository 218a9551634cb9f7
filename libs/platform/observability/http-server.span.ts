import { SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_REQUEST_METHOD_ORIGINAL,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_NETWORK_PROTOCOL_VERSION,
  ATTR_URL_PATH,
  ATTR_URL_SCHEME,
  ATTR_USER_AGENT_ORIGINAL,
} from '@opentelemetry/semantic-conventions';
import type { Request } from 'express';
import type { TenantScope } from '#strata/tenancy/platform';
import { tierLabel } from './tenant-log.fields';
import { extractTraceContext } from './trace-propagation';
import { strataTracer } from './tracing';

/** Span attributes naming whose work a span is: ids and tiers only, never names or emails. */
export const ATTR_TENANT_ID = 'tenant.id';
export const ATTR_TENANT_TIER = 'tenant.tier';
/** The request id of the log lines (X-Request-Id), so a trace leads to its logs. */
export const ATTR_REQUEST_ID = 'strata.request_id';

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']);

export interface ServerSpan {
  span: Span;
  /** The context the rest of the request runs in: the span, plus the caller's trace and baggage. */
  context: Context;
}

/**
 * Opens the SERVER span of a request, continuing the caller's `traceparent` (and baggage, minus any
 * `tenant.*` entry). Named `{method}` until the route is known; endServerSpan renames it
 * `{method} {route}`. No query string (it may carry personal data) and no client address.
 */
export function startServerSpan(req: Request): ServerSpan {
  const parent = extractTraceContext(req.headers);
  const method = KNOWN_METHODS.has(req.method) ? req.method : '_OTHER';
  const span = strataTracer().startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: method,
        ...(method === '_OTHER' ? { [ATTR_HTTP_REQUEST_METHOD_ORIGINAL]: req.method } : {}),
        [ATTR_URL_PATH]: (req.originalUrl ?? req.url).split('?')[0],
        [ATTR_URL_SCHEME]: req.protocol,
        [ATTR_NETWORK_PROTOCOL_VERSION]: req.httpVersion,
        ...(typeof req.headers['user-agent'] === 'string' ? { [ATTR_USER_AGENT_ORIGINAL]: req.headers['user-agent'] } : {}),
      },
    },
    parent,
  );
  return { span, context: trace.setSpan(parent, span) };
}

/**
 * Ends a request's span at the response's end. The tenant comes from the request's CLS store read
 * now, not at start: the tenant guard binds it after the middleware ran. 5xx and client aborts
 * are errors; 4xx are the caller's and leave the status unset (OTel HTTP semantic conventions).
 */
export function endServerSpan(
  span: Span,
  outcome: { method: string; route: string | undefined; status: number | undefined; scope: TenantScope | undefined; requestId: string | undefined },
): void {
  const { route, status, scope, requestId } = outcome;
  const method = KNOWN_METHODS.has(outcome.method) ? outcome.method : '_OTHER';
  if (route) {
    span.updateName(`${method} ${route}`);
    span.setAttribute(ATTR_HTTP_ROUTE, route);
  }
  if (scope) span.setAttributes({ [ATTR_TENANT_ID]: scope.tenant.id, [ATTR_TENANT_TIER]: tierLabel(scope) });
  if (requestId) span.setAttribute(ATTR_REQUEST_ID, requestId);
  if (status === undefined) {
    span.setAttribute(ATTR_ERROR_TYPE, 'client_closed');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'the client closed the connection before the response was written' });
  } else {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    if (status >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}
