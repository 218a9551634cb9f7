import { Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { OffboardingController } from './offboarding.controller';
import { OffboardingExecutor } from './offboarding.executor';
import { OffboardingService } from './offboarding.service';
import { TenantDeletionsRepository } from './tenant-deletions.repository';

/**
 * Offboarding: the admin API and the executor. Needs, in the app, every store it clears: TenancyModule,
 * CacheModule, StorageModule and JobsModule (the API has them all; the worker has no storage, so it
 * runs no offboarding).
 */
@Module({
  imports: [AuditLogModule],
  controllers: [OffboardingController],
  providers: [TenantDeletionsRepository, OffboardingExecutor, OffboardingService],
  exports: [OffboardingService, OffboardingExecutor],
})
export class OffboardingModule {}
