import { Global, Module } from '@nestjs/common';
import { AuditLogModule } from '#strata/audit';
import { ExportExecutor } from './export.executor';
import { ExportsAdminController, TenantExportController } from './exports.controller';
import { ExportsService } from './exports.service';
import { TenantExportsRepository } from './tenant-exports.repository';
import { TenantRestorer } from './tenant.restorer';

/**
 * Tenant exports and restore: the admin and owner API and the executor every API/worker process
 * runs. Needs StorageModule.forRoot() (the driver) and the tenancy and control-plane modules.
 * Global, so onboarding (libs/platform/admin, `restoreFrom`) finds TenantRestorer where the app
 * has it, without every app that onboards having to carry storage.
 */
@Global()
@Module({
  imports: [AuditLogModule],
  controllers: [ExportsAdminController, TenantExportController],
  providers: [TenantExportsRepository, ExportExecutor, ExportsService, TenantRestorer],
  exports: [ExportsService, ExportExecutor, TenantRestorer],
})
export class ExportsModule {}

/**
 * The same without HTTP routes: the worker and the CLI produce and restore exports but serve no API.
 * Global too: the onboarding pipeline's `restore` step finds TenantRestorer in every process.
 */
@Global()
@Module({
  imports: [AuditLogModule],
  providers: [TenantExportsRepository, ExportExecutor, ExportsService, TenantRestorer],
  exports: [ExportsService, ExportExecutor, TenantRestorer],
})
export class ExportsRunnerModule {}
