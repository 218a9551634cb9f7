import { ApiException } from '#strata/common';

/** Every error code of plans, usage and settings (libs/platform/plans), in one place. */
export const PlansErrorCode = {
  /** 402: a create would take the tenant past a quota of its plan; `details[0].field` names the limit. */
  planLimitReached: 'plan_limit_reached',
  /** 400: PATCH /admin/tenants/:id/plan (or onboarding) names no plan of GET /admin/plans. */
  invalidPlan: 'invalid_plan',
  /** 404: PATCH /admin/plans/:id names no plan. */
  planNotFound: 'plan_not_found',
  /** 404: no tenant with that id. */
  tenantNotFound: 'tenant_not_found',
  /** 400: a body or a setting failed validation (the shared validation pipe's code, and the settings schema's). */
  validationFailed: 'validation_failed',
} as const;
export type PlansErrorCode = (typeof PlansErrorCode)[keyof typeof PlansErrorCode];

/** The quota-limited things a plan counts; the names travel in `/usage`, in 402s and in the counters. */
export type QuotaMetric = 'projects' | 'invoicesPerMonth' | 'storageBytes' | 'webhookEndpoints';
export const QUOTA_METRICS: readonly QuotaMetric[] = ['projects', 'invoicesPerMonth', 'storageBytes', 'webhookEndpoints'];

/** 402 plan_limit_reached, naming the limit in the message and in `details` (one entry: the metric). */
export class PlanLimitReachedError extends ApiException {
  constructor(
    readonly metric: QuotaMetric,
    readonly limit: number,
    readonly plan: string,
  ) {
    const message = `plan limit reached: ${metric} (limit ${limit} on plan ${plan})`;
    super(402, PlansErrorCode.planLimitReached, message, {}, [{ field: metric, code: PlansErrorCode.planLimitReached, message }]);
  }
}
