// Public API of libs/platform/exports (a platform lib: apps, CLI, admin).
export { ExportsModule, ExportsRunnerModule } from './exports.module';
export { ExportsService, type ExportDownload } from './exports.service';
export { ExportExecutor, ExportExecutorKilled, EXPORT_EXECUTOR_HOOKS, type ExportExecutorHooks, type ExportStep } from './export.executor';
export { TenantRestorer, type RestoreReport, type RestoreAsNewTenant } from './tenant.restorer';
export { ExportErrorCode, exportErrors } from './exports.errors';
export { readArchive, ArchiveInvalidError } from './export-archive';
export {
  EXPORT_STATES,
  TERMINAL_EXPORT_STATES,
  MANIFEST_PATH,
  archiveKeyOf,
  type ExportState,
  type ExportManifest,
  TenantExportView,
  ExportTableSummary,
} from './tenant-export.types';
