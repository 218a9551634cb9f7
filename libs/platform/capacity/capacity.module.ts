import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { JOB_CONCURRENCY_POLICY } from '#strata/jobs';
import { UNIT_BUDGET_POLICY } from '#strata/tenancy/platform';
import { PlanCapacityPolicy } from './plan-capacity.policy';
import { TenantConcurrencyBudget } from './tenant-concurrency.budget';
import { TenantConcurrencyInterceptor } from './tenant-concurrency.interceptor';

/**
 * A tenant's share of an instance by plan: the concurrency budget of requests (an app-wide
 * interceptor), write units' timeouts (UNIT_BUDGET_POLICY, read by TenantConnectionManager) and the
 * per-tenant job cap (JOB_CONCURRENCY_POLICY, read by TenantJobRunner). The API and the worker
 * import it; needs the plans catalogue (PlanLimitsModule or PlansModule) and TenancyModule.
 */
@Global()
@Module({
  providers: [
    PlanCapacityPolicy,
    TenantConcurrencyBudget,
    { provide: UNIT_BUDGET_POLICY, useExisting: PlanCapacityPolicy },
    { provide: JOB_CONCURRENCY_POLICY, useExisting: PlanCapacityPolicy },
    { provide: APP_INTERCEPTOR, useClass: TenantConcurrencyInterceptor },
  ],
  exports: [PlanCapacityPolicy, TenantConcurrencyBudget, UNIT_BUDGET_POLICY, JOB_CONCURRENCY_POLICY],
})
export class CapacityModule {}
