import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Request, Response } from 'express';
import { defer, lastValueFrom, map, type Observable } from 'rxjs';
import { IDEMPOTENCY_KEY_HEADER, IDEMPOTENT_REPLAYED_HEADER, parseIdempotencyKey, requestFingerprint, type UploadedFileLike } from './idempotency-key';
import { IdempotentRequests } from './idempotent-requests';

/**
 * Bound to a route by @Idempotent(). Without an Idempotency-Key header the request runs as before.
 * With one, the handler runs inside IdempotentRequests' unit of work (so the key and the create
 * commit together) and a repeat of the same request gets the stored answer with
 * `Idempotent-Replayed: true` instead of running again.
 *
 * Guards ran before (the tenant is bound, the caller proved); pipes run inside (a validation 400
 * rolls the key back with everything else). next.handle() is called inside the unit: Nest binds
 * the handler to the async context it is called in, and only there do the handler's own
 * transaction() calls find the open unit to join.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly requests: IdempotentRequests) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<Request & { file?: UploadedFileLike; files?: UploadedFileLike[] | Record<string, UploadedFileLike[]> }>();
    const res = http.getResponse<Response>();
    const key = parseIdempotencyKey(req.headers[IDEMPOTENCY_KEY_HEADER]);
    if (key === undefined) return next.handle();

    // The route's pattern, not the URL: /t/acme/projects and acme.example/projects are one route.
    const pattern = typeof req.route?.path === 'string' ? req.route.path : req.path;
    const route = `${req.method} ${pattern}`;
    const files = [...(req.file ? [req.file] : []), ...(Array.isArray(req.files) ? req.files : Object.values(req.files ?? {}).flat())];
    const hash = requestFingerprint({ method: req.method, route: pattern, params: req.params, query: req.query, body: req.body, files });

    return defer(() =>
      this.requests.run(key, { route, hash }, async () => {
        const body = await lastValueFrom(next.handle(), { defaultValue: undefined });
        return { status: res.statusCode, body };
      }),
    ).pipe(
      map((answer) => {
        if (answer.replayed) {
          res.status(answer.status);
          res.setHeader(IDEMPOTENT_REPLAYED_HEADER, 'true');
        }
        return answer.body;
      }),
    );
  }
}
