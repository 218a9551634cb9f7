import { Module } from '@nestjs/common';
import { TenantAdminController } from './tenant-admin.controller';
import { TenantAdminService } from './tenant-admin.service';
import { TenantProvisioner } from './tenant-provisioner.service';

@Module({
  controllers: [TenantAdminController],
  providers: [TenantAdminService, TenantProvisioner],
  exports: [TenantAdminService],
})
export class AdminModule {}
