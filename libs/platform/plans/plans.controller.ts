import { Body, Controller, Get, Param, Patch } from '@nestjs/common';
import { ApiBody, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, UuidPipe } from '#strata/common';
import { PlatformAdmin, PlatformOperator, RequireRole } from '#strata/auth';
import { AdminSettingsPatchDoc, ChangePlanDto, PlanView, UpdatePlanDto, TenantPlanView, TenantSettingsValues, TenantSettingsView, UsageView } from './plans.dto';
import { PlansErrorCode } from './plans.errors';
import { PlansService } from './plans.service';

/** Operators: the plans, a tenant's plan, usage, settings and flag overrides. */
@Controller('admin')
@PlatformAdmin()
@ApiTags('admin: plans')
export class PlansAdminController {
  constructor(private readonly plans: PlansService) {}

  @Get('plans')
  @ApiOkResponse({ type: [PlanView] })
  list(): Promise<PlanView[]> {
    return this.plans.plans();
  }

  @Patch('plans/:id')
  @ApiOkResponse({ type: PlanView, description: 'in force at once on every instance (with Redis; without, on the others after REGISTRY_CACHE_TTL_MS)' })
  @ApiErrors({ 400: [PlansErrorCode.validationFailed], 404: [PlansErrorCode.planNotFound] })
  updatePlan(@Param('id') id: string, @Body() body: UpdatePlanDto, @PlatformOperator() operator: string): Promise<PlanView> {
    return this.plans.updatePlan(id, body, { type: 'operator', id: operator });
  }

  @Patch('tenants/:id/plan')
  @ApiOkResponse({ type: TenantPlanView, description: 'in force at once on every instance' })
  @ApiErrors({ 400: [PlansErrorCode.invalidPlan], 404: [PlansErrorCode.tenantNotFound] })
  changePlan(@Param('id', UuidPipe) id: string, @Body() body: ChangePlanDto, @PlatformOperator() operator: string): Promise<TenantPlanView> {
    return this.plans.changePlan(id, body.plan, { type: 'operator', id: operator });
  }

  @Get('tenants/:id/usage')
  @ApiOkResponse({ type: UsageView })
  @ApiErrors({ 404: [PlansErrorCode.tenantNotFound] })
  usage(@Param('id', UuidPipe) id: string): Promise<UsageView> {
    return this.plans.usageOf(id);
  }

  @Get('tenants/:id/settings')
  @ApiOkResponse({ type: TenantSettingsView })
  @ApiErrors({ 404: [PlansErrorCode.tenantNotFound] })
  settings(@Param('id', UuidPipe) id: string): Promise<TenantSettingsView> {
    return this.plans.settingsOf(id);
  }

  // The body is checked by the settings schema (ajv), not a DTO: its keys are the settings' own.
  @Patch('tenants/:id/settings')
  @ApiBody({ type: AdminSettingsPatchDoc })
  @ApiOkResponse({ type: TenantSettingsView })
  @ApiErrors({ 400: [PlansErrorCode.validationFailed], 404: [PlansErrorCode.tenantNotFound] })
  patchSettings(@Param('id', UuidPipe) id: string, @Body() body: unknown, @PlatformOperator() operator: string): Promise<TenantSettingsView> {
    return this.plans.patchSettingsOf(id, body, { type: 'operator', id: operator });
  }
}

/** A tenant's own view: its usage against its plan, its settings and flags. */
@Controller()
@ApiTags('plans')
export class TenantPlanController {
  constructor(private readonly plans: PlansService) {}

  @Get('usage')
  @RequireRole('member')
  @ApiOkResponse({ type: UsageView })
  usage(): Promise<UsageView> {
    return this.plans.currentUsage();
  }

  @Get('settings')
  @RequireRole('member')
  @ApiOkResponse({ type: TenantSettingsView })
  settings(): Promise<TenantSettingsView> {
    return this.plans.currentSettings();
  }

  @Patch('settings')
  @RequireRole('owner')
  @ApiBody({ type: TenantSettingsValues, description: 'JSON merge patch of the settings: null removes a key' })
  @ApiOkResponse({ type: TenantSettingsView })
  @ApiErrors({ 400: [PlansErrorCode.validationFailed] })
  patchSettings(@Body() body: unknown): Promise<TenantSettingsView> {
    return this.plans.patchCurrentSettings(body);
  }
}
