import { Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { PoolsAdminController } from './pools-admin.controller';
import { PoolsAdminService } from './pools-admin.service';
import { TenantAdminController } from './tenant-admin.controller';
import { TenantAdminService } from './tenant-admin.service';
import { OnboardingModule } from '#strata/onboarding';

@Module({
  imports: [AuditLogModule, OnboardingModule],
  controllers: [TenantAdminController, PoolsAdminController],
  providers: [TenantAdminService, PoolsAdminService],
  exports: [TenantAdminService],
})
export class AdminModule {}
