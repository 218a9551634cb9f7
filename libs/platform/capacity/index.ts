// Public API of libs/platform/capacity: a tenant's share of one instance, by plan (README: Capacity and fairness).
export { CapacityModule } from './capacity.module';
export { PlanCapacityPolicy, type ResolvedCapacity } from './plan-capacity.policy';
export { TenantConcurrencyBudget } from './tenant-concurrency.budget';
