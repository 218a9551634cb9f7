import { Inject, Injectable } from '@nestjs/common';
import { injectTraceContext } from '#strata/observability';
import { TenantContext, type TenantScope } from '#strata/tenancy/platform';
import { checkTimeoutMs, HTTP_CLIENT_OPTIONS, type ResolvedHttpClientOptions } from './http-client.options';
import { originOf, OutboundRequestError, OutboundTimeoutError } from './outbound.errors';

/** fetch()'s options plus a per-call timeout. `signal` is the caller's own cancellation, if any. */
export type TenantRequestInit = RequestInit & {
  /** Whole exchange, response body included. Default: the module's timeout (`OUTBOUND_HTTP_TIMEOUT_MS`). */
  timeoutMs?: number;
};

/**
 * The headers of every outbound call. Order matters: the caller's headers first, then the trace
 * context, then the tenant headers, so nothing a caller passes (in any letter case) can make a
 * call claim another tenant or request than the context it runs in.
 */
export function outboundHeaders(scope: TenantScope, given: RequestInit['headers'], userAgent: string): Headers {
  const headers = new Headers(given);
  headers.set('user-agent', userAgent);
  // W3C traceparent/baggage of the current span; a no-op until tracing installs a propagator.
  for (const [name, value] of Object.entries(injectTraceContext({}))) headers.set(name, value);
  // The system tenant sends its own (nil UUID) id too: a receiver always learns whose work it is.
  headers.set('x-tenant-id', scope.tenant.id);
  headers.set('x-request-id', scope.requestId);
  return headers;
}

/**
 * Outbound HTTP on Node's fetch (undici), for the tenant of the current context only: the tenant
 * comes from TenantContext, never from a parameter, and no context means
 * MissingTenantContextError before any socket is opened. Every call has a deadline.
 */
@Injectable()
export class TenantHttpClient {
  constructor(
    private readonly context: TenantContext,
    @Inject(HTTP_CLIENT_OPTIONS) private readonly options: ResolvedHttpClientOptions,
  ) {}

  /**
   * fetch() with the tenant headers and a timeout. Resolves with any HTTP answer (a 500 is a
   * Response, not an error); rejects with OutboundTimeoutError when the deadline passes and
   * OutboundRequestError when no answer came. A caller's own abort is rethrown unchanged.
   */
  async fetch(url: string | URL, init: TenantRequestInit = {}): Promise<Response> {
    const scope = this.context.require('an outbound HTTP call');
    const { timeoutMs = this.options.timeoutMs, signal: callerSignal, headers: given, ...rest } = init;
    checkTimeoutMs(timeoutMs, 'timeoutMs');
    const method = (rest.method ?? 'GET').toUpperCase();
    const headers = outboundHeaders(scope, given, this.options.userAgent);
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = callerSignal ? AbortSignal.any([callerSignal, timeout]) : timeout;
    try {
      return await fetch(url, { ...rest, headers, signal });
    } catch (err) {
      if (callerSignal?.aborted) throw err;
      if (timeout.aborted) throw new OutboundTimeoutError(method, originOf(url), timeoutMs);
      throw new OutboundRequestError(method, originOf(url), err);
    }
  }
}
