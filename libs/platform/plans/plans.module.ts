import { Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { PlanLimitsModule } from './plan-limits.module';
import { PlansAdminController, TenantPlanController } from './plans.controller';
import { PlansService } from './plans.service';

/** The API's routes for plans, usage and settings, with PlanLimitsModule for the domain modules. */
@Module({
  imports: [PlanLimitsModule, AuditLogModule],
  controllers: [PlansAdminController, TenantPlanController],
  providers: [PlansService],
})
export class PlansModule {}
