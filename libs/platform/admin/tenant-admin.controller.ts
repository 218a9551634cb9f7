import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import { UuidPipe } from '#strata/common';
import { PlatformAdmin } from '#strata/auth';
import { AddTenantUserDto, CreateTenantDto } from './admin.dto';
import { TenantAdminService, type TenantView } from './tenant-admin.service';

/** Platform operators' API: onboard tenants, add their users, suspend and reactivate them. */
@Controller('admin/tenants')
@PlatformAdmin()
export class TenantAdminController {
  constructor(private readonly tenants: TenantAdminService) {}

  @Post()
  create(@Body() body: CreateTenantDto): Promise<TenantView> {
    return this.tenants.create(body);
  }

  @Get()
  async list(): Promise<{ items: TenantView[] }> {
    return { items: await this.tenants.list() };
  }

  @Get(':id')
  get(@Param('id', UuidPipe) id: string): Promise<TenantView> {
    return this.tenants.get(id);
  }

  @Post(':id/users')
  addUser(@Param('id', UuidPipe) id: string, @Body() body: AddTenantUserDto) {
    return this.tenants.addUser(id, body);
  }

  @Post(':id/suspend')
  @HttpCode(200)
  suspend(@Param('id', UuidPipe) id: string): Promise<TenantView> {
    return this.tenants.setStatus(id, 'suspended');
  }

  @Post(':id/activate')
  @HttpCode(200)
  activate(@Param('id', UuidPipe) id: string): Promise<TenantView> {
    return this.tenants.setStatus(id, 'active');
  }
}
