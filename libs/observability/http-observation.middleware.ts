import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { trace } from '@opentelemetry/api';
import type { TenantScope } from '#strata/tenancy';
import { REQUEST_CLS_STORE, type WithClsStore } from './http-observation.keys';
import { MetricsService } from './metrics.service';
import { currentClsStore, tierLabel } from './tenant-log.fields';

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
    // The HTTP server span, if an OTel SDK with http instrumentation is running (no-op otherwise).
    // Taken now: at 'finish' the active context is not guaranteed to be the request's.
    const span = trace.getActiveSpan();
    let done = false;
    const observe = () => {
      if (done) return;
      done = true;
      const scope = (res[REQUEST_CLS_STORE] ?? currentClsStore())?.scope as TenantScope | undefined;
      if (span && scope) span.setAttributes({ 'tenant.id': scope.tenant.id, 'tenant.tier': tierLabel(scope) });
      // Express sets req.route to the matched route's pattern ('/projects/:id'); never the raw URL.
      const route = handlerRoute(req, mountRoute);
      this.metrics.observeHttp({
        route,
        method: req.method,
        status: res.writableFinished ? res.statusCode : CLIENT_CLOSED,
        seconds: Number(process.hrtime.bigint() - started) / 1e9,
        scope,
      });
    };
    res.once('finish', observe);
    res.once('close', observe);
    next();
  }
}
