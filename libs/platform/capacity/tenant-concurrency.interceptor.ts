import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { from, switchMap, type Observable } from 'rxjs';
import { ClientClosedRequestError, TenantContext } from '#strata/tenancy/platform';
import { PlanCapacityPolicy } from './plan-capacity.policy';
import { TenantConcurrencyBudget } from './tenant-concurrency.budget';

/**
 * The per-tenant concurrency budget at the HTTP edge. An interceptor, not a guard or the connection
 * manager: interceptors run after every guard, so the tenant is proven (and rate limits have
 * spoken) before a request is counted, and nothing has taken a connection yet. Counting requests
 * rather than units of work bounds what a request holds besides connections too (event loop,
 * hashing, file streams), and a request's several units never wait on their own tenant mid-way.
 *
 * Members' requests only: anonymous tenant routes (login, refresh) carry no proven caller, and
 * counting them would let anyone fill a tenant's budget from outside; their limits are the rate
 * limiter's. A slot is held until the response closes (sent, or its client gone), so a streamed
 * download counts for as long as it streams.
 */
@Injectable()
export class TenantConcurrencyInterceptor implements NestInterceptor {
  constructor(
    private readonly context: TenantContext,
    private readonly policy: PlanCapacityPolicy,
    private readonly budget: TenantConcurrencyBudget,
  ) {}

  intercept(ctx: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (ctx.getType() !== 'http') return next.handle();
    const scope = this.context.current();
    if (!scope || scope.system || scope.userId === undefined) return next.handle();
    const limit = this.policy.of(scope.tenant.plan).maxConcurrentRequests;
    if (limit <= 0) return next.handle();
    const tenantId = scope.tenant.id;
    const res = ctx.switchToHttp().getResponse<ServerResponse>();
    const cancellation = this.context.cancellation;
    const admitted = this.budget.enter(tenantId, limit, cancellation);
    if (admitted === true) {
      this.leaveOnClose(res, tenantId);
      return next.handle();
    }
    return from(
      admitted.then(() => {
        // Admitted in the same turn its client left: give the slot straight back.
        if (cancellation?.cancelled) {
          this.budget.leave(tenantId);
          throw new ClientClosedRequestError();
        }
        this.leaveOnClose(res, tenantId);
      }),
    ).pipe(switchMap(() => next.handle()));
  }

  private leaveOnClose(res: ServerResponse, tenantId: string): void {
    res.once('close', () => this.budget.leave(tenantId));
  }
}
