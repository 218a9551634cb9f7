import { Body, Controller, Get, HttpCode, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { ApiAcceptedResponse, ApiCreatedResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiPageResponse, PageQuery, UuidPipe, type Page } from '#strata/common';
import { PlatformAdmin, PlatformOperator } from '#strata/auth';
import { ExportErrorCode } from '#strata/exports';
import { AddTenantUserDto, CreateTenantDto, CreateTenantQuery, MaintenanceDto, TenantUserView, TenantView } from './admin.dto';
import { AdminErrorCode } from './admin.errors';
import { TenantAdminService } from './tenant-admin.service';

/** Platform operators' API: onboard tenants, add their users, suspend and reactivate them. */
@Controller('admin/tenants')
@PlatformAdmin()
@ApiTags('admin: tenants')
export class TenantAdminController {
  constructor(private readonly tenants: TenantAdminService) {}

  @Post()
  @ApiCreatedResponse({ type: TenantView, description: 'onboarded: its home is provisioned and migrated, and it is active' })
  @ApiAcceptedResponse({ type: TenantView, description: '`?async=true` (or still provisioning after 30 s): status provisioning; poll the Location until active' })
  @ApiErrors({
    400: [AdminErrorCode.InvalidPool, AdminErrorCode.InvalidPlan],
    404: [ExportErrorCode.exportNotFound],
    409: [AdminErrorCode.TenantSlugTaken, AdminErrorCode.TenantHomeExists, ExportErrorCode.exportNotReady, ExportErrorCode.exportSchemaMismatch],
    422: [ExportErrorCode.exportArchiveInvalid],
    503: [AdminErrorCode.ProvisioningFailed],
  })
  async create(
    @Body() body: CreateTenantDto,
    @Query() query: CreateTenantQuery,
    @Res({ passthrough: true }) res: Response,
    @PlatformOperator() operator: string,
  ): Promise<TenantView> {
    const actor = { type: 'operator' as const, id: operator };
    const tenant = query.async ? await this.tenants.createAsync(body, actor) : await this.tenants.create(body, actor);
    if (tenant.status === 'provisioning') res.status(202).location(`/admin/tenants/${tenant.id}`);
    return tenant;
  }

  @Get()
  @ApiPageResponse(TenantView)
  list(@Query() query: PageQuery): Promise<Page<TenantView>> {
    return this.tenants.list(query.limit, query.cursor);
  }

  @Get(':id')
  @ApiOkResponse({ type: TenantView })
  @ApiErrors({ 404: [AdminErrorCode.TenantNotFound] })
  get(@Param('id', UuidPipe) id: string): Promise<TenantView> {
    return this.tenants.get(id);
  }

  @Post(':id/users')
  @ApiCreatedResponse({ type: TenantUserView, description: 'the user (created, or found by email) is now a member' })
  @ApiErrors({
    400: [AdminErrorCode.PasswordRequired],
    404: [AdminErrorCode.TenantNotFound],
    409: [AdminErrorCode.MembershipExists, AdminErrorCode.UserExistsPasswordIgnored, AdminErrorCode.TenantStateConflict],
  })
  addUser(@Param('id', UuidPipe) id: string, @Body() body: AddTenantUserDto, @PlatformOperator() operator: string): Promise<TenantUserView> {
    return this.tenants.addUser(id, body, { type: 'operator', id: operator });
  }

  @Post(':id/suspend')
  @HttpCode(200)
  @ApiOkResponse({ type: TenantView, description: 'suspended: its members get 403 tenant_suspended, its jobs and crons wait' })
  @ApiErrors({ 404: [AdminErrorCode.TenantNotFound], 409: [AdminErrorCode.TenantStateConflict] })
  suspend(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<TenantView> {
    return this.tenants.setStatus(id, 'suspended', { type: 'operator', id: operator });
  }

  @Post(':id/maintenance')
  @HttpCode(200)
  @ApiOkResponse({ type: TenantView, description: "on: its requests answer 503 tenant_maintenance (Retry-After) and its jobs wait; off: normal again, parked jobs run" })
  @ApiErrors({ 404: [AdminErrorCode.TenantNotFound], 409: [AdminErrorCode.TenantStateConflict] })
  maintenance(@Param('id', UuidPipe) id: string, @Body() body: MaintenanceDto, @PlatformOperator() operator: string): Promise<TenantView> {
    return this.tenants.setMaintenance(id, body.on, body.reason, { type: 'operator', id: operator });
  }

  @Post(':id/activate')
  @HttpCode(200)
  @ApiOkResponse({ type: TenantView, description: 'active again; its parked jobs run' })
  @ApiErrors({ 404: [AdminErrorCode.TenantNotFound], 409: [AdminErrorCode.TenantStateConflict] })
  activate(@Param('id', UuidPipe) id: string, @PlatformOperator() operator: string): Promise<TenantView> {
    return this.tenants.setStatus(id, 'active', { type: 'operator', id: operator });
  }
}
