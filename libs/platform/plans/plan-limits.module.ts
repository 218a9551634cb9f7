import { Global, Module } from '@nestjs/common';
import { PlanCatalog } from './plan.catalog';
import { PlanLimits } from './plan.limits';

/**
 * PlanLimits and the plan catalogue, without routes: every process that runs domain modules (the
 * API, the worker) imports it, so their services can reserve quota. Global: domain modules inject
 * PlanLimits without importing the lib that holds the plans.
 */
@Global()
@Module({
  providers: [PlanCatalog, PlanLimits],
  exports: [PlanCatalog, PlanLimits],
})
export class PlanLimitsModule {}
