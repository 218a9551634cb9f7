import { Body, Controller, Get, Post } from '@nestjs/common';
import { PlatformAdmin } from '#strata/auth';
import { CreatePoolDto } from './pools.dto';
import { PoolsAdminService, type PoolView } from './pools-admin.service';

/** Platform operators' API: the servers and databases tenants are placed on. */
@Controller('admin/pools')
@PlatformAdmin()
export class PoolsAdminController {
  constructor(private readonly pools: PoolsAdminService) {}

  @Get()
  async list(): Promise<{ items: PoolView[] }> {
    return { items: await this.pools.list() };
  }

  /** Registers a server (or another database) as a home for tenants of `kind`, after preparing it. */
  @Post()
  create(@Body() body: CreatePoolDto): Promise<PoolView> {
    return this.pools.create(body);
  }
}
