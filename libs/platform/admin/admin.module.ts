import { Module } from '@nestjs/common';
import { PoolsAdminController } from './pools-admin.controller';
import { PoolsAdminService } from './pools-admin.service';
import { TenantAdminController } from './tenant-admin.controller';
import { TenantAdminService } from './tenant-admin.service';
import { TenantProvisioner } from './tenant-provisioner.service';

@Module({
  controllers: [TenantAdminController, PoolsAdminController],
  providers: [TenantAdminService, TenantProvisioner, PoolsAdminService],
  exports: [TenantAdminService],
})
export class AdminModule {}
