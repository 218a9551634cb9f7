// Public API of libs/platform/plans. Domain libs use PlanLimits (reserve/release a quota in their
// transaction) and the error catalogue for their OpenAPI docs; the rest is for the app.
export { PlansModule } from './plans.module';
export { PlanLimitsModule } from './plan-limits.module';
export { PlanLimits } from './plan.limits';
export { PlanCatalog, type Plan, type PlanCapacity } from './plan.catalog';
export { PlansErrorCode, PlanLimitReachedError, QUOTA_METRICS, type QuotaMetric } from './plans.errors';
export { PlanView, UsageView, TenantSettingsView } from './plans.dto';
