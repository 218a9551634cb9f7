import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import type { TenantScope } from '#strata/tenancy';
import { REQUEST_CLS_STORE, type WithClsStore } from './http-observation.keys';
import { MetricsService } from './metrics.service';
import { currentClsStore } from './tenant-log.fields';

/** Status recorded when the client went away before the response was written (nginx convention). */
const CLIENT_CLOSED = 499;

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
    let done = false;
    const observe = () => {
      if (done) return;
      done = true;
      const scope = (res[REQUEST_CLS_STORE] ?? currentClsStore())?.scope as TenantScope | undefined;
      // Express sets req.route to the matched route's pattern ('/projects/:id'); never the raw URL.
      const route = req.route?.path ? `${req.baseUrl ?? ''}${String(req.route.path)}` : undefined;
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
