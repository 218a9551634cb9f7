import { Body, Controller, Get, Post } from '@nestjs/common';
import { ApiCreatedResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors, ApiItemsResponse } from '#strata/common';
import { PlatformAdmin, PlatformOperator } from '#strata/auth';
import { AdminErrorCode } from './admin.errors';
import { CreatePoolDto, PoolView } from './pools.dto';
import { PoolsAdminService } from './pools-admin.service';

/** Platform operators' API: the servers and databases tenants are placed on. */
@Controller('admin/pools')
@PlatformAdmin()
@ApiTags('admin: pools')
export class PoolsAdminController {
  constructor(private readonly pools: PoolsAdminService) {}

  @Get()
  @ApiItemsResponse(PoolView, 'every pool, by id')
  async list(): Promise<{ items: PoolView[] }> {
    return { items: await this.pools.list() };
  }

  /** Registers a server (or another database) as a home for tenants of `kind`, after preparing it. */
  @Post()
  @ApiCreatedResponse({ type: PoolView, description: 'the server is prepared (database, roles, shared schema) and registered' })
  @ApiErrors({ 400: [AdminErrorCode.PoolUnreachable], 409: [AdminErrorCode.PoolExists], 503: [AdminErrorCode.PoolSetupFailed] })
  create(@Body() body: CreatePoolDto, @PlatformOperator() operator: string): Promise<PoolView> {
    return this.pools.create(body, operator);
  }
}
