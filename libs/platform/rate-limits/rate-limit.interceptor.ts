import { Inject, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { Response } from 'express';
import { from, switchMap, type Observable } from 'rxjs';
import { STRATA_CONFIG, type StrataConfig } from '#strata/common';
import { TenantContext } from '#strata/tenancy';
import { RequestRateLimits } from './request.rate-limits';

/**
 * Limits every authenticated tenant request (a user in a tenant, as the tenant guard bound it).
 * An interceptor, not a guard: interceptors run after every guard, so the tenant and user are
 * known whatever order the app's global guards were registered in. Anonymous routes are not
 * charged to the tenant (anyone could spend its budget with them); they have their own limits
 * per client address (LoginThrottle, through auth's LOGIN_THROTTLE port).
 */
@Injectable()
export class RateLimitInterceptor implements NestInterceptor {
  constructor(
    @Inject(STRATA_CONFIG) private readonly config: StrataConfig,
    private readonly context: TenantContext,
    private readonly limits: RequestRateLimits,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (!this.config.rateLimitsEnabled || ctx.getType() !== 'http') return next.handle();
    const scope = this.context.current();
    if (!scope || scope.system || !scope.userId) return next.handle();
    const res = ctx.switchToHttp().getResponse<Response>();
    const admitted = this.limits.admit({ tenant: scope.tenant, userId: scope.userId });
    if (!(admitted instanceof Promise)) {
      res.set(admitted);
      return next.handle();
    }
    return from(admitted).pipe(
      switchMap((headers) => {
        res.set(headers);
        return next.handle();
      }),
    );
  }
}
