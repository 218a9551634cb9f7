import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { context } from '@opentelemetry/api';
import type { TenantScope } from '#strata/tenancy/platform';
import { REQUEST_CLS_STORE, type WithClsStore } from './http-observation.keys';
import { endServerSpan, startServerSpan } from './http-server.span';
import { MetricsService } from './metrics.service';
import { currentClsStore, tenantLogFields } from './tenant-log.fields';
import { isTracingEnabled } from './tracing';

/** Status recorded when the client went away before the response was written (nginx convention). */
const CLIENT_CLOSED = 499;

type ExpressRoute = { path?: unknown };

// A path that is nothing but a wildcard ('*', '/*splat', '{/*splat}', '/{*path}'): how Nest mounts
// middleware for every route. A controller route that is only a wildcard would be labelled unmatched too.
const EVERYTHING = /^\/?\{?\/?\*\w*\}?$/;

/**
 * The matched controller route's pattern, or undefined for a request no handler matched. A catch-all
 * mounted for every path ('{/*splat}') is how Nest registers global middleware, not a handler.
 */
function handlerRoute(req: Request, mountRoute: ExpressRoute | undefined): string | undefined {
  const route = req.route as ExpressRoute | undefined;
  if (!route || route === mountRoute || typeof route.path !== 'string') return undefined;
  if (EVERYTHING.test(route.path)) return undefined;
  return `${req.baseUrl ?? ''}${route.path}`;
}

/**
 * Measures every request at the response's end, in a middleware rather than an interceptor: an
 * interceptor never sees a request the tenant guard rejected, nor a 404 without a route. It also
 * pins the request's CLS store on the response for the request-completed log line (see keys file).
 *
 * With tracing on it opens the request's SERVER span (see http-server.span.ts; there is no HTTP
 * auto-instrumentation) and runs the rest of the request inside it. nestjs-cls and OpenTelemetry
 * each keep their own AsyncLocalStorage, so `context.with()` here does not replace the CLS store
 * the ClsModule middleware entered before us: both are visible down to the handler and its awaits.
 */
@Injectable()
export class HttpObservationMiddleware implements NestMiddleware {
  constructor(private readonly metrics: MetricsService) {}

  use(req: Request, res: Response & WithClsStore, next: NextFunction): void {
    const started = process.hrtime.bigint();
    // Mounted after the ClsModule middleware, so the request's store is active here.
    const store = currentClsStore();
    if (store) res[REQUEST_CLS_STORE] = store;
    // Nest mounts middleware as Express routes, so req.route is a middleware's mount right now and
    // stays one when no handler matches; it is replaced only when a controller route runs.
    const mountRoute = req.route as ExpressRoute | undefined;
    // Tracing off: one boolean test, no span or context object.
    const server = isTracingEnabled() ? startServerSpan(req) : undefined;
    let done = false;
    const observe = () => {
      if (done) return;
      done = true;
      const pinned = res[REQUEST_CLS_STORE] ?? currentClsStore();
      const scope = pinned?.scope as TenantScope | undefined;
      // Express sets req.route to the matched route's pattern ('/projects/:id'); never the raw URL.
      const route = handlerRoute(req, mountRoute);
      this.metrics.observeHttp({
        route,
        method: req.method,
        status: res.writableFinished ? res.statusCode : CLIENT_CLOSED,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        scope,
      });
      if (server) {
        const requestId = tenantLogFields(pinned).requestId;
        endServerSpan(server.span, { method: req.method, route, status: res.writableFinished ? res.statusCode : undefined, scope, requestId });
      }
    };
    res.once('finish', observe);
    res.once('close', observe);
    if (server) context.with(server.context, next);
    else next();
  }
}
